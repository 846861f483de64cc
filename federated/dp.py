"""Differential privacy: the one way, besides a trained model, that results about private
data leave a worker.

A data owner gives each private dataset a budget, `bob.load(x, private=True, epsilon=1.0)`.
The functions here run *on the worker*, on the real tensors, and each one

1. works out the epsilon it will cost before anything runs (a Laplace count costs the
   epsilon asked for; a DP-SGD run costs what Opacus's RDP accountant says its planned
   steps cost),
2. charges that to the budget of every dataset it reads, all or none
   (`worker.policy.charge`), raising `BudgetExceededError` with nothing changed when
   the budget cannot pay,
3. computes, adds the noise, and releases the result through the "dp" exit
   (`worker.policy.release`), so the caller may `.get()` it.

Neighbouring datasets differ by one record, added or removed: one element of a 1-D
dataset, or one (example, label) pair for training. Epsilons of separate releases about
one dataset add up (basic composition), which is how the budget is kept.

The noise is drawn from a random generator of the worker's own, seeded from the operating
system, because whoever knows the noise can subtract it. `reproducible(worker, seed)`
lets a teacher fix it so that a lesson prints the same numbers on every run; never with
real data. The floating-point noise here is fine for teaching; a production system
would use a library that samples noise exactly (OpenDP), as floating-point Laplace noise
can leak low-order bits (Mironov, 2012).
"""

from __future__ import annotations

import copy
import math
import secrets
import warnings
import weakref
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from federated import module as _module
from federated.language import tr
from federated.pointer import PointerTensor
from federated.virtual_worker import VirtualWorker

#: the delta of a DP-SGD run unless told otherwise; it must also be below 1 / records
DEFAULT_DELTA = 1e-5

#: losses that are a mean over examples, so each example's gradient is its own
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "mse": F.mse_loss,
}

#: layers that treat every example of a batch on its own. A model of anything else (a
#: custom `forward`, BatchNorm, a hook) could mix examples, and then clipping each
#: example's gradient would no longer bound what one record can change.
PER_EXAMPLE_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.ReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.ELU,
    nn.GELU,
    nn.Identity,
    nn.Dropout,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.Flatten,
)

_generators: weakref.WeakKeyDictionary[VirtualWorker, torch.Generator] = weakref.WeakKeyDictionary()


def epsilon(noise_multiplier: float, *, sample_rate: float, steps: int, delta: float) -> float:
    """The epsilon of `steps` noisy steps, each on a Poisson sample of `sample_rate` of the
    records, per Opacus's RDP accountant: for DP-SGD, and for DP-FedAvg rounds (with
    sample_rate 1 when every client takes part in every round)."""
    from opacus.accountants import RDPAccountant  # type: ignore[import-untyped]

    if not noise_multiplier > 0:
        raise ValueError(
            tr("without noise (noise_multiplier 0) nothing is private: epsilon is infinite")
        )
    if not 0 < sample_rate <= 1 or steps < 1 or not 0 < delta < 1:
        raise ValueError(tr("need 0 < sample_rate <= 1, steps >= 1 and 0 < delta < 1"))
    accountant = RDPAccountant()
    accountant.history.append((float(noise_multiplier), float(sample_rate), int(steps)))
    return float(accountant.get_epsilon(delta))


def reproducible(worker: VirtualWorker, seed: int) -> None:
    """Fix the worker's noise, so that a lesson prints the same numbers every run.

    For teaching only: anyone who knows the seed can subtract the noise again.
    """
    _generators[worker] = torch.Generator().manual_seed(seed)


def _generator(worker: VirtualWorker) -> torch.Generator:
    gen = _generators.get(worker)
    if gen is None:
        gen = _generators[worker] = torch.Generator().manual_seed(secrets.randbits(63))
    return gen


# ---- aggregate queries: the Laplace mechanism --------------------------------------------


