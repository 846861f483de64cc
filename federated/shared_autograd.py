"""Gradients of shared values: `x.fix_precision().share(..., requires_grad=True)`.

Torch's own autograd cannot see inside secret shares, so this module keeps its own
small tape, as PySyft 0.2's `AutogradTensor` did. Every operation on an `AutogradTensor`
runs on its fixed-precision (shared) child and remembers how to turn the gradient of its
result into gradients of its inputs; `backward()` walks that record in reverse. The
gradients are themselves shared: nobody sees them, and an optimizer step on shared
parameters gives shared parameters.

The rules cover what training a small network needs: `+`, `-`, `*`, `/` by a public
number, `** 2`, `@`, `F.linear`, `F.relu`, `sum`, and reshaping. The value is a
`torch.Tensor` (with no storage of its own) so that `torch.optim` optimizers accept it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch._C import DisableTorchFunctionSubclass

from federated.fixed_precision import FixedPrecisionTensor, record_gradients_with
from federated.language import tr

Backward = Callable[[FixedPrecisionTensor], tuple[Any, ...]]
_METADATA = {
    torch.Tensor.size,
    torch.Tensor.dim,
    torch.Tensor.numel,
    torch.Tensor.__len__,
    torch.Tensor.is_floating_point,
    torch.Tensor.is_complex,
    torch.is_complex,
    torch.is_floating_point,
}


class AutogradTensor(torch.Tensor):
    """A fixed-precision (usually shared) value that records what is done to it."""

    records_gradients = True
    is_sparse = False  # asked by optimizers of every gradient
    # set per instance in __new__ (a wrapper subclass has no __init__ to set them in)
    child: FixedPrecisionTensor
    parents: tuple[Any, ...]
    backward_rule: Backward | None
    needs_grad: bool
    stored_grad: AutogradTensor | None

    @staticmethod
    def __new__(
        cls,
        child: FixedPrecisionTensor,
        parents: tuple = (),
        backward: Backward | None = None,
        requires_grad: bool = True,
    ) -> AutogradTensor:
        t = torch.Tensor._make_wrapper_subclass(cls, child.shape, dtype=child.dtype)
        t.__dict__.update(
            child=child,
            parents=parents,
            backward_rule=backward,
            needs_grad=requires_grad,
            stored_grad=None,
        )
        return t

    # ---- what torch and optimizers ask ----------------------------------------------------

    @property  # type: ignore[override]  # torch types .grad as a plain Tensor
    def grad(self) -> AutogradTensor | None:
        return self.stored_grad

    @grad.setter
    def grad(self, value: AutogradTensor | None) -> None:
        self.stored_grad = value

    @property
    def requires_grad(self) -> bool:  # type: ignore[override]
        return self.needs_grad

    @property
    def is_leaf(self) -> bool:  # type: ignore[override]
        return not self.parents

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self, *, tensor_contents: Any = None) -> str:  # type: ignore[override]  # torch's stub
        return f"AutogradTensor(child={self.child!r})"

    def get(self) -> Any:
        """The value, reconstructed; its gradient history stays behind. A value shared
        from a worker (`ptr.fix_precision().share(...)`) comes here still shared."""
        value = self.child.get()
        if value.child is self.child.child:  # it only came here: keep recording
            return AutogradTensor(value, requires_grad=self.needs_grad)
        return value

    def float_precision(self) -> torch.Tensor:
        return self.child.float_precision()

    float_prec = float_precision

    def refresh(self) -> AutogradTensor:
        return _record(self.child.refresh(), (self,), lambda g: (g,))

    # ---- backward ---------------------------------------------------------------------------

    def backward(self, gradient: Any = None) -> None:  # type: ignore[override]
        """Fill `.grad` of every leaf this value came from (accumulating, as torch does)."""
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(
                    tr("backward() without a gradient needs a single value: call .sum() first")
                )
            gradient = torch.ones(self.shape)
        grads: dict[int, FixedPrecisionTensor] = {id(self): _as_fpt(gradient, self.child)}
        for node in _reverse_order(self):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node.is_leaf:
                if node.needs_grad:
                    old = node.stored_grad
                    node.stored_grad = AutogradTensor(
                        g if old is None else old.child + g, requires_grad=False
                    )
                continue
            assert node.backward_rule is not None  # _record gives every non-leaf its rule
            for parent, pg in zip(node.parents, node.backward_rule(g)):
                if pg is None or not isinstance(parent, AutogradTensor):
                    continue
                pg = _unbroadcast(pg, parent.shape)
                grads[id(parent)] = pg if id(parent) not in grads else grads[id(parent)] + pg

    # ---- every torch call on it comes here ---------------------------------------------------

    @classmethod
    def __torch_dispatch__(  # type: ignore[override]  # torch stubs the disabled default
        cls, func: Any, types: Any, args: Any = (), kwargs: Any = None
    ) -> Any:
        raise RuntimeError(
            tr(
                "internal error: a shared value reached the dispatcher in {func}. "
                "Please report this as a bug.",
                func=func,
            )
        )

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        kwargs = kwargs or {}
        if func in _METADATA or type(func).__name__ == "method-wrapper":
            with DisableTorchFunctionSubclass():
                return func(*args, **kwargs)
        name = getattr(func, "__name__", repr(func))
        rule = _RULES.get(name)
        if rule is None:
            raise TypeError(
                tr(
                    "`{name}` does not work on shared values that record gradients. What "
                    "works: {value}.",
                    name=name,
                    value=", ".join(sorted(n for n in _RULES if not n.startswith("_"))),
                )
            )
        return rule(*args, **kwargs)


def _as_fpt(value: Any, like: FixedPrecisionTensor) -> FixedPrecisionTensor:
    if isinstance(value, AutogradTensor):
        return value.child
    if isinstance(value, FixedPrecisionTensor):
        return value
    from federated.fixed_precision import encode

    return FixedPrecisionTensor(encode(value, like.precision), like.precision, like.dtype)


def _value(x: Any) -> Any:
    """The fixed-precision value inside `x`, or `x` itself (a public number)."""
    return x.child if isinstance(x, AutogradTensor) else x


def _record(value: FixedPrecisionTensor, parents: tuple, backward: Backward) -> Any:
    """Wrap a result; it remembers its parents only if gradients are wanted."""
    if not torch.is_grad_enabled() or not any(
        isinstance(p, AutogradTensor) and (p.needs_grad or not p.is_leaf) for p in parents
    ):
        return AutogradTensor(value, requires_grad=False)
    return AutogradTensor(value, parents, backward, requires_grad=True)


def _reverse_order(root: AutogradTensor) -> list[AutogradTensor]:
    """Every node once, each after all the nodes that use it."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node.parents if isinstance(p, AutogradTensor))
    return order[::-1]


