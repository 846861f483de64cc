"""`VirtualWorker`: a worker inside this Python process, so a whole federation fits in a
notebook.

It is three parts put together, each in its own module: an `ObjectStore` (what it holds,
by id), a `PrivacyPolicy` (what may leave) and an `Executor` (computation on what it
holds). The methods below are the `Worker` contract pointers rely on (see
`federated.contract`), plus what a data owner does: `load` her data and `search` it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from federated.contract import Worker
from federated.executor import Executor
from federated.language import tr
from federated.pointer import GET_GRAD, PointerTensor
from federated.policy import PrivacyPolicy
from federated.store import ObjectStore


@dataclass(frozen=True)
class Loaded:
    """What a data owner said about data she placed on her worker."""

    tags: tuple[str, ...]
    description: str
    private: bool


def _tags(tags: Iterable[str | Sequence[str]]) -> tuple[str, ...]:
    """`"#a"`, `["#a", "#b"]` or several of either, as one flat tuple of tags."""
    flat: list[str] = []
    for tag in tags:
        if isinstance(tag, str):
            flat.append(tag)
        elif isinstance(tag, (list, tuple)) and all(isinstance(t, str) for t in tag):
            flat.extend(tag)
        else:
            raise TypeError(
                tr("a tag is a string such as '#patients', not {value}", value=repr(tag))
            )
    return tuple(flat)


class VirtualWorker:
    """A named worker holding tensors in this process.

    `hook` is the `TorchHook` that gave tensors their `.send()`; `id` names the worker in
    pointers and error messages. `data` (PySyft's argument) is loaded as the owner's own,
    public, data; use `load(..., private=True)` for private data.
    """

    def __init__(
        self,
        hook: Any,
        id: str,  # noqa: A002 - PySyft's name
        data: Iterable[torch.Tensor] = (),
    ) -> None:
        if not isinstance(id, str) or not id:
            raise ValueError(tr("a worker needs a non-empty string id, e.g. id='bob'"))
        data = tuple(data)
        if not all(isinstance(t, torch.Tensor) and not isinstance(t, PointerTensor) for t in data):
            raise TypeError(tr("data is a sequence of local tensors, e.g. data=(x, y)"))
        self.hook = hook
        self.id = id
        self.store = ObjectStore(id)
        self.policy = PrivacyPolicy(self.store)
        self.executor = Executor(self.store, self.policy)
        self._loaded: dict[int, Loaded] = {}  # what the data owner placed here herself
        for tensor in data:
            self.load(
                tensor,
                tag=tuple(getattr(tensor, "tags", ())),
                description=getattr(tensor, "description", ""),
            )

    def __repr__(self) -> str:
        return f"<VirtualWorker id:{self.id} #objects:{len(self.store)}>"

    def __deepcopy__(self, memo: dict) -> VirtualWorker:
        return self  # a worker is a place, not a value: copies of a model stay on it

    def __copy__(self) -> VirtualWorker:
        return self

    @property
    def objects(self) -> Mapping[int, Any]:
        """What this worker holds, by id (a read-only, live view)."""
        return self.store.view

    @property
    def _tensors(self) -> Mapping[int, Any]:
        """PySyft's name for `objects`."""
        return self.store.view

    def clear_objects(self) -> None:
        """Forget everything; pointers to it will then say their object is gone."""
        for obj_id in list(self.store.view):
            self.policy.forget(obj_id)
        self.store.clear()
        self._loaded.clear()

    # ---- data the owner places here ------------------------------------------------------

    def load(
        self,
        tensor: torch.Tensor,
        tag: str | Sequence[str] = (),
        private: bool = False,
        description: str = "",
        epsilon: float | None = None,
        model_exit: bool = True,
    ) -> PointerTensor:
        """Place the owner's own data here, findable by tag with `search`.

        Loaded data stays until the owner clears it, whatever happens to pointers. With
        `private=True` it can be computed on, but neither it nor a trivial copy of it
        (a view, a slice, `x + 0`, ...) can be fetched or moved: only results that are
        smaller than the data, such as a loss or a trained model, can leave. `epsilon`
        is the differential-privacy budget releases about it may spend; `model_exit`
        says whether a model trained on it may leave.
        """
        if not isinstance(tensor, torch.Tensor) or isinstance(tensor, PointerTensor):
            raise TypeError(tr("load() takes a local tensor, the owner's own data"))
        tags = _tags([tag])
        if epsilon is not None and not epsilon > 0:
            raise ValueError(tr("epsilon is a positive budget, got {epsilon}", epsilon=epsilon))
        obj_id = self.store.register(tensor.detach().clone())
        self._loaded[obj_id] = Loaded(tags, description, private)
        self.policy.on_load(obj_id, private=private, epsilon=epsilon, model_exit=model_exit)
        return self._point(obj_id, tensor)

    def search(self, *tags: str | Sequence[str]) -> list[PointerTensor]:
        """Pointers to the loaded data carrying every one of `tags` (strings, or lists
        of them: `search("#a", "#b")` and `search(["#a", "#b"])` are the same)."""
        return [self._point(i, self.store[i]) for i in self.search_ids(*tags)]

    def search_ids(self, *tags: str | Sequence[str]) -> list[int]:
        wanted = _tags(tags)
        return [
            obj_id
            for obj_id, info in self._loaded.items()
            if obj_id in self.store and all(t in info.tags for t in wanted)
        ]

    def is_private(self, obj_id: int) -> bool:
        return self.policy.is_private(obj_id)

    def describe(self, obj_id: int) -> Loaded | None:
        """Tags and description of loaded data, or None."""
        return self._loaded.get(obj_id)

    # ---- the Worker contract ---------------------------------------------------------------

    def register(self, obj: Any) -> int:
        """Keep `obj` (no copy) and return its new id."""
        return self.store.register(obj)

    def receive(self, tensor: torch.Tensor) -> PointerTensor:
        """Take a copy of a local tensor (or ownership of a pointer, making a chain)."""
        if isinstance(tensor, PointerTensor):
            held = tensor._hand_over(f"sent to {self.id}")
            return self._point(self.store.register(held), held)
        copy = tensor.detach().clone()
        copy.requires_grad_(tensor.requires_grad)
        return self._point(self.store.register(copy), copy)

    def fetch(self, obj_id: int) -> Any:
        """Hand an object over and forget it."""
        return self.fetch_many([obj_id])[0]

    def fetch_many(self, obj_ids: list[int]) -> list[Any]:
        """Hand several objects over, all or none."""
        self.policy.check_leave(obj_ids)
        objs = [self.store[i] for i in obj_ids]
        for i in obj_ids:
            self.store.pop(i, None)
            self.policy.forget(i)
        return objs

    def free(self, obj_id: int) -> None:
        """Forget an object (its last pointer is gone); missing ids are fine. Loaded data
        belongs to the owner and stays."""
        if obj_id not in self._loaded:
            self.store.pop(obj_id, None)
            self.policy.forget(obj_id)

    def move_object(self, obj_id: int, destination: Worker) -> int:
        """Send an object straight to another worker; returns its id there."""
        self.policy.check_leave([obj_id])
        new_id = destination.register(self.store[obj_id])
        self.store.pop(obj_id, None)
        self.policy.forget(obj_id)
        return new_id

    def copy_object(self, obj_id: int) -> PointerTensor:
        """Copy an object here and point to the copy."""
        obj = self.store[obj_id]
        copy: torch.Tensor
        if isinstance(obj, PointerTensor):
            copy = obj.copy()
        else:  # a copied model's parameters stay parameters: the model exit is for them
            copy = obj.detach().clone()
            if isinstance(obj, torch.nn.Parameter):
                copy = torch.nn.Parameter(copy, requires_grad=obj.requires_grad)
            copy.requires_grad_(obj.requires_grad)
        new_id = self.store.register(copy)
        self.policy.after_call(torch.clone, [obj_id], [new_id], [])
        return self._point(new_id, copy)

    def remote_get(self, obj_id: int) -> None:
        """Replace a pointer held here by the value it points to."""
        obj = self.store[obj_id]
        if isinstance(obj, PointerTensor):
            self.store[obj_id] = obj.get()

    def execute(
        self, func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any] | None
    ) -> Any:
        """Run `func` on the objects the pointers in `args` name; point to the results."""
        return self.executor.run(func, args, kwargs, self._point, _refresh)

    def grad_of(self, pointer: PointerTensor) -> PointerTensor | None:
        """`p.grad`, with one pointer per gradient rather than a new one per access:
        an optimizer reads `p.grad` several times for every parameter and step."""
        grad = self.store[pointer.id_at_location].grad
        if grad is None:
            return None
        cached = pointer._grad_pointer
        if (
            cached is not None
            and cached._gone is None
            and cached.location is self
            and self.store.get(cached.id_at_location) is grad
        ):
            return cached
        grad_id = self.store.register(grad)
        if self.policy.active:
            self.policy.after_call(GET_GRAD, [pointer.id_at_location], [grad_id], [])
        fresh = self._point(grad_id, grad)
        pointer._cache_grad(fresh)
        return fresh

    # ---- helpers ----------------------------------------------------------------------------

    def _point(self, obj_id: int, obj: torch.Tensor) -> PointerTensor:
        return PointerTensor(self, obj_id, obj.shape, obj.dtype)


def _refresh(pointer: PointerTensor, real: torch.Tensor) -> PointerTensor:
    return pointer._refresh(real.shape, real.dtype)