def noisy_count(
    data: PointerTensor, *, epsilon: float, above: float | None = None
) -> PointerTensor:
    """How many records are nonzero (or greater than `above`), plus Laplace noise.

    One record changes the count by at most 1, so noise of scale 1/epsilon makes the
    answer epsilon-differentially private. Returns a pointer to the noisy count, which
    may be fetched with `.get()`.
    """
    worker, dataset_id, values = _one_column(data, "noisy_count")
    _check_epsilon(epsilon)
    if above is not None and not math.isfinite(above):
        raise ValueError(tr("above must be a finite number, got {above}", above=above))
    worker.policy.charge([dataset_id], epsilon)
    values = _finite(values)
    hits = values > above if above is not None else values != 0
    true = hits.sum().to(torch.float64)
    return _release(worker, true + _laplace(1.0 / epsilon, _generator(worker)))


def noisy_sum(data: PointerTensor, *, epsilon: float, lower: float, upper: float) -> PointerTensor:
    """The sum of the records, each first clamped to [lower, upper], plus Laplace noise.

    Clamping bounds what one record adds: at most max(|lower|, |upper|), so that is the
    noise's scale times epsilon. Choose the bounds from what the data means (ages lie in
    0..120), never from the data itself, which would leak through the bounds.
    """
    worker, dataset_id, values = _one_column(data, "noisy_sum")
    _check_epsilon(epsilon)
    if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
        raise ValueError(
            tr(
                "need finite bounds with lower < upper, got {lower}, {upper}",
                lower=lower,
                upper=upper,
            )
        )
    worker.policy.charge([dataset_id], epsilon)
    true = _finite(values.to(torch.float64)).clamp(lower, upper).sum()
    sensitivity = max(abs(lower), abs(upper))
    return _release(worker, true + _laplace(sensitivity / epsilon, _generator(worker)))


def _laplace(scale: float, gen: torch.Generator) -> torch.Tensor:
    """One draw of Laplace(0, scale): the difference of two exponential draws."""
    pair = torch.empty(2, dtype=torch.float64).exponential_(generator=gen)
    return scale * (pair[0] - pair[1])


# ---- DP-SGD with Opacus -------------------------------------------------------------------


def train(
    model: nn.Module,
    data: PointerTensor,
    target: PointerTensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    noise_multiplier: float,
    max_grad_norm: float,
    delta: float = DEFAULT_DELTA,
    loss: str = "cross_entropy",
) -> tuple[nn.Module, float]:
    """Train `model` on a worker's private `data` and `target` with DP-SGD; return the
    model (on the worker, released: `.get()` it) and the epsilon the run cost.

    Opacus does the private part: every step takes a Poisson sample of the records
    (each with probability batch_size / records), clips each example's gradient to L2
    norm `max_grad_norm`, adds Gaussian noise of standard deviation
    `noise_multiplier * max_grad_norm` to their sum, and steps plain SGD. The run is
    (epsilon, delta)-differentially private for each (example, label) record, with
    epsilon from Opacus's RDP accountant for the planned steps. That epsilon is charged
    to both datasets *before* training starts; a run the budgets cannot pay is refused
    and nothing changes.

    The model must be here (not sent anywhere yet), so that its starting values are
    the learner's own: a model already on the worker could hold private data or a model
    trained on it without DP, and this release would carry that out. It must be an
    `nn.Sequential` of layers in `PER_EXAMPLE_LAYERS` (nested Sequentials are fine), and
    `loss` one of `LOSSES`: those keep examples apart, which per-example clipping relies
    on. Non-finite values in the data count as 0. If training fails once started, the
    budget stays spent and the error says no more than that, since its details could
    depend on the data.
    """
    worker, ids, x, y = _pair(data, target)
    if loss not in LOSSES:
        raise ValueError(
            tr("loss must be one of {value}, got {loss}", value=sorted(LOSSES), loss=repr(loss))
        )
    _check_model(model)
    if not (
        isinstance(epochs, int) and epochs >= 1 and isinstance(batch_size, int) and batch_size >= 1
    ):
        raise ValueError(tr("epochs and batch_size must be positive integers"))
    if not (lr > 0 and max_grad_norm > 0):
        raise ValueError(tr("lr and max_grad_norm must be positive"))
    if not noise_multiplier > 0:
        raise ValueError(
            tr(
                "DP-SGD needs noise: noise_multiplier > 0. For training without noise, "
                "train the model the ordinary way instead of with `dp.train`; the model "
                "exit already lets such a model out"
            )
        )
    records = len(x)
    if not 0 < delta < 1 / records:
        raise ValueError(
            tr(
                "delta must lie between 0 and 1/records = {limit}: a delta of 1/records "
                "would allow one record to leak in full",
                limit=format(1 / records, ".3g"),
            )
        )
    batches = math.ceil(records / batch_size)  # Opacus samples each record at rate 1/batches
    planned = epsilon(
        noise_multiplier, sample_rate=1 / batches, steps=epochs * batches, delta=delta
    )
    real = copy.deepcopy(model)
    _dry_run(real, x, y, LOSSES[loss])  # a wrong shape fails here, before any charge
    worker.policy.charge(ids, planned)
    try:
        steps_taken = _run_opacus(
            real,
            worker,
            _finite(x),
            _finite(y),
            LOSSES[loss],
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
        )
    except Exception:
        raise RuntimeError(
            tr(
                "training failed on {worker} after epsilon {planned} was charged; the "
                "error stays there, as it could depend on the data. Check that the "
                "model's outputs fit the targets (e.g. one output per class).",
                worker=worker.id,
                planned=format(planned, ".3g"),
            )
        ) from None
    if steps_taken != [(noise_multiplier, 1 / batches, epochs * batches)]:
        raise RuntimeError(
            tr(
                "Opacus's accountant recorded {steps_taken}, not the planned run: the "
                "epsilon charged ({planned}) may be wrong. Please report this as a bug.",
                steps_taken=steps_taken,
                planned=format(planned, "g"),
            )
        )
    _module.send(model, worker)  # fresh objects there, then given the trained values
    with torch.no_grad():
        for (sent, _), (trained, _) in zip(_module.tensors(model), _module.tensors(real)):
            obj_id = cast(PointerTensor, sent).id_at_location
            held = worker.store.lookup(obj_id)
            held.copy_(trained)
            held.grad = None  # the last step's gradient stays here
            worker.policy.release(obj_id, "dp")
    return model, planned


