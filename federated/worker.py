"""Workers: the places where data lives and computation runs.

A `VirtualWorker` is a worker inside this Python process, so a whole federation fits in a
notebook. It keeps a table of objects by id and does what pointers ask of it. Everything
a pointer needs from a worker is the handful of methods below; a worker in another
process implements the same ones.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch._C import DisableTorchFunctionSubclass

from federated.errors import ObjectNotFoundError, PrivateDataError
from federated.pointer import _GET_GRAD, _PLAIN, _SET_GRAD, PointerTensor, _func_name
from federated.protocol import Ref

# Ops whose result holds the input's values as they are, only rearranged or selected.
_COPYING = {
    "clone", "detach", "detach_", "view", "view_as", "reshape", "reshape_as", "flatten",
    "ravel", "squeeze", "unsqueeze", "permute", "transpose", "t", "T", "mT", "movedim",
    "contiguous", "expand", "expand_as", "repeat", "flip", "roll", "__getitem__", "select",
    "narrow", "index_select", "gather", "take", "masked_select", "chunk", "split",
    "tensor_split", "unbind", "cat", "concat", "concatenate", "stack", "hstack", "vstack",
    "to", "type", "float", "double", "half", "bfloat16", "long", "int", "short", "char",
    "byte", "bool", "data", "unfold", "diagonal", "tril", "triu", "sort", "topk",
}
# In-place ops that can change their tensor's shape. After any other in-place op the
# pointer's shape is still right; checking it anyway would cost more than a small op.
_RESHAPING = {
    torch.Tensor.resize_, torch.Tensor.resize_as_, torch.Tensor.squeeze_,
    torch.Tensor.unsqueeze_, torch.Tensor.t_, torch.Tensor.transpose_,
    torch.Tensor.swapaxes_, torch.Tensor.swapdims_, torch.Tensor.as_strided_,
    torch.Tensor.set_, torch.Tensor.data.__set__,
}
_METHOD_WRAPPER = type(_GET_GRAD)
_HOLDERS = (torch.Tensor, Ref, list, tuple, dict)  # what may hold a pointer to resolve


@dataclass(frozen=True)
class Loaded:
    """What a data owner said about data she placed on her worker."""

    tags: tuple[str, ...]
    description: str
    private: bool


class VirtualWorker:
    """A named worker holding tensors in this process.

    `hook` is the `TorchHook` that gave tensors their `.send()`; `id` names the worker in
    pointers and error messages. Object ids count up from 1, so printed pointers are the
    same on every run of a notebook.
    """

    def __init__(self, hook: Any, id: str) -> None:  # noqa: A002 - PySyft's name
        if not isinstance(id, str) or not id:
            raise ValueError("a worker needs a non-empty string id, e.g. id='bob'")
        self.hook = hook
        self.id = id
        self._objects: dict[int, Any] = {}
        self._next_id = 0
        self._loaded: dict[int, Loaded] = {}  # what the data owner placed here herself
        self._private: set[int] = set()  # ids of raw private data and its trivial copies

    def __repr__(self) -> str:
        return f"<VirtualWorker id:{self.id} #objects:{len(self._objects)}>"

    def __deepcopy__(self, memo: dict) -> VirtualWorker:
        return self  # a worker is a place, not a value: copies of a model stay on it

    def __copy__(self) -> VirtualWorker:
        return self

    @property
    def objects(self) -> Mapping[int, Any]:
        """What this worker holds, by id (a read-only view)."""
        return MappingProxyType(self._objects)

    def clear_objects(self) -> None:
        """Forget everything; pointers to it will then say their object is gone."""
        self._objects.clear()
        self._loaded.clear()
        self._private.clear()

    # ---- data the owner places here ------------------------------------------------------

    def load(self, tensor: torch.Tensor, tag: str | Sequence[str] = (), private: bool = False,
             description: str = "") -> PointerTensor:
        """Place the owner's own data here, findable by tag with `search`.

        Loaded data stays until the owner clears it, whatever happens to pointers. With
        `private=True` it can be computed on, but neither it nor a trivial copy of it
        (a view, a slice, `x + 0`, ...) can be fetched or moved: only results that are
        smaller than the data, such as a loss or a trained model, can leave.
        """
        tags = (tag,) if isinstance(tag, str) else tuple(tag)
        pointer = self._pointer_to(tensor.detach().clone())
        self._loaded[pointer.id_at_location] = Loaded(tags, description, private)
        if private:
            self._private.add(pointer.id_at_location)
        return pointer

    def search(self, *tags: str) -> list[PointerTensor]:
        """Pointers to the loaded data carrying every one of `tags`."""
        return [PointerTensor(self, i, self._objects[i].shape, self._objects[i].dtype)
                for i in self.search_ids(*tags)]

    def search_ids(self, *tags: str) -> list[int]:
        return [obj_id for obj_id, info in self._loaded.items()
                if obj_id in self._objects and all(t in info.tags for t in tags)]

    def is_private(self, obj_id: int) -> bool:
        return obj_id in self._private

    def describe(self, obj_id: int) -> Loaded | None:
        """Tags and description of loaded data, or None."""
        return self._loaded.get(obj_id)

    def _check_may_leave(self, obj_id: int) -> None:
        if obj_id in self._private:
            raise PrivateDataError(
                f"{self.id}'s object {obj_id} is private data, or a copy of it: it can be "
                f"computed on here, but not fetched, copied out or moved. Train on it and "
                f"fetch what training produces (a model, a loss) instead."
            )

    # ---- the table of objects ------------------------------------------------------------

    def register(self, obj: Any) -> int:
        """Keep `obj` (no copy) and return its new id."""
        self._next_id += 1
        self._objects[self._next_id] = obj
        return self._next_id

    def _lookup(self, obj_id: int) -> Any:
        obj = self._objects.get(obj_id)
        if obj is not None:
            return obj
        try:
            return self._objects[obj_id]
        except KeyError:
            raise ObjectNotFoundError(
                f"{self.id} holds no object {obj_id}: it was fetched, moved or freed "
                f"already. Use the pointer that call returned."
            ) from None

    def _pointer_to(self, obj: Any) -> PointerTensor:
        self._next_id += 1  # register(), inlined: this runs for every result
        self._objects[self._next_id] = obj
        return PointerTensor(self, self._next_id, obj.shape, obj.dtype)

    def receive(self, tensor: torch.Tensor) -> PointerTensor:
        """Take a copy of a local tensor (or ownership of a pointer, making a chain)."""
        if isinstance(tensor, PointerTensor):
            held = PointerTensor(tensor.location, tensor.id_at_location, tensor.shape,
                                 tensor.dtype)
            held.__dict__.update({k: v for k, v in tensor.__dict__.items()
                                  if k not in ("_gone", "_grad_pointer")})
            tensor._gone = f"sent to {self.id}"
            return self._pointer_to(held)
        copy = tensor.detach().clone()
        copy.requires_grad_(tensor.requires_grad)
        return self._pointer_to(copy)

    def fetch(self, obj_id: int) -> Any:
        """Hand an object over and forget it."""
        self._check_may_leave(obj_id)
        obj = self._lookup(obj_id)
        del self._objects[obj_id]
        return obj

    def fetch_many(self, obj_ids: list[int]) -> list[Any]:
        """Hand several objects over, all or none."""
        for i in obj_ids:
            self._check_may_leave(i)
        objs = [self._lookup(i) for i in obj_ids]
        for i in obj_ids:
            del self._objects[i]
        return objs

    def free(self, obj_id: int) -> None:
        """Forget an object (its last pointer is gone); missing ids are fine. Loaded data
        belongs to the owner and stays."""
        if obj_id not in self._loaded:
            self._objects.pop(obj_id, None)
            if self._private:
                self._private.discard(obj_id)

    def move_object(self, obj_id: int, destination: Any) -> int:
        """Send an object straight to another worker; returns its id there."""
        self._check_may_leave(obj_id)
        obj = self._lookup(obj_id)
        new_id = destination.register(obj)
        del self._objects[obj_id]
        return new_id

    def copy_object(self, obj_id: int) -> PointerTensor:
        """Copy an object here and point to the copy."""
        obj = self._lookup(obj_id)
        if isinstance(obj, PointerTensor):
            return self._pointer_to(obj.copy())
        copy = obj.detach().clone()
        copy.requires_grad_(obj.requires_grad)
        pointer = self._pointer_to(copy)
        if obj_id in self._private:
            self._private.add(pointer.id_at_location)
        return pointer

    def remote_get(self, obj_id: int) -> None:
        """Replace a pointer held here by the value it points to."""
        obj = self._lookup(obj_id)
        if isinstance(obj, PointerTensor):
            self._objects[obj_id] = obj.get()

    # ---- running what pointers ask -------------------------------------------------------

    def execute(self, func: Any, args: tuple, kwargs: dict | None) -> Any:
        """Run `func` on the objects the pointers in `args` name; point to the results."""
        if type(func) is _METHOD_WRAPPER:  # a property: `p.grad` passes these very objects,
            if func == _GET_GRAD:            # torch's dispatch fresh equal ones
                return self.grad_of(args[0])
            if func == _SET_GRAD:
                self._forget_grad(args[0])
                if args[1] is None:  # zero_grad, once per parameter and step: no _call
                    self._lookup(args[0].id_at_location).grad = None
                    return None
        return self._call(func, args, kwargs, self._pointer_to, _refresh_shape)

    def run(self, func: Any, args: tuple, kwargs: dict | None) -> Any:
        """`execute` for a worker server: objects named by `Ref`s in, `Ref`s out."""
        return self._call(func, args, kwargs, self._ref_to, _refresh_ref)

    def _call(self, func: Any, args: tuple, kwargs: dict | None, new: Any, same: Any) -> Any:
        """Resolve, run, wrap. `new` makes a handle for a new result, `same` refreshes the
        handle of an input an in-place op returned. Every call through a pointer comes
        here, so the usual case (one tensor out) is written out rather than delegated."""
        inputs: dict[int, Any] = {}
        real_args = self._resolve(args, inputs)
        if kwargs:
            values = tuple(kwargs.values())
            if any(isinstance(v, _HOLDERS) for v in values):  # usually just `alpha=` and such
                kwargs = dict(zip(kwargs, self._resolve(values, inputs)))
            result = func(*real_args, **kwargs)
        else:
            result = func(*real_args)
        if func not in _RESHAPING and not (kwargs and "out" in kwargs):
            same = _unchanged
        if isinstance(result, torch.Tensor):
            handle = inputs.get(id(result))
            wrapped = new(result) if handle is None else same(handle, result)
        else:
            wrapped = self._wrap(result, inputs, func, new, same)
        if self._private:
            self._propagate_privacy(func, inputs, wrapped)
        return wrapped

    def _ref_to(self, obj: Any) -> Ref:
        return Ref(self.register(obj), tuple(obj.shape), obj.dtype)

    def _propagate_privacy(self, func: Any, inputs: dict[int, PointerTensor],
                           results: Any) -> None:
        """A result stays private if it may *be* the private data: made by a copying or
        reshaping op, or at least as large as the smallest private input."""
        private = [p for p in inputs.values() if p.id_at_location in self._private]
        if not private:
            return
        smallest = min(p.numel() for p in private)
        copying = _func_name(func) in _COPYING
        stack = [results]
        while stack:
            r = stack.pop()
            if isinstance(r, (PointerTensor, Ref)):
                if copying or r.numel() >= smallest:
                    self._private.add(r.id_at_location)
            elif isinstance(r, (list, tuple)):
                stack.extend(r)

    def grad_of(self, pointer: PointerTensor) -> PointerTensor | None:
        """`p.grad`, with one pointer per gradient rather than a new one per access:
        an optimizer step reads `p.grad` three times for every parameter."""
        real = self._objects.get(pointer.id_at_location)
        grad = (real if real is not None else self._lookup(pointer.id_at_location)).grad
        if grad is None:
            return None
        cached = pointer.__dict__.get("_grad_pointer")
        if cached is not None:
            if cached.id_at_location is None:  # resting since zero_grad: wake it up
                cached.id_at_location = self.register(grad)
                return cached
            if self._objects.get(cached.id_at_location) is grad:
                return cached
        pointer._grad_pointer = self._pointer_to(grad)
        return pointer._grad_pointer

    def _forget_grad(self, pointer: PointerTensor) -> None:
        """`p.grad = ...` replaces the gradient: the cached pointer to the old one goes.

        If nobody else holds that pointer it is kept, resting (pointing nowhere), for the
        next gradient: a training loop would otherwise make and drop one per parameter
        per step. A pointer someone kept (`g = p.grad`) is left alone and keeps the old
        gradient, as a plain tensor would.
        """
        cached = pointer.__dict__.get("_grad_pointer")
        if cached is None or cached.id_at_location is None:
            return
        if sys.getrefcount(cached) > 3:  # the cache, `cached` and getrefcount's argument
            del pointer.__dict__["_grad_pointer"]
            return
        self.free(cached.id_at_location)
        cached.id_at_location = None

    def _resolve(self, items: tuple | list, inputs: dict[int, Any]) -> list:
        """The arguments with each pointer (or reference) replaced by the object it names."""
        out = []
        objects = self._objects
        for a in items:
            if isinstance(a, (PointerTensor, Ref)):
                real = objects.get(a.id_at_location)
                if real is None:
                    real = self._lookup(a.id_at_location)  # raises ObjectNotFoundError
                inputs[id(real)] = a
                out.append(real)
            elif type(a) in (list, tuple):
                out.append(type(a)(self._resolve(a, inputs)))
            elif type(a) is dict:
                out.append(dict(zip(a, self._resolve(tuple(a.values()), inputs))))
            else:
                out.append(a)
        return out

    def _wrap(self, result: Any, inputs: dict[int, Any], func: Any, new: Any,
              same: Any) -> Any:
        """Tensors in a result become handles (`new`); an input returned by an in-place
        op keeps its handle (`same`), so nothing new is made."""
        if isinstance(result, torch.Tensor):
            handle = inputs.get(id(result))
            return new(result) if handle is None else same(handle, result)
        if isinstance(result, (list, tuple)):
            items = [self._wrap(item, inputs, func, new, same) for item in result]
            if type(result) in (list, tuple):
                return type(result)(items)
            if hasattr(result, "_fields"):
                return type(result)(*items)
            return type(result)(items)  # torch.return_types are struct sequences
        if isinstance(result, _PLAIN):
            return result
        raise TypeError(
            f"`{getattr(func, '__name__', func)}` returned a {type(result).__name__}, which "
            f"cannot be pointed to; only tensors and plain values come back from {self.id}."
        )


def _unchanged(handle: Any, real: torch.Tensor) -> Any:
    return handle


def _refresh_ref(ref: Ref, real: torch.Tensor) -> Ref:
    return Ref(ref.id_at_location, tuple(real.shape), real.dtype)


def _refresh_shape(pointer: PointerTensor, real: torch.Tensor) -> PointerTensor:
    """An in-place op may change shape (`unsqueeze_`); rebuild the pointer's metadata."""
    with DisableTorchFunctionSubclass():
        if pointer.shape == real.shape and pointer.dtype == real.dtype:
            return pointer
        fresh = PointerTensor(None, None, real.shape, real.dtype)
        state = dict(pointer.__dict__)
        state.pop("_grad_pointer", None)  # its shape was the old one
        torch.utils.swap_tensors(pointer, fresh)  # keeps the pointer's Python identity
    fresh.id_at_location = None  # the old wrapper must not free the object on deletion
    pointer.__dict__.update(state)
    return pointer


if __name__ == "__main__":  # python -m federated.worker --id bob --port 8777
    from federated.server import main

    main()
