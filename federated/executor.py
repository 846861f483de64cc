"""`Executor`: runs a torch function on objects a worker holds.

The caller names objects with *handles*: anything with an integer `id_at_location` (a
`PointerTensor` in this process, a wire `Ref` in a worker server). The executor replaces
each handle by the object it names, asks the privacy policy, runs the function, keeps
each new tensor result in the store, and gives it back through the caller's own `wrap`
function: the executor never needs to know what kind of handle it hands out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import torch

from federated.language import tr
from federated.policy import PrivacyPolicy
from federated.store import ObjectStore

Wrap = Callable[[int, torch.Tensor], Any]  # (new id, result) -> the caller's handle
Refresh = Callable[[Any, torch.Tensor], Any]  # (input's handle, its new value) -> handle

# Results that may come back as plain values: metadata, never data.
PLAIN_RESULTS = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    torch.Size,
    torch.dtype,
    torch.device,
    torch.layout,
    torch.memory_format,
)
# In-place ops that can change their tensor's shape. After any other in-place op the
# handle's shape is still right, so the caller's `refresh` is not needed.
_DATA: Any = torch.Tensor.data  # a C descriptor, though torch's stubs call it an attribute
RESHAPING = frozenset(
    {
        torch.Tensor.resize_,
        torch.Tensor.resize_as_,
        torch.Tensor.squeeze_,
        torch.Tensor.unsqueeze_,
        torch.Tensor.t_,
        torch.Tensor.transpose_,
        torch.Tensor.swapaxes_,
        torch.Tensor.swapdims_,
        torch.Tensor.as_strided_,
        torch.Tensor.set_,
        _DATA.__set__,
    }
)
_IN_PLACE_DUNDERS = frozenset(
    {
        "__iadd__",
        "__isub__",
        "__imul__",
        "__itruediv__",
        "__ifloordiv__",
        "__imod__",
        "__ipow__",
        "__imatmul__",
        "__iand__",
        "__ior__",
        "__ixor__",
        "__ilshift__",
        "__irshift__",
        "__setitem__",
        "__set__",  # __set__: `t.grad = g`, `t.data = d`
    }
)


CONTAINERS = (list, tuple, dict)  # what a call's arguments may nest handles in
_GENERAL = object()  # `_unwatched` ran nothing: the call needs `run`'s general path


@cache
def writes_first_argument(func: Callable[..., Any]) -> bool:
    """Whether `func` changes its first argument: `add_`, `x += y`, `x[i] = y`, `x.grad = g`."""
    name = getattr(func, "__name__", "")
    if name in _IN_PLACE_DUNDERS:
        return True
    return name.endswith("_") and not name.endswith("__")


class Executor:
    """Runs functions on the objects of `store`, under `policy`."""

    def __init__(self, store: ObjectStore, policy: PrivacyPolicy) -> None:
        self.store, self.policy = store, policy

    def run(
        self,
        func: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict | None,
        wrap: Wrap,
        refresh: Refresh | None = None,
    ) -> Any:
        """`func(*args, **kwargs)` with every handle replaced by its object.

        New tensor results are registered and handed to `wrap(new_id, tensor)`. An input
        that an in-place op returns keeps the handle it came with; if the op may have
        changed its shape, `refresh(handle, tensor)` makes the handle right again.
        Nothing runs if a handle names no object or the policy refuses.
        """
        if not (PrivacyPolicy.fill_fresh_memory or self.policy.active):
            result = self._unwatched(func, args, kwargs, wrap)
            if result is not _GENERAL:
                return result
        handles: dict[int, Any] = {}  # id() of each object named -> the handle naming it
        inputs: list[int] = []  # the ids of those objects, each once
        real_args = self._resolve(args, handles, inputs)
        real_kwargs = (
            dict(zip(kwargs, self._resolve(tuple(kwargs.values()), handles, inputs)))
            if kwargs
            else {}
        )
        # The policy is asked once whether it watches anything here; a worker holding no
        # private data (most steps of most lessons) then skips its checks. The guard
        # around the call itself is the policy's to give (fresh memory is filled once
        # any worker in the process holds private data).
        watched = self.policy.active
        written = self._written(func, args, kwargs) if watched else []
        if watched:
            self.policy.before_call(func, inputs, written)
        guard = self.policy.running(func, inputs, real_args, real_kwargs)
        if guard is None:
            result = func(*real_args, **real_kwargs)
        else:
            with guard:
                result = func(*real_args, **real_kwargs)
        if watched and not isinstance(result, torch.Tensor):
            self.policy.check_result(func, inputs, written, result)
        if not (func in RESHAPING or "out" in real_kwargs):
            refresh = None  # the shape cannot have changed: a returned input's handle stands
        outputs: list[int] = []
        wrapped = self._wrap(result, func, handles, wrap, refresh, outputs)
        if watched:
            self.policy.after_call(func, inputs, outputs, written)
        return wrapped

    def _unwatched(
        self, func: Callable[..., Any], args: Sequence[Any], kwargs: dict | None, wrap: Wrap
    ) -> Any:
        """`run` when the policy has nothing to watch and no memory needs filling: the
        same call without the bookkeeping the checks need. A training step is a dozen
        such calls, so this is most of a virtual worker's work. Handles inside lists or
        dicts (`torch.cat([p, q])`), handles as keywords, `out=` and ops that may reshape
        their input are left to `run`: for those this returns `_GENERAL`, running nothing."""
        if func in RESHAPING:
            return _GENERAL
        store = self.store
        real_args = []
        for a in args:
            obj_id = getattr(a, "id_at_location", None)
            if type(obj_id) is int:
                real_args.append(store[obj_id])  # ObjectNotFoundError before anything runs
            elif type(a) in CONTAINERS:
                return _GENERAL
            else:
                real_args.append(a)
        if kwargs:
            if "out" in kwargs:
                return _GENERAL
            for v in kwargs.values():
                if type(getattr(v, "id_at_location", None)) is int or type(v) in CONTAINERS:
                    return _GENERAL
            result = func(*real_args, **kwargs)
        else:
            result = func(*real_args)
        if isinstance(result, torch.Tensor):
            for handle, real in zip(args, real_args):
                if real is result and handle is not real:  # an in-place op returned its input
                    return handle
            return wrap(store.register(result), result)
        if isinstance(result, PLAIN_RESULTS):
            return result
        handles = {id(real): h for h, real in zip(args, real_args) if real is not h}
        return self._wrap(result, func, handles, wrap, None, [])  # a tuple of results

    def _resolve(
        self, items: Sequence[Any], handles: dict[int, Any], inputs: list[int]
    ) -> list[Any]:
        out = []
        for a in items:
            obj_id = getattr(a, "id_at_location", None)
            if type(obj_id) is int:
                real = self.store[obj_id]  # ObjectNotFoundError before anything runs
                handles[id(real)] = a
                if obj_id not in inputs:
                    inputs.append(obj_id)
                out.append(real)
            elif type(a) in (list, tuple):
                real_items = type(a)(self._resolve(a, handles, inputs))
                handles[id(real_items)] = a  # `_foreach_add_` returns the list it was given
                out.append(real_items)
            elif type(a) is dict:
                out.append(dict(zip(a, self._resolve(tuple(a.values()), handles, inputs))))
            else:
                out.append(a)
        return out

    @staticmethod
    def _written(func: Callable[..., Any], args: Sequence[Any], kwargs: dict | None) -> list[int]:
        """Ids of the objects `func` will change: its first argument if it works in place,
        and whatever `out=` names. A list is looked into: `torch._foreach_add_([a, b], 1)`
        changes `a` and `b`."""
        written: list[int] = []
        targets = list(args[:1]) if writes_first_argument(func) else []
        if kwargs:
            if kwargs.get("inplace"):
                targets = list(args[:1])
            out = kwargs.get("out")
            targets += out if isinstance(out, (list, tuple)) else [out]
        for t in _flat(targets):
            obj_id = getattr(t, "id_at_location", None)
            if type(obj_id) is int:
                written.append(obj_id)
        return written

    def _wrap(
        self,
        result: Any,
        func: Callable[..., Any],
        handles: dict[int, Any],
        wrap: Wrap,
        refresh: Refresh | None,
        outputs: list[int],
    ) -> Any:
        if isinstance(result, torch.Tensor):
            handle = handles.get(id(result))
            if handle is not None:  # an in-place op returned its input
                outputs.append(handle.id_at_location)
                return handle if refresh is None else refresh(handle, result)
            obj_id = self.store.register(result)
            outputs.append(obj_id)
            return wrap(obj_id, result)
        if isinstance(result, (list, tuple)):
            given = handles.get(id(result))
            if given is not None:  # an in-place op returned a list of inputs: hand it back
                outputs.extend(_flat_ids(given))
                return given
            items = [self._wrap(r, func, handles, wrap, refresh, outputs) for r in result]
            if type(result) in (list, tuple):
                return type(result)(items)
            if hasattr(result, "_fields"):
                return type(result)(*items)
            return type(result)(items)  # torch.return_types are struct sequences
        if isinstance(result, PLAIN_RESULTS):
            return result
        raise TypeError(
            tr(
                "`{func}` returned a {kind}, which cannot be pointed to; only tensors and plain "
                "values come back from {owner}.",
                func=getattr(func, "__name__", func),
                kind=type(result).__name__,
                owner=self.store.owner,
            )
        )


def _flat(items: Sequence[Any]) -> list[Any]:
    """Lists inside a list of targets opened up: `torch._foreach_add_([a, b], 1)`."""
    out: list[Any] = []
    for item in items:
        out.extend(_flat(item) if type(item) in (list, tuple) else (item,))
    return out


def _flat_ids(items: Sequence[Any]) -> list[int]:
    """The object ids the handles in a (nested) list name."""
    return [
        t.id_at_location for t in _flat(items) if type(getattr(t, "id_at_location", None)) is int
    ]
