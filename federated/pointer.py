"""`PointerTensor`: a local stand-in for a tensor that lives on a worker.

A pointer knows the shape and dtype of what it points to, and nothing else. It is a
`torch.Tensor` subclass with no storage; its `__torch_function__` catches every torch
function, tensor method and operator called on it and runs the call on the worker that
holds the operands, returning pointers to the results. That is all PySyft 0.2's giant
hook did, in a page.

A pointer's life: it is made bound to an object on a worker; it may follow the object
(`move`); it ends when the object leaves (`get`, handed on) and is then *retired*, saying
why, so a second use gets a clear error instead of someone else's object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch._C import DisableTorchFunctionSubclass

from federated.errors import (
    LocalTensorError,
    RevealError,
    StalePointerError,
    WorkerMismatchError,
)
from federated.executor import CONTAINERS
from federated.language import tr
from federated.policy import func_name

if TYPE_CHECKING:
    from federated.contract import Worker

# torch's stubs declare `grad` a plain `Tensor | None` attribute; at run time it is a
# C descriptor, and these two are what torch calls for `t.grad` and `t.grad = g`.
_GRAD_DESCRIPTOR: Any = torch.Tensor.grad
GET_GRAD = _GRAD_DESCRIPTOR.__get__
SET_GRAD = _GRAD_DESCRIPTOR.__set__


def _answer_here(func: Callable[..., Any], args: tuple, kwargs: dict | None) -> Any:
    """Shape, dtype and the like: the pointer's own metadata, no trip to the worker."""
    with DisableTorchFunctionSubclass():
        return func(*args, **(kwargs or {}))


def _refuse(func: Callable[..., Any], args: tuple, kwargs: dict | None) -> Any:
    raise RevealError(
        tr(
            "`{func}` would copy a value from {worker} to your machine. Call `.get()` on "
            "the pointer first if you are allowed to.",
            func=func_name(func),
            worker=args[0].location.id,
        )
    )


def _iterate(func: Callable[..., Any], args: tuple, kwargs: dict | None) -> Any:
    return iter(torch.unbind(args[0], 0))  # one pointer per row, as a tensor iterates


def _grad(func: Callable[..., Any], args: tuple, kwargs: dict | None) -> Any:
    return args[0].grad  # torch's own path to `.grad` gives the property's answer


# Calls a pointer answers without asking its worker what to do, by what they are.
_SPECIAL: dict[Callable[..., Any], Callable[[Any, tuple, dict | None], Any]] = {
    **dict.fromkeys(  # attribute getters and methods that only read shape or dtype
        [
            getattr(torch.Tensor, name).__get__
            for name in (
                "shape",
                "dtype",
                "device",
                "ndim",
                "layout",
                "is_cuda",
                "is_meta",
                "is_quantized",
                "is_sparse",
                "is_nested",
                "is_mkldnn",
            )
        ]
        + [
            torch.Tensor.size,
            torch.Tensor.dim,
            torch.Tensor.numel,
            torch.Tensor.nelement,
            torch.Tensor.__len__,
            torch.Tensor.element_size,
            torch.Tensor.is_floating_point,
            torch.Tensor.is_complex,
            torch.is_complex,
            torch.is_floating_point,
            torch.numel,
        ],
        _answer_here,
    ),
    **dict.fromkeys(  # calls that would hand a remote value over without asking
        [
            torch.Tensor.item,
            torch.Tensor.tolist,
            torch.Tensor.numpy,
            torch.Tensor.__bool__,
            torch.Tensor.__int__,
            torch.Tensor.__float__,
            torch.Tensor.__index__,
            torch.Tensor.__complex__,
            torch.Tensor.__array__,
            torch.Tensor.__reduce_ex__,
            torch.Tensor.__setstate__,
            torch.Tensor.__contains__,
            torch.Tensor.is_nonzero,
            torch.is_nonzero,
            torch.Tensor.equal,
            torch.equal,
            torch.Tensor.allclose,
            torch.allclose,
        ],
        _refuse,
    ),
    torch.Tensor.__iter__: _iterate,
    GET_GRAD: _grad,
}


