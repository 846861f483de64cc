"""`PointerTensor`: a local stand-in for a tensor that lives on a worker.

A pointer knows the shape and dtype of what it points to, and nothing else. It is a
`torch.Tensor` subclass with no storage; its `__torch_function__` catches every torch
function, tensor method and operator called on it and runs the call on the worker that
holds the operands, returning pointers to the results. That is all PySyft 0.2's giant
hook did, in a page.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch._C import DisableTorchFunctionSubclass

from federated.errors import (
    LocalTensorError,
    RevealError,
    StalePointerError,
    WorkerMismatchError,
)

# Attribute getters answered from the pointer's own metadata, with no trip to the worker.
_LOCAL_GETTERS = [
    getattr(torch.Tensor, name).__get__
    for name in ("shape", "dtype", "device", "ndim", "layout", "is_cuda", "is_meta",
                 "is_quantized", "is_sparse", "is_nested", "is_mkldnn")
]
# Methods that only read shape or dtype: also answered here.
_LOCAL_METHODS = [
    torch.Tensor.size, torch.Tensor.dim, torch.Tensor.numel, torch.Tensor.nelement,
    torch.Tensor.__len__, torch.Tensor.element_size, torch.Tensor.is_floating_point,
    torch.Tensor.is_complex, torch.is_complex, torch.is_floating_point, torch.numel,
]
# Calls that would hand a remote value to this machine without asking: `.get()` it instead.
_REVEALING = [
    torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.__bool__,
    torch.Tensor.__int__, torch.Tensor.__float__, torch.Tensor.__index__,
    torch.Tensor.__complex__, torch.Tensor.__array__, torch.Tensor.__reduce_ex__,
    torch.Tensor.__setstate__, torch.Tensor.__contains__, torch.Tensor.is_nonzero,
    torch.is_nonzero, torch.Tensor.equal, torch.equal, torch.Tensor.allclose, torch.allclose,
]
_LOCAL, _REVEAL, _ITER = "local", "reveal", "iter"
# One dict lookup per call decides whether a call is special.
_SPECIAL = {**dict.fromkeys(_LOCAL_GETTERS + _LOCAL_METHODS, _LOCAL),
            **dict.fromkeys(_REVEALING, _REVEAL), torch.Tensor.__iter__: _ITER}
# Results that may come back as plain values: metadata, never data.
_PLAIN = (type(None), bool, int, float, complex, str, torch.Size, torch.dtype, torch.device,
          torch.layout, torch.memory_format)


_CPU = torch.device("cpu")
_GET_GRAD = torch.Tensor.grad.__get__
_SET_GRAD = torch.Tensor.grad.__set__


class PointerTensor(torch.Tensor):
    """Points to tensor `id_at_location` on worker `location`.

    Created by `tensor.send(worker)` or as the result of computing through pointers,
    never by hand. When the last reference to a pointer goes, the worker frees the object.
    """

    location: Any
    id_at_location: int
    # A pointer is always a dense wrapper, whatever it points to; answered here because
    # every optimizer step asks it of each gradient.
    is_sparse = False

    @staticmethod
    def __new__(cls, location: Any, id_at_location: int | None, shape: Any,
                dtype: torch.dtype, device: Any = _CPU) -> PointerTensor:
        ptr = torch.Tensor._make_wrapper_subclass(cls, shape, dtype=dtype, device=device)
        # `_gone` says why the object is no longer reachable: "fetched", "moved", ...
        ptr.__dict__.update(location=location, id_at_location=id_at_location, _gone=None)
        return ptr

    # ---- moving values between here and the workers -------------------------------------

    def send(self, worker: Any) -> PointerTensor:
        """Send this pointer itself to `worker`, making a chain: we point to `worker`,
        `worker` points to where the value is."""
        self._check_live()
        return worker.receive(self)

    def get(self) -> Any:
        """Bring the value here. The worker forgets it; this pointer is used up."""
        self._check_live()
        value = self.location.fetch(self.id_at_location)
        self._gone = "fetched"
        self.__dict__.pop("_grad_pointer", None)  # the gradient came along with the tensor
        return value

    def move(self, worker: Any) -> PointerTensor:
        """Move the value from its worker straight to `worker`; this pointer follows it."""
        self._check_live()
        if worker is self.location:
            return self
        new_id = self.location.move_object(self.id_at_location, worker)
        self.__dict__.pop("_grad_pointer", None)  # the gradient went along with the tensor
        self.location, self.id_at_location = worker, new_id
        return self

    def remote_get(self) -> PointerTensor:
        """For a pointer to a pointer: the middle worker fetches the value it points to,
        so the chain becomes one hop. Nothing passes through this machine."""
        self._check_live()
        self.location.remote_get(self.id_at_location)
        return self

    def copy(self) -> PointerTensor:
        """A pointer to a new copy of the value, made on the same worker."""
        self._check_live()
        return self.location.copy_object(self.id_at_location)

    # ---- the gradient ----------------------------------------------------------------------

    @property
    def grad(self) -> PointerTensor | None:  # type: ignore[override]
        """A pointer to the gradient on the worker, or None.

        A property of its own rather than torch's: an optimizer reads `p.grad` three times
        per parameter and step, and this skips torch's dispatch for each.
        """
        if self._gone is not None:
            self._check_live()
        return self.location.grad_of(self)

    @grad.setter
    def grad(self, value: PointerTensor | None) -> None:
        args = (self, value)
        where = self.location if value is None else _common_location(_SET_GRAD, args, None)
        if self._gone is not None:
            self._check_live()
        where.execute(_SET_GRAD, args, None)

    # ---- Python protocol -----------------------------------------------------------------

    def __repr__(self, *, tensor_contents: Any = None) -> str:
        with DisableTorchFunctionSubclass():
            shape = tuple(self.shape)
        where = getattr(self.location, "id", self.location)
        gone = f" {self._gone}" if self._gone else ""
        return f"(Pointer {where}:{self.id_at_location} shape={shape}{gone})"

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __hash__(self) -> int:
        # Tensor.__hash__ would go through __torch_function__ to the worker; optimizers
        # key their state by parameter, so identity is what we want: exactly `id`, as
        # Tensor's is, or a parameter's state is lost when it comes back from `get`.
        return id(self)

    def __deepcopy__(self, memo: dict) -> PointerTensor:
        new = self.copy()
        if self.__dict__.get("_module_param"):
            new._module_param = True  # a copied model's parameters are still parameters
        memo[id(self)] = new
        return new

    def __del__(self) -> None:
        state = self.__dict__
        if state.get("_gone") is None and state.get("id_at_location") is not None:
            try:  # noqa: SIM105 - contextlib.suppress costs a microsecond per pointer here
                state["location"].free(state["id_at_location"])
            except Exception:  # interpreter shutdown, or a worker already gone
                pass

    def _check_live(self) -> None:
        if self._gone is not None:
            raise StalePointerError(
                f"{self!r} can no longer be used: its object was {self._gone}. "
                "Use the pointer that call returned instead."
            )

    # ---- the forwarding itself -----------------------------------------------------------

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        raise RuntimeError(f"internal error: a pointer reached the dispatcher in {func}")

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        special = _SPECIAL.get(func)
        if special is not None:
            if special is _LOCAL:
                with DisableTorchFunctionSubclass():
                    return func(*args, **(kwargs or {}))
            if special is _ITER:
                return iter(torch.unbind(args[0], 0))
            raise RevealError(
                f"`{_func_name(func)}` would copy a value from {args[0].location.id} to your "
                "machine. Call `.get()` on the pointer first if you are allowed to."
            )
        return _common_location(func, args, kwargs).execute(func, args, kwargs)


def _func_name(func: Any) -> str:
    owner = getattr(func, "__self__", None)
    if isinstance(owner, type(torch.Tensor.grad)):  # a property's __get__/__set__
        return owner.__name__
    return getattr(func, "__name__", repr(func))


def _common_location(func: Any, args: tuple, kwargs: dict | None) -> Any:
    """The one worker that holds every operand, or an error saying what to fix.

    This runs on every call through a pointer, so it is a plain loop, not a tree walk.
    """
    location = first = local = None
    todo = args if not kwargs else (*args, *kwargs.values())
    i = 0
    while i < len(todo):
        a = todo[i]
        i += 1
        if isinstance(a, PointerTensor):
            if a._gone is not None:
                a._check_live()
            if location is None:
                location, first = a.location, a
            elif a.location is not location:
                raise WorkerMismatchError(_mismatch_message(func, first, a))
        elif isinstance(a, torch.Tensor):
            local = a
        elif type(a) in (list, tuple, dict):  # rare: look inside, e.g. torch.cat([p, q])
            todo = (*todo, *(a.values() if type(a) is dict else a))
    if local is not None:
        raise LocalTensorError(_local_message(func, first, local))
    return location


def _called_from_optimizer() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("torch.optim"):
            return True
        frame = frame.f_back
    return False


def optimizer_message(state_at: str, model_at: str) -> str:
    """Why one stateful optimizer cannot follow a model between workers, and the fix."""
    return (
        f"The optimizer's state (momentum, Adam's running averages) is on {state_at}, where "
        f"the model was when it was made, but the model is now on {model_at}. One "
        f"optimizer cannot follow a model between workers; keep one per worker with "
        f"`optims = sy.Optims([{state_at!r}, {model_at!r}], optim=...)` and use "
        f"`opt = optims.get_optim(data.location.id)` after each `model.send(...)`."
    )


def _mismatch_message(func: Any, a: PointerTensor, b: PointerTensor) -> str:
    name = _func_name(func)
    where_a, where_b = a.location.id, b.location.id
    if _called_from_optimizer():
        return f"`{name}`: " + optimizer_message(where_a, where_b)
    if getattr(a, "_module_param", False) or getattr(b, "_module_param", False):
        model_at, data_at = (where_a, where_b) if getattr(a, "_module_param", False) \
            else (where_b, where_a)
        return (
            f"`{name}`: the model is on {model_at} but its input is on {data_at}. A model can "
            f"only run where the data is: `model.get()` it and `model.send(data.location)`, "
            f"or `model.move(data.location)`."
        )
    return (
        f"`{name}` mixes a pointer to {where_a} ({a!r}) with a pointer to {where_b} ({b!r}). "
        f"Computation runs where the data is, so both must be on one worker: move one of "
        f"them, e.g. `x.move({where_b})`."
    )


def _local_message(func: Any, pointer: PointerTensor, local: torch.Tensor) -> str:
    name, where = _func_name(func), pointer.location.id
    if isinstance(local, torch.nn.Parameter):
        return (
            f"`{name}`: the model is on your machine but its input is on {where}. Send the "
            f"model to the data first: `model.send(data.location)`."
        )
    return (
        f"`{name}` mixes a pointer to {where} with a tensor that is here on your machine "
        f"(shape {tuple(local.shape)}). Send the local tensor first, `t.send({where})`, or "
        f"bring the remote one here with `.get()`."
    )