def _finite(t: torch.Tensor) -> torch.Tensor:
    """NaN and infinities as 0: one record's value could otherwise turn the whole model
    into NaN, telling that such a record exists."""
    if not t.dtype.is_floating_point:
        return t
    return torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)


def _dry_run(
    real: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[..., torch.Tensor]
) -> None:
    """The model on one all-zero example: says whether it fits the data, reading none."""
    with torch.no_grad():
        out = real(torch.zeros((1, *x.shape[1:]), dtype=x.dtype))
        loss_fn(out, _as_target(torch.zeros((1, *y.shape[1:]), dtype=y.dtype), out, loss_fn))


def _run_opacus(
    real: nn.Module,
    worker: VirtualWorker,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[..., torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    noise_multiplier: float,
    max_grad_norm: float,
) -> list[tuple[float, float, int]]:
    """The training itself, on the worker's real tensors. Returns the steps Opacus's
    accountant recorded, (noise multiplier, sample rate, steps), to be checked against
    the plan that was charged."""
    from opacus import PrivacyEngine  # type: ignore[import-untyped]
    from torch.utils.data import DataLoader, TensorDataset

    gen = _generator(worker)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, generator=gen)
    optimizer = torch.optim.SGD(real.parameters(), lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "secure RNG off": the worker's generator is used
        engine = PrivacyEngine(accountant="rdp")
        private, optimizer, loader = engine.make_private(
            module=real,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            noise_generator=gen,
        )
        for _ in range(epochs):
            for xb, yb in loader:
                optimizer.zero_grad()
                # a sum over the batch divided by its size: the mean, and 0 (not nan) for
                # the empty batches Poisson sampling sometimes draws
                out = private(xb)
                step_loss = loss_fn(out, _as_target(yb, out, loss_fn), reduction="sum")
                (step_loss / max(len(xb), 1)).backward()
                optimizer.step()
    private.remove_hooks()
    return list(engine.accountant.history)


def _as_target(y: torch.Tensor, out: torch.Tensor, loss_fn: Callable[..., Any]) -> torch.Tensor:
    return y.to(out.dtype).reshape(out.shape) if loss_fn is F.mse_loss else y


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            tr(
                "dp.train takes an nn.Sequential of standard layers (nn.Linear, "
                "nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, ...): a custom forward() "
                "could mix the examples of a batch, and then no per-example clipping "
                "would bound a record"
            )
        )
    for sub in model.modules():
        if isinstance(sub, nn.Sequential):
            allowed = type(sub) is nn.Sequential
        else:
            allowed = type(sub) in PER_EXAMPLE_LAYERS
        if not allowed:
            raise TypeError(
                tr(
                    "dp.train cannot run a {kind}: only nn.Sequential and {value}",
                    kind=type(sub).__name__,
                    value=", ".join(t.__name__ for t in PER_EXAMPLE_LAYERS),
                )
            )
        if isinstance(sub, nn.Flatten) and sub.start_dim < 1:
            raise ValueError(tr("nn.Flatten must keep the batch dimension (start_dim=1)"))
        if (
            sub._forward_hooks
            or sub._forward_pre_hooks
            or sub._backward_hooks
            or sub._backward_pre_hooks
        ):
            raise ValueError(tr("dp.train refuses a model with hooks: they could mix examples"))
        if "forward" in vars(sub):
            raise ValueError(tr("dp.train refuses a layer whose forward() was replaced"))
    if any(isinstance(t, PointerTensor) for t, _ in _module.tensors(model)):
        raise ValueError(
            tr(
                "dp.train takes a model that is here, and sends it itself: a model "
                "already on a worker may hold values computed from private data. Use a "
                "fresh model, or `.get()` this one first."
            )
        )