def _unbroadcast(g: FixedPrecisionTensor, shape: torch.Size) -> FixedPrecisionTensor:
    """Sum a gradient back to the shape of an input that was broadcast."""
    while g.dim() > len(shape):
        g = g.sum(0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(i, keepdim=True)
    return g


# ---- the rules: forward on the children, and the gradient of each input --------------------


def _add(a: Any, b: Any, alpha: Any = 1) -> Any:
    if alpha != 1:
        return _add(a, _mul(b, alpha))
    return _record(_value(a) + _value(b), (a, b), lambda g: (g, g))


def _sub(a: Any, b: Any) -> Any:
    return _record(_value(a) - _value(b), (a, b), lambda g: (g, -g))


def _rsub(a: Any, b: Any) -> Any:
    return _sub(b, a)


def _wants(x: Any) -> bool:
    """Whether a gradient for `x` is needed (skip the costly products otherwise)."""
    return isinstance(x, AutogradTensor) and (x.needs_grad or not x.is_leaf)


def _mul(a: Any, b: Any) -> Any:
    va, vb = _value(a), _value(b)
    return _record(
        va * vb, (a, b), lambda g: (g * vb if _wants(a) else None, g * va if _wants(b) else None)
    )


def _truediv(a: Any, b: Any) -> Any:
    if isinstance(b, torch.Tensor):
        raise TypeError(tr("shared values can only be divided by a public number"))
    return _record(_value(a) / b, (a,), lambda g: (g / b,))


def _neg(a: Any) -> Any:
    return _record(-_value(a), (a,), lambda g: (-g,))


def _pow(a: Any, power: Any) -> Any:
    if power != 2:
        raise NotImplementedError(tr("only squares (** 2) of shared values work"))
    va = _value(a)
    return _record(va * va, (a,), lambda g: (g * va * 2,))


def _matmul(a: Any, b: Any) -> Any:
    va, vb = _value(a), _value(b)
    return _record(
        va.matmul(vb),
        (a, b),
        lambda g: (
            g.matmul(vb.t()) if _wants(a) else None,
            va.t().matmul(g) if _wants(b) else None,
        ),
    )


def _linear(x: Any, weight: Any, bias: Any = None) -> Any:
    vx, vw = _value(x), _value(weight)
    out = vx.matmul(vw.t())

    def back(g: FixedPrecisionTensor) -> tuple:
        return (
            g.matmul(vw) if _wants(x) else None,
            g.t().matmul(vx) if _wants(weight) else None,
            g.sum(0) if _wants(bias) else None,
        )

    if bias is None:
        return _record(out, (x, weight), back)
    return _record(out + _value(bias), (x, weight, bias), back)


def _relu(x: Any, inplace: bool = False) -> Any:
    vx = _value(x)
    mask = vx > 0  # shared 0/1: the same comparison serves forward and backward
    return _record(vx * mask, (x,), lambda g: (g * mask,))


def _sum(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    vx = _value(x)
    shape = vx.shape
    if dim is None:
        return _record(vx.sum(), (x,), lambda g: (g.expand(*shape),))

    def back(g: FixedPrecisionTensor) -> tuple:
        return ((g if keepdim else g.unsqueeze(dim)).expand(*shape),)

    return _record(vx.sum(dim, keepdim=keepdim), (x,), back)


def _reshape(x: Any, *shape: Any) -> Any:
    vx = _value(x)
    old = vx.shape
    return _record(vx.view(*shape), (x,), lambda g: (g.view(*old),))


def _flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Any:
    vx = _value(x)
    return _reshape(x, *vx.flatten(start_dim, end_dim).shape)


def _t(x: Any) -> Any:
    return _record(_value(x).t(), (x,), lambda g: (g.t(),))


def _add_(param: AutogradTensor, other: Any, alpha: Any = 1) -> AutogradTensor:
    """`p.add_(g, alpha=-lr)`, an optimizer's step: the child is replaced in place."""
    step = _value(other)
    param.child = param.child + (step * alpha if alpha != 1 else step)
    return param


def _no_grad(name: str) -> Any:
    """Comparisons and argmax: the value, with no gradient."""

    def run(x: Any, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_value(a) for a in args)
        return AutogradTensor(getattr(_value(x), name)(*args, **kwargs), requires_grad=False)

    return run


_RULES: dict[str, Any] = {
    "add": _add,
    "__add__": _add,
    "__radd__": _add,
    "sub": _sub,
    "__sub__": _sub,
    "__rsub__": _rsub,
    "mul": _mul,
    "__mul__": _mul,
    "__rmul__": _mul,
    "div": _truediv,
    "__truediv__": _truediv,
    "neg": _neg,
    "__neg__": _neg,
    "pow": _pow,
    "__pow__": _pow,
    "matmul": _matmul,
    "mm": _matmul,
    "__matmul__": _matmul,
    "linear": _linear,
    "relu": _relu,
    "sum": _sum,
    "view": _reshape,
    "reshape": _reshape,
    "flatten": _flatten,
    "t": _t,
    "add_": _add_,
    **{
        name: _no_grad(name)
        for name in (
            "argmax",
            "eq",
            "__eq__",
            "gt",
            "__gt__",
            "lt",
            "__lt__",
            "ge",
            "__ge__",
            "le",
            "__le__",
        )
    },
}


record_gradients_with(AutogradTensor)
