"""Lesson 5's training on Flower, the engine used for federated learning in production.

A learner's code stays as it is: a function that builds the model, one that trains a model
on batches (`train(model, batches)`, `batches()` yields one epoch of `(data, target)`), one
that returns partition i of n, and one that measures a model. `client_app` and `server_app`
wrap them into Flower's `ClientApp` and `ServerApp` with Flower's own `FedAvg` strategy,
its SecAgg+ workflow (`secure=True`) and its server-side DP wrapper (`dp=`). Nothing here
aggregates, masks or adds noise itself: Flower does. `simulate` runs them in Flower's
simulation engine; `federated.flower_deploy` runs them as real processes.

Flower is an optional extra (`pip install federated[flower]`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from federated.language import tr

# Flower reports usage to its authors unless told not to; our lessons send nothing anywhere.
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

try:
    from flwr.client import ClientApp, NumPyClient
    from flwr.client.mod import secaggplus_mod
    from flwr.common import Context, Scalar, ndarrays_to_parameters
    from flwr.common.logger import FLOWER_LOGGER
    from flwr.server import LegacyContext, ServerApp, ServerConfig
    from flwr.server.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        tr("federated.flower needs Flower: pip install 'federated[flower]' (or `make install`)")
    ) from error

Batch = tuple[torch.Tensor, torch.Tensor]
ModelFn = Callable[[], nn.Module]
TrainFn = Callable[[nn.Module, Callable[[], Iterable[Batch]]], Any]
PartitionFn = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]
EvaluateFn = Callable[[nn.Module], float]


def quiet() -> None:
    """Keep Flower's progress log out of a lesson's output; warnings and errors still show."""
    FLOWER_LOGGER.setLevel(logging.WARNING)


def to_arrays(model: nn.Module) -> list[np.ndarray]:
    """The model's state as the list of NumPy arrays Flower sends (state_dict order)."""
    return [t.detach().cpu().numpy().copy() for t in model.state_dict().values()]


def load_arrays(model: nn.Module, arrays: list[np.ndarray]) -> nn.Module:
    """Put arrays made by `to_arrays` back into `model` (same architecture), in place."""
    keys = list(model.state_dict())
    if len(keys) != len(arrays):
        raise ValueError(
            tr(
                "got {arrays_count} arrays for a model with {keys_count} tensors; was it "
                "made by the same model function?",
                arrays_count=len(arrays),
                keys_count=len(keys),
            )
        )
    state = {k: torch.from_numpy(np.asarray(a).copy()) for k, a in zip(keys, arrays)}
    model.load_state_dict(state)
    return model


def epoch_batches(
    data: torch.Tensor, targets: torch.Tensor, batch_size: int, seed: int
) -> Callable[[], Iterator[Batch]]:
    """A `batches()` for local tensors: each call is one shuffled epoch, reproducible from
    `seed`, like `FederatedDataLoader.batches` is for data on a worker."""
    generator = torch.Generator().manual_seed(seed)

    def batches() -> Iterator[Batch]:
        order = torch.randperm(len(data), generator=generator)
        for start in range(0, len(data), batch_size):
            index = order[start : start + batch_size]
            yield data[index], targets[index]

    return batches


class _Trainer(NumPyClient):
    """One data owner as Flower sees it: it receives the model, runs the learner's own
    training function on its partition and returns the new weights with its sample count."""

    def __init__(
        self,
        model_fn: ModelFn,
        train_fn: TrainFn,
        data: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        seed: int,
    ) -> None:
        self.model_fn, self.train_fn = model_fn, train_fn
        self.data, self.targets = data, targets
        self.batch_size, self.seed = batch_size, seed

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Any]
    ) -> tuple[list[np.ndarray], int, dict[str, Any]]:
        model = load_arrays(self.model_fn(), parameters)
        seed = self.seed + 1000 * int(config.get("round", 0))
        self.train_fn(model, epoch_batches(self.data, self.targets, self.batch_size, seed))
        return to_arrays(model), len(self.data), {}


def client_app(
    model_fn: ModelFn,
    train_fn: TrainFn,
    partition_fn: PartitionFn,
    *,
    batch_size: int = 32,
    secure: bool = False,
) -> ClientApp:
    """A Flower `ClientApp`: the node with `partition-id` i of `num-partitions` n (Flower's
    node configuration) trains on `partition_fn(i, n)` with `train_fn`.

    `secure=True` adds Flower's SecAgg+ client mod; pair it with `server_app(secure=True)`.
    """

    def client_fn(context: Context) -> Any:
        partition = int(context.node_config["partition-id"])
        count = int(context.node_config["num-partitions"])
        data, targets = partition_fn(partition, count)
        return _Trainer(model_fn, train_fn, data, targets, batch_size, seed=partition).to_client()

    return ClientApp(client_fn=client_fn, mods=[secaggplus_mod] if secure else [])


