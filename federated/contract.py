"""`Worker`: everything a pointer, a model or an optimizer may ask of a worker.

`VirtualWorker` (in this process) and `RemoteWorker` (a worker server elsewhere) both
implement it; pointers cannot tell them apart. To add a new kind of worker, implement these
methods and nothing else: the rest of the package depends on this contract only.

Every method either does all it says or raises before changing anything, so a learner can
correct a failed call and run it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:  # pointers name workers and workers make pointers: typing only
    from federated.pointer import PointerTensor


class Worker(Protocol):
    """A place where data lives and computation runs."""

    id: str
    """The worker's name, shown in pointers and in every error message about it."""

    @property
    def objects(self) -> Mapping[int, Any]:
        """What the worker holds, by id, for inspection (a remote worker shows shapes only).

        Why: learners check what a worker holds after each step, and tests check that a
        failed call left it unchanged.
        """
        ...

    def receive(self, tensor: torch.Tensor, /) -> PointerTensor:
        """Keep a copy of a local tensor (or take over a pointer, making a chain) and
        return a pointer to it. Why: this is `tensor.send(worker)`."""
        ...

    def register(self, obj: torch.Tensor, /) -> int:
        """Keep `obj` itself, without copying it, and return its new id.

        Why: `model.send(worker)` hands over each parameter's storage; its pointer is
        made by the caller, which keeps the parameter's Python identity.
        """
        ...

    def execute(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any] | None, /
    ) -> Any:
        """Run `func` on the objects the pointers in `args`/`kwargs` name; return pointers
        to new tensor results, the same pointer for an input an in-place op returned, and
        plain values (shapes, numbers computed from metadata) as they are.

        Why: this is the one path computation takes; every pointer's `__torch_function__`
        ends here, so the worker's privacy policy sees every operation.
        """
        ...

    def grad_of(self, pointer: PointerTensor, /) -> PointerTensor | None:
        """A pointer to `pointer`'s gradient, or None; the same pointer on every read of
        one gradient. Why: an optimizer reads `p.grad` several times per step and keys its
        bookkeeping by identity."""
        ...

    def fetch(self, obj_id: int, /) -> Any:
        """Hand the object over and forget it; PrivateDataError if it may not leave."""
        ...

    def fetch_many(self, obj_ids: list[int], /) -> list[Any]:
        """`fetch` for several objects, all or none. Why: `model.get()` must not bring
        back half a model when one parameter may not leave."""
        ...

    def free(self, obj_id: int, /) -> None:
        """Forget an object whose last pointer is gone; unknown ids are fine (the object
        may have been fetched or cleared already). Why: called from `__del__`, which must
        never raise."""
        ...

    def move_object(self, obj_id: int, destination: Worker, /) -> int:
        """Send an object straight to `destination` and forget it here; returns its id
        there. Why: `x.move(alice)` must not pass the value through the caller."""
        ...

    def copy_object(self, obj_id: int, /) -> PointerTensor:
        """Copy an object on this worker; returns a pointer to the copy."""
        ...

    def remote_get(self, obj_id: int, /) -> None:
        """Replace a pointer held here by the value it points to (collapses a chain)."""
        ...