class PointerTensor(torch.Tensor):
    """Points to object `id_at_location` on worker `location`.

    Created by `tensor.send(worker)` or as the result of computing through pointers,
    never by hand. When the last reference to a live pointer goes, the worker frees the
    object.
    """

    location: Worker
    id_at_location: int
    _gone: str | None = None  # why the object can no longer be reached: "fetched", ...
    _grad_pointer: PointerTensor | None = None  # the one pointer `.grad` returns
    _module_param: bool = False  # a model's parameter: error messages speak of the model
    # A pointer is always a dense wrapper, whatever it points to; answered here because
    # every optimizer step asks it of each gradient.
    is_sparse = False

    @staticmethod
    def __new__(
        cls,
        location: Worker,
        id_at_location: int,
        shape: Any,
        dtype: torch.dtype,
    ) -> PointerTensor:
        # on the CPU, torch's default device: naming it would cost a third of the call
        ptr = torch.Tensor._make_wrapper_subclass(cls, shape, dtype=dtype)
        ptr.__dict__.update(location=location, id_at_location=id_at_location, _gone=None)
        return ptr

    @classmethod
    def _unbound(cls, shape: Any, dtype: torch.dtype) -> PointerTensor:
        """A pointer to nothing yet, to be swapped into a tensor and then `_bind`-ed."""
        ptr = torch.Tensor._make_wrapper_subclass(cls, shape, dtype=dtype)
        ptr.__dict__.update(location=None, id_at_location=0, _gone="not sent yet")
        return ptr

    # ---- lifecycle: the only places a pointer's state changes ----------------------------

    def _bind(self, location: Worker, id_at_location: int) -> None:
        """Point to `id_at_location` on `location` (after a send or a move)."""
        self.__dict__.update(location=location, id_at_location=id_at_location, _gone=None)
        self._grad_pointer = None

    def _retire(self, reason: str) -> None:
        """The object is no longer ours to reach (`reason`: "fetched", "moved", ...);
        later uses raise StalePointerError, and deleting the pointer frees nothing."""
        self._gone = reason
        self._grad_pointer = None

    def _hand_over(self, reason: str) -> PointerTensor:
        """A fresh pointer to the same object, with this one's role; this one retires.
        Used when a worker takes over the pointer itself (a chain)."""
        fresh = PointerTensor(self.location, self.id_at_location, self.shape, self.dtype)
        fresh._module_param = self._module_param
        self._retire(reason)
        return fresh

    def _mark_parameter(self, is_parameter: bool) -> None:
        self._module_param = is_parameter

    def _cache_grad(self, grad: PointerTensor | None) -> None:
        self._grad_pointer = grad

    def _refresh(self, shape: Any, dtype: torch.dtype) -> PointerTensor:
        """After an in-place op that may change shape (`unsqueeze_`): take the object's
        new shape and dtype, keeping this pointer's Python identity."""
        with DisableTorchFunctionSubclass():
            if self.shape == shape and self.dtype == dtype:
                return self
            state = dict(self.__dict__)
            fresh = PointerTensor._unbound(shape, dtype)
            torch.utils.swap_tensors(self, fresh)  # `fresh` is now the old wrapper
        fresh._retire("reshaped")  # the old wrapper must not free the object on deletion
        self.__dict__.update(state)
        self._grad_pointer = None  # its shape was the old one
        return self

    def _check_live(self) -> None:
        if self._gone is not None:
            raise self._stale()

    def _stale(self) -> StalePointerError:
        return StalePointerError(
            tr(
                "{pointer} can no longer be used: its object was {reason}. If the call "
                "that did this returned a new pointer or the value in its place, use that.",
                pointer=repr(self),
                reason=_reason(self._gone or ""),
            )
        )

    # ---- moving values between here and the workers -------------------------------------

    def send(self, worker: Worker) -> PointerTensor:
        """Send this pointer itself to `worker`, making a chain: we point to `worker`,
        `worker` points to where the value is."""
        self._check_live()
        return worker.receive(self)

    def get(self) -> Any:
        """Bring the value here. The worker forgets it; this pointer is used up."""
        self._check_live()
        value = self.location.fetch(self.id_at_location)
        self._retire("fetched")  # its gradient came along with it
        return value

    def move(self, worker: Worker) -> PointerTensor:
        """Move the value from its worker straight to `worker`; this pointer follows it."""
        self._check_live()
        if worker is self.location:
            return self
        new_id = self.location.move_object(self.id_at_location, worker)
        self._bind(worker, new_id)  # its gradient went along with it
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

    @property  # type: ignore[override]  # a pointer's gradient is a pointer, or None
    def grad(self) -> PointerTensor | None:
        """A pointer to the gradient on the worker, or None.

        A property of its own rather than torch's: an optimizer reads `p.grad` three times
        per parameter and step, and this skips torch's dispatch for each.
        """
        if self._gone is not None:
            raise self._stale()
        return self.location.grad_of(self)

    @grad.setter
    def grad(self, value: PointerTensor | None) -> None:
        if self._gone is not None:
            raise self._stale()
        self._grad_pointer = None  # what it pointed to is no longer our gradient
        args = (self, value)
        where = self.location if value is None else _common_location(SET_GRAD, args, None)
        where.execute(SET_GRAD, args, None)

    # ---- Python protocol -----------------------------------------------------------------

    # torch's stub names the keyword `Any` (a stub generator's slip), hence the ignore
    def __repr__(self, *, tensor_contents: Any = None) -> str:  # type: ignore[override]
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
        new._mark_parameter(self._module_param)  # a copied model's parameters still are
        memo[id(self)] = new
        return new

    def __del__(self) -> None:
        if self._gone is not None:
            return  # the object is someone else's now, or gone already
        try:
            self.location.free(self.id_at_location)
        except Exception:  # interpreter shutdown, or a worker already gone: nothing to free
            return

    if TYPE_CHECKING:  # what torch's stubs cannot know: arithmetic on pointers gives pointers

        def __add__(self, other: Any) -> PointerTensor: ...
        def __radd__(self, other: Any) -> PointerTensor: ...
        def __sub__(self, other: Any) -> PointerTensor: ...
        def __rsub__(self, other: Any) -> PointerTensor: ...
        def __mul__(self, other: Any) -> PointerTensor: ...
        def __rmul__(self, other: Any) -> PointerTensor: ...
        def __matmul__(self, other: Any) -> PointerTensor: ...
        def __neg__(self) -> PointerTensor: ...

    # ---- the forwarding itself -----------------------------------------------------------

    # torch's stub types the disabled default (a plain function), hence the ignore
    @classmethod
    def __torch_dispatch__(  # type: ignore[override]
        cls, func: Any, types: Any, args: Any = (), kwargs: Any = None
    ) -> Any:
        raise RuntimeError(
            tr(
                "internal error: a pointer reached the dispatcher in {func}. Please "
                "report this as a bug.",
                func=func,
            )
        )

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        special = _SPECIAL.get(func)
        if special is not None:
            return special(func, args, kwargs)
        return _common_location(func, args, kwargs).execute(func, args, kwargs)