@dataclass
class DPSettings:
    """Server-side DP in Flower: every update is clipped to `clipping_norm`, and Gaussian
    noise of `noise_multiplier * clipping_norm` is added to their sum."""

    noise_multiplier: float
    clipping_norm: float


@dataclass
class History:
    """What a run measured: the test accuracy after each round (round 0 is the start)."""

    accuracies: list[float] = field(default_factory=list)


def server_app(
    model_fn: ModelFn,
    evaluate_fn: EvaluateFn,
    *,
    rounds: int,
    clients: int,
    secure: bool = False,
    dp: DPSettings | None = None,
    history: History | None = None,
    seed: int = 0,
    on_finish: Callable[[nn.Module, History], None] | None = None,
) -> ServerApp:
    """A Flower `ServerApp` running Flower's `FedAvg` over all `clients` for `rounds`.

    The model starts from `model_fn()` after `torch.manual_seed(seed)`, as lesson 5's does.
    After every round `evaluate_fn(model)` measures the average (Flower's centralised
    evaluation) and the value is appended to `history`. `secure=True` aggregates with
    SecAgg+ (the server sees only the sum); `dp` wraps the strategy in Flower's server-side
    fixed-clipping DP. `on_finish(model, history)` receives the final model.
    """
    if rounds < 1 or clients < 1:
        raise ValueError(tr("server_app needs at least one round and one client"))
    history = history if history is not None else History()
    torch.manual_seed(seed)
    initial = to_arrays(model_fn())

    def evaluate(
        server_round: int, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[float, dict[str, Scalar]]:
        model = load_arrays(model_fn(), parameters)
        accuracy = float(evaluate_fn(model))
        history.accuracies.append(accuracy)
        if on_finish is not None and server_round == rounds:
            on_finish(model, history)
        return 0.0, {"accuracy": accuracy}

    def strategy() -> Any:
        fedavg = FedAvg(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=clients,
            min_available_clients=clients,
            evaluate_fn=evaluate,
            on_fit_config_fn=lambda r: {"round": r},
            # our clients report no metrics; saying so keeps Flower from warning each run
            fit_metrics_aggregation_fn=lambda _metrics: {},
            initial_parameters=ndarrays_to_parameters(initial),
        )
        if dp is None:
            return fedavg
        return DifferentialPrivacyServerSideFixedClipping(
            fedavg,
            noise_multiplier=dp.noise_multiplier,
            clipping_norm=dp.clipping_norm,
            num_sampled_clients=clients,
        )

    app = ServerApp()

    @app.main()
    def main(grid: Any, context: Context) -> None:
        history.accuracies.clear()
        legacy = LegacyContext(
            context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy()
        )
        fit = (
            SecAggPlusWorkflow(
                num_shares=min(clients, 3) if clients > 1 else 1,
                reconstruction_threshold=min(clients, 2),
            )
            if secure
            else None
        )
        DefaultWorkflow(fit_workflow=fit)(grid, legacy)

    return app


def simulate(
    client: ClientApp, server: ServerApp, clients: int, *, cpus: int = 1, timeout: float = 300.0
) -> None:
    """Run the apps in Flower's simulation engine: `clients` virtual nodes on a Ray cluster
    of `cpus` CPUs on this machine (one ClientApp at a time per CPU), started here for this
    run (in at most `timeout` s) and stopped when it ends, also when it fails."""
    from flwr.simulation import run_simulation

    from federated.flower_deploy import LocalRay

    quiet()
    FLOWER_LOGGER.addFilter(_run_simulation_notice)
    try:
        with LocalRay(cpus, timeout=timeout) as cluster:
            cluster.connect()  # Flower's engine uses the Ray this process is connected to
            run_simulation(
                server_app=server,
                client_app=client,
                num_supernodes=clients,
                backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
            )
    finally:
        FLOWER_LOGGER.removeFilter(_run_simulation_notice)


def _run_simulation_notice(record: logging.LogRecord) -> bool:
    """Flower 1.42 marks `run_simulation` deprecated in favour of `flwr run`, which needs the
    app written to disk as a deployment does (lesson 11 shows it); a learner calling
    `simulate` is not the one to act on that notice, so it is not shown."""
    return not (
        str(record.msg).startswith("DEPRECATED FEATURE") and "run_simulation" in str(record.args)
    )
