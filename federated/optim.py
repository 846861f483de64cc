"""`Optims`: one optimizer per worker, for optimizers that keep state.

SGD without momentum remembers nothing between steps, so one optimizer can follow a
model from worker to worker. Momentum and Adam keep running averages *next to* each
parameter; when the model is on bob that state is on bob, and it cannot be used when
the model is on alice. So each worker gets its own optimizer over the same parameters.

Speed: torch's optimizers update parameters one by one on the CPU (`foreach=None` means
that there). Through pointers each update is a call to the worker, a network message for a
remote one. `foreach=True` (the optimizer's own argument) makes one call per operation
for all parameters of a group: choose it for a model on a remote worker, or one with many
parameters (for one linear layer in this process the loop is faster). Nothing here
changes that setting behind your back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from federated.errors import WorkerMismatchError
from federated.language import tr
from federated.pointer import PointerTensor, optimizer_message


def _worker_id(worker: Any) -> str:
    return worker if isinstance(worker, str) else worker.id


class Optims:
    """`Optims(['bob', 'alice'], optim=torch.optim.Adam(model.parameters(), lr=0.1))`.

    The given optimizer is the pattern: each worker gets a fresh one of the same class,
    with the same parameter groups and settings. `get_optim(worker_id)` returns it.
    """

    def __init__(self, workers: Iterable[Any], optim: torch.optim.Optimizer) -> None:
        if not isinstance(optim, torch.optim.Optimizer):
            raise TypeError(
                tr(
                    "optim must be a torch.optim optimizer, not {kind}",
                    kind=type(optim).__name__,
                )
            )
        ids = [_worker_id(w) for w in workers]
        if not ids or len(set(ids)) != len(ids):
            raise ValueError(tr("Optims needs distinct worker ids, got {ids}", ids=ids))
        self.pattern = optim
        self.optimizers: dict[str, torch.optim.Optimizer] = {i: self._fresh() for i in ids}

    def _fresh(self) -> torch.optim.Optimizer:
        groups = [{**group, "params": list(group["params"])} for group in self.pattern.param_groups]
        return type(self.pattern)(groups, **self.pattern.defaults)

    def get_optim(self, worker_id: Any) -> torch.optim.Optimizer:
        """The optimizer for `worker_id` (an id string or the worker itself)."""
        key = _worker_id(worker_id)
        try:
            return self.optimizers[key]
        except KeyError:
            raise KeyError(
                tr(
                    "Optims has no optimizer for {key}; it was made for {ids}. Pass every "
                    "worker id when creating it.",
                    key=repr(key),
                    ids=sorted(self.optimizers),
                )
            ) from None

    def __repr__(self) -> str:
        return f"Optims({type(self.pattern).__name__} for {list(self.optimizers)})"


def check_state_location(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """Before any optimizer step: its state must be where each parameter is.

    `TorchHook` installs this as torch's one global step pre-hook (and `unhook()` removes
    it), so that a step that would mix workers is refused before it changes anything:
    caught operation by operation, the first ones of the step would already have run.
    It only reads; a step of a local model with local state passes straight through.
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
                    raise WorkerMismatchError(
                        optimizer_message(
                            getattr(there, "id", "your machine"),
                            getattr(here, "id", "your machine"),
                        )
                    )