def _operands(args: tuple | list, kwargs: dict | None = None) -> Sequence[Any]:
    """Every argument, looking inside lists, tuples and dicts (`torch.cat([p, q])`)."""
    if not kwargs:
        for a in args:
            if type(a) in CONTAINERS:
                break
        else:
            return args  # flat already: most calls
    flat: list[Any] = []
    for a in (*args, *kwargs.values()) if kwargs else args:
        if type(a) in (list, tuple):
            flat += _operands(a)
        elif type(a) is dict:
            flat += _operands(tuple(a.values()))
        else:
            flat.append(a)
    return flat


def _common_location(func: Callable[..., Any], args: tuple, kwargs: dict | None) -> Worker:
    """The one worker that holds every operand, or an error saying what to fix."""
    first: PointerTensor | None = None
    local = None
    for a in _operands(args, kwargs):
        if isinstance(a, PointerTensor):
            if a._gone is not None:
                raise a._stale()
            if first is None:
                first = a
            elif a.location is not first.location:
                raise WorkerMismatchError(_mismatch_message(func, first, a))
        elif isinstance(a, torch.Tensor):
            local = a
    if first is None:
        raise TypeError(
            tr(
                "`{func}` was called with no live pointer: call it on a pointer that "
                "`send` or an earlier call returned",
                func=func_name(func),
            )
        )
    if local is not None:
        raise LocalTensorError(_local_message(func, first, local))
    return first.location