# ---- finding the data, charging, releasing ------------------------------------------------


def _dataset(data: Any, what: str) -> tuple[VirtualWorker, int, torch.Tensor]:
    """The worker, id and real tensor of a pointer to data its owner loaded."""
    if not isinstance(data, PointerTensor):
        raise TypeError(
            tr(
                "{what} takes a pointer to a worker's dataset, e.g. bob.load(x, "
                "private=True, epsilon=1.0), not {kind}",
                what=what,
                kind=type(data).__name__,
            )
        )
    worker = data.location
    if not isinstance(worker, VirtualWorker):
        raise TypeError(
            tr(
                "{what} runs on a VirtualWorker; {worker} offers no way to run it there yet",
                what=what,
                worker=repr(worker),
            )
        )
    obj_id = data.id_at_location
    if worker.describe(obj_id) is None:
        raise ValueError(
            tr(
                "{what} answers questions about a dataset as its owner loaded it; object "
                "{obj_id} on {worker} was computed from something. A result computed by "
                "the caller could let one record count many times.",
                what=what,
                obj_id=obj_id,
                worker=worker.id,
            )
        )
    return worker, obj_id, worker.store.lookup(obj_id)


def _one_column(data: Any, what: str) -> tuple[VirtualWorker, int, torch.Tensor]:
    worker, obj_id, values = _dataset(data, what)
    if values.dim() != 1:
        raise ValueError(
            tr(
                "{what} needs one value per record, a 1-D dataset; this one has shape "
                "{value}. Load each column on its own.",
                what=what,
                value=tuple(values.shape),
            )
        )
    return worker, obj_id, values


def _pair(data: Any, target: Any) -> tuple[VirtualWorker, list[int], torch.Tensor, torch.Tensor]:
    worker, data_id, x = _dataset(data, "dp.train")
    target_worker, target_id, y = _dataset(target, "dp.train")
    if target_worker is not worker:
        raise ValueError(tr("data and target must be on one worker"))
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            tr(
                "data and target need the same, nonzero number of records ({x_count} and "
                "{y_count})",
                x_count=len(x),
                y_count=len(y),
            )
        )
    return worker, [data_id] if data_id == target_id else [data_id, target_id], x, y


def _check_epsilon(value: float) -> None:
    if isinstance(value, bool) or not (
        isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    ):
        raise ValueError(tr("epsilon must be a positive number, got {value}", value=repr(value)))


def _release(worker: VirtualWorker, value: torch.Tensor) -> PointerTensor:
    obj_id = worker.register(value.to(torch.float32))
    worker.policy.release(obj_id, "dp")
    return PointerTensor(worker, obj_id, value.shape, torch.float32)
