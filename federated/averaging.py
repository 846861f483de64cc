"""Federated averaging: many copies of one model become one, weighted by how much data
each copy learned from (McMahan et al., 2017).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from federated import module as _module
from federated.errors import WorkerMismatchError
from federated.fixed_precision import FixedPrecisionTensor
from federated.language import tr
from federated.sharing import AdditiveSharingTensor

if TYPE_CHECKING:
    from federated.contract import Worker
    from federated.pointer import PointerTensor


# One model's `_module.tensors`: read once per model by each caller, since with a thousand
# models every extra walk through their modules adds up.
Table = list[tuple[torch.Tensor, bool]]


def _check_architecture(tables: Sequence[Table]) -> None:
    shapes = [[tuple(t.shape) for t, _ in table] for table in tables]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(tr("federated_avg needs models of one architecture (same shapes)"))


def _check(tables: Sequence[Table], weights: Sequence[float] | None) -> list[float]:
    if len(tables) == 0:
        raise ValueError(tr("federated_avg needs at least one model"))
    _check_architecture(tables)
    where = [_module.location_of(table) for table in tables]
    places = {id(w): w for w in where}
    if len(places) > 1:
        names = sorted(
            getattr(w, "id", "here") if w is not None else "here" for w in places.values()
        )
        raise WorkerMismatchError(
            tr(
                "federated_avg needs every model in one place, but they are on {names}. "
                "Move them to the aggregator first: `model.move(secure_worker)`.",
                names=names,
            )
        )
    return _fractions(weights, len(tables))


def federated_avg(
    models: Sequence[nn.Module],
    weights: Sequence[float] | None = None,
    *,
    secure: bool | str = False,
    crypto_provider: Worker | None = None,
    precision: int = 6,
    start: nn.Module | None = None,
    max_update_norm: float | None = None,
    noise_multiplier: float = 0.0,
) -> nn.Module:
    """A new model whose every parameter is the weighted mean of the models' parameters.

    `weights` are usually each model's number of training samples; by default all count
    alike. The inputs are left unchanged. Integer buffers (such as BatchNorm's step
    counter) are taken from the first model, since they can't be averaged.

    Plain mode: the models must all be in one place, here or on one worker (the
    aggregator); the average is computed there and stays there until you `.get()` it.

    `secure=True`: each model stays on its own worker (one model per worker). Each owner
    encodes its weighted model in fixed precision and secret-shares it among all the
    owners; each owner adds up the shares it holds; only the sum is reconstructed, here.
    No worker and not the caller ever sees another owner's model. The result is a model
    here, equal to the plain average within 10**-precision per owner. Sums need no
    Beaver triples, so `crypto_provider` is only passed on to the shares.

    `secure="masks"` or `secure="committee"`: the protocols that scale to many owners,
    pairwise masks or a small committee of aggregators (`federated.secagg`).

    DP-FedAvg (`start=`, `max_update_norm=`, `noise_multiplier=`): see `dp_avg`.
    """
    if start is not None or max_update_norm is not None or noise_multiplier:
        if secure or weights is not None:
            raise ValueError(
                tr(
                    "DP-FedAvg weighs every client alike and works in plain mode: drop "
                    "`weights` and `secure`"
                )
            )
        return dp_avg(models, start, max_update_norm, noise_multiplier)
    if isinstance(secure, str):
        from federated import secagg  # here: it needs `cryptography`, the flower extra

        return secagg.average(models, weights, protocol=secure)
    if secure:
        return _secure_avg(models, weights, crypto_provider, precision)
    tables = [_module.tensors(m) for m in models]
    shares = _check(tables, weights)
    average = _module.copy_module(models[0])
    columns = zip(*tables)
    with torch.no_grad():
        for target, column in zip(_module.tensors(average), columns):
            tensor, _ = target
            if not tensor.dtype.is_floating_point:
                continue
            total = column[0][0] * shares[0]
            for (other, _), share in zip(column[1:], shares[1:]):
                total = total + other * share
            tensor.copy_(total)
    return average


def dp_avg(
    models: Sequence[nn.Module],
    start: nn.Module | None,
    max_update_norm: float | None,
    noise_multiplier: float,
) -> nn.Module:
    """DP-FedAvg (McMahan et al., 2018): `start` plus the noisy mean of clipped updates.

    Each client's update, its model minus `start` over every floating-point tensor
    together, is scaled down to L2 norm at most C = `max_update_norm`. The clipped
    updates are summed, Gaussian noise of standard deviation `noise_multiplier` * C is
    added to every number of the sum, and the sum is divided by n, the number of models.

    What this guarantees: client-level differential privacy of the new model. Two
    federations are neighbours when they differ in one client's whole contribution,
    present in one and zero in the other (n, the number of clients, is public). That
    changes the sum by at most C, so each round is the Gaussian mechanism with
    sensitivity C; `federated.dp.epsilon(noise_multiplier, sample_rate=1.0,
    steps=rounds, delta=...)` gives, from Opacus's RDP accountant, the epsilon of that
    many rounds in which every client takes part. A client-level guarantee covers every
    record of that client too.

    What it does not guarantee: the models must all be in one place (an aggregator, or
    here), and that place sees every clipped update before the noise. The noise is drawn
    there, so the caller does not know it; VirtualWorkers share this process and its
    random generator, so with them this is a simulation of that trust.
    """
    if start is None or max_update_norm is None:
        raise ValueError(
            tr(
                "DP-FedAvg needs the round's starting model (`start=`) and the clipping "
                "bound (`max_update_norm=`)"
            )
        )
    if not (max_update_norm > 0 and noise_multiplier >= 0):
        raise ValueError(tr("need max_update_norm > 0 and noise_multiplier >= 0"))
    tables = [_module.tensors(m) for m in models]
    start_table = _module.tensors(start)
    _check(tables, None)
    _check_architecture([start_table, *tables])
    if _module.location_of(start_table) is not _module.location_of(tables[0]):
        raise WorkerMismatchError(
            tr(
                "DP-FedAvg needs the starting model where the models are: send a copy of "
                "it there, `start.copy().send(aggregator)`."
            )
        )
    floating = [i for i, (t, _) in enumerate(start_table) if t.dtype.is_floating_point]
    base = [start_table[i][0] for i in floating]
    total: list = [None] * len(base)
    with torch.no_grad():
        for tensors in tables:
            update = [tensors[i][0] - b for i, b in zip(floating, base)]
            squares = (update[0] * update[0]).sum()
            for u in update[1:]:
                squares = squares + (u * u).sum()
            norm = squares.sqrt()
            scale = (norm.reciprocal() * max_update_norm).clamp(max=1.0)
            for j, u in enumerate(update):
                total[j] = u * scale if total[j] is None else total[j] + u * scale
        average = _module.copy_module(start)
        targets = _module.tensors(average)
        for i, b, s in zip(floating, base, total):
            if noise_multiplier:
                s = s + torch.randn_like(s) * (noise_multiplier * max_update_norm)
            targets[i][0].copy_(b + s / len(models))
    return average


def _secure_avg(
    models: Sequence[nn.Module],
    weights: Sequence[float] | None,
    crypto_provider: Worker | None,
    precision: int,
) -> nn.Module:
    owners = [_module.location(m) for m in models]
    located = [w for w in owners if w is not None]
    if (
        len(models) < 2
        or len(located) != len(owners)
        or len({w.id for w in located}) != len(owners)
    ):
        raise ValueError(
            tr(
                "secure averaging needs two or more models, each on its own owner's "
                "worker (model.send(owner)); one worker cannot hide its model from itself"
            )
        )
    tensors = [_module.tensors(m) for m in models]
    _check_architecture(tensors)
    fractions = _fractions(weights, len(models))
    # A local model of the same architecture, built without fetching anyone's values.
    memo = {
        id(t): (
            nn.Parameter(torch.zeros(t.shape, dtype=t.dtype), t.requires_grad)
            if is_param
            else torch.zeros(t.shape, dtype=t.dtype)
        )
        for t, is_param in tensors[0]
    }
    average = copy.deepcopy(models[0], memo)
    with torch.no_grad():
        for j, (target, _) in enumerate(_module.tensors(average)):
            if not target.dtype.is_floating_point:
                # a counter, not data; the models are on their owners, so this is a pointer
                target.copy_(cast("PointerTensor", tensors[0][j][0]).copy().get())
                continue
            shared = []
            for column, fraction in zip(tensors, fractions):
                weighted = column[j][0] * fraction  # computed on its owner's worker
                encoded = FixedPrecisionTensor.from_float(weighted, precision).child
                shared.append(AdditiveSharingTensor.share(encoded, located, crypto_provider))
            total = sum(shared[1:], start=shared[0])  # two models or more: checked above
            target.copy_(FixedPrecisionTensor(total.get(), precision).float_precision())
    return average


def _fractions(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(
            tr("got {weights_count} weights for {n} models", weights_count=len(weights), n=n)
        )
    total = float(sum(weights))
    if any(w < 0 for w in weights) or total <= 0:
        raise ValueError(tr("weights must be non-negative with a positive sum (sample counts)"))
    return [float(w) / total for w in weights]