def _reason(gone: str) -> str:
    """Why a pointer retired, in the learner's language (the reasons `_retire` is given)."""
    sent = "sent to "
    if gone.startswith(sent):
        return tr("sent to {worker}", worker=gone[len(sent) :])
    known = {
        "fetched": lambda: tr("fetched"),
        "reshaped": lambda: tr("reshaped"),
        "not sent": lambda: tr("not sent"),
        "handed to the caller": lambda: tr("handed to the caller"),
    }
    return known[gone]() if gone in known else gone


def optimizer_message(state_at: str, model_at: str) -> str:
    """Why one stateful optimizer cannot follow a model between workers, and the fix."""
    return tr(
        "The optimizer's state (momentum, Adam's running averages) is on {state_at}, where "
        "the model was when it was made, but the model is now on {model_at}. One optimizer "
        "cannot follow a model between workers; keep one per worker with "
        "`optims = sy.Optims([{state_repr}, {model_repr}], optim=...)` and use "
        "`opt = optims.get_optim(data.location.id)` after each `model.send(...)`.",
        state_at=state_at,
        model_at=model_at,
        state_repr=repr(state_at),
        model_repr=repr(model_at),
    )


def _mismatch_message(func: Callable[..., Any], a: PointerTensor, b: PointerTensor) -> str:
    name = func_name(func)
    where_a, where_b = a.location.id, b.location.id
    if a._module_param or b._module_param:
        model_at, data_at = (where_a, where_b) if a._module_param else (where_b, where_a)
        return tr(
            "`{func}`: the model is on {model_at} but its input is on {data_at}. A model can "
            "only run where the data is: `model.get()` it and `model.send(data.location)`, "
            "or `model.move(data.location)`.",
            func=name,
            model_at=model_at,
            data_at=data_at,
        )
    return tr(
        "`{func}` mixes a pointer to {where_a} ({pointer_a}) with a pointer to {where_b} "
        "({pointer_b}). Computation runs where the data is, so both must be on one worker: "
        "move one of them, e.g. `x.move({where_b})`.",
        func=name,
        where_a=where_a,
        where_b=where_b,
        pointer_a=repr(a),
        pointer_b=repr(b),
    )


def _local_message(func: Callable[..., Any], pointer: PointerTensor, local: torch.Tensor) -> str:
    name, where = func_name(func), pointer.location.id
    if isinstance(local, torch.nn.Parameter):
        return tr(
            "`{func}`: the model is on your machine but its input is on {where}. Send the "
            "model to the data first: `model.send(data.location)`.",
            func=name,
            where=where,
        )
    return tr(
        "`{func}` mixes a pointer to {where} with a tensor that is here on your machine "
        "(shape {shape}). Send the local tensor first, `t.send({where})`, or bring the "
        "remote one here with `.get()`.",
        func=name,
        where=where,
        shape=tuple(local.shape),
    )
