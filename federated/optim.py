"""`Optims`: one optimizer per worker, for optimizers that keep state.

SGD without momentum remembers nothing between steps, so one optimizer can follow a
model from worker to worker. Momentum and Adam keep running averages *next to* each
parameter; when the model is on bob that state is on bob, and it cannot be used when
the model is on alice. So each worker gets its own optimizer over the same parameters.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import torch

from federated.errors import WorkerMismatchError
from federated.pointer import PointerTensor, optimizer_message
from federated.worker import VirtualWorker


def _worker_id(worker: Any) -> str:
    return worker if isinstance(worker, str) else worker.id


class Optims:
    """`Optims(['bob', 'alice'], optim=torch.optim.Adam(model.parameters(), lr=0.1))`.

    The given optimizer is the pattern: each worker gets a fresh one of the same class,
    with the same parameter groups and settings. `get_optim(worker_id)` returns it.
    """

    def __init__(self, workers: Iterable[Any], optim: torch.optim.Optimizer) -> None:
        if not isinstance(optim, torch.optim.Optimizer):
            raise TypeError(f"optim must be a torch.optim optimizer, not {type(optim).__name__}")
        ids = [_worker_id(w) for w in workers]
        if not ids or len(set(ids)) != len(ids):
            raise ValueError(f"Optims needs distinct worker ids, got {ids}")
        self.pattern = optim
        self.optimizers: dict[str, torch.optim.Optimizer] = {i: self._fresh() for i in ids}

    def _fresh(self) -> torch.optim.Optimizer:
        groups = [{**group, "params": list(group["params"])} for group in
                  self.pattern.param_groups]
        return type(self.pattern)(groups, **self.pattern.defaults)

    def get_optim(self, worker_id: Any) -> torch.optim.Optimizer:
        """The optimizer for `worker_id` (an id string or the worker itself)."""
        key = _worker_id(worker_id)
        try:
            return self.optimizers[key]
        except KeyError:
            raise KeyError(
                f"Optims has no optimizer for {key!r}; it was made for "
                f"{sorted(self.optimizers)}. Pass every worker id when creating it."
            ) from None

    def __repr__(self) -> str:
        return f"Optims({type(self.pattern).__name__} for {list(self.optimizers)})"


def check_state_location(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """Before any optimizer step: its state must be where each parameter is.

    Installed by `TorchHook` as a global step pre-hook, so a step that would mix workers
    is refused before it changes anything (one operation at a time, the first ones of the
    step would already have run).
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param)
            if not state:
                continue
            here = param.location if isinstance(param, PointerTensor) else None
            for value in state.values():
                if isinstance(value, PointerTensor):
                    there = value.location
                elif isinstance(value, torch.Tensor) and value.dim():
                    there = None
                else:  # not a tensor, or a scalar such as Adam's step count, kept here
                    continue
                if there is not here:
                    raise WorkerMismatchError(optimizer_message(
                        getattr(there, "id", "your machine"), getattr(here, "id", "your machine")))


# Optimizers whose foreach version keeps all its per-parameter state next to the
# parameters (ASGD's, for one, mixes in scalars kept here, so it keeps its own loop).
_FOREACH_SAFE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop,
                 torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam,
                 torch.optim.Adadelta, torch.optim.Rprop, torch.optim.Adagrad)
# On a worker in this process, foreach pays from this many parameters on: for one
# linear layer (2) the seed's SGD step took 87 µs with its loop and 128 µs with foreach.
_FOREACH_FROM = 4
# Parameter groups whose `foreach` we set for the step under way, to be put back after it.
_chosen: weakref.WeakKeyDictionary[torch.optim.Optimizer, list[dict]] = \
    weakref.WeakKeyDictionary()


def use_foreach(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """Before a step: a group of parameters that all point to one worker, and that left
    `foreach` for torch to choose, steps with torch's foreach implementation.

    Same arithmetic, fewer calls: the per-parameter loop makes about three calls through
    pointers for each parameter, and each is a trip to the worker (a network message
    for a remote one); foreach makes three for the whole group. Torch chooses foreach
    on accelerators for the same reason. `restore_foreach` puts `None` back afterwards.
    """
    if not isinstance(optimizer, _FOREACH_SAFE):
        return
    for group in optimizer.param_groups:
        if group.get("foreach", False) is not None or group.get("differentiable") \
                or group.get("fused"):
            continue  # the user chose, or the optimizer has no foreach version
        params = group["params"]
        if not params or not all(isinstance(p, PointerTensor) for p in params):
            continue
        where = params[0].location
        if any(p.location is not where for p in params):
            continue
        if len(params) < _FOREACH_FROM and isinstance(where, VirtualWorker):
            continue  # in this process, torch's foreach bookkeeping outweighs a call or two
        group["foreach"] = True
        _chosen.setdefault(optimizer, []).append(group)


def restore_foreach(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """After a step: the groups `use_foreach` changed say `foreach=None` again."""
    for group in _chosen.pop(optimizer, ()):
        group["foreach"] = None
