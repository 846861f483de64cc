"""The torch functions a small network calls, on fixed-precision (and shared) values.

`nn.Linear`, `nn.Conv2d`, `F.relu`, `F.max_pool2d` and `torch.flatten` call torch
functions with our `FixedPrecisionTensor` as argument; torch hands such calls to its
`__torch_function__`, which sends them here. Each is written with what shares allow:
products by Beaver triples (`fixed_precision.bilinear`), comparisons by
`federated.comparison`, and everything that only moves numbers around share by share.
A plain tensor met on the way (public data, say) is encoded with the same precision.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from federated.fixed_precision import (
    FixedPrecisionTensor,
    bilinear,
    encode,
    handle_torch_functions,
    truncate,
)
from federated.language import tr


def _fpt(value: Any, like: FixedPrecisionTensor) -> FixedPrecisionTensor:
    """`value` as a fixed-precision value with the precision of `like`."""
    if isinstance(value, FixedPrecisionTensor):
        return value
    return FixedPrecisionTensor(encode(value, like.precision), like.precision, like.dtype)


def _pair(value: Any, what: str) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise NotImplementedError(tr("only square {what}s work on shared values", what=what))
        value = value[0]
    return int(value)


def conv_int(
    x: torch.Tensor, weight: torch.Tensor, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """A 2-d convolution of int64 tensors, here or through pointers (exact in the ring:
    torch's integer convolution wraps as the ring does)."""
    return F.conv2d(x, weight, stride=stride, padding=padding)


def linear(x: Any, weight: Any, bias: Any = None) -> FixedPrecisionTensor:
    like = x if isinstance(x, FixedPrecisionTensor) else weight
    out = _fpt(x, like).matmul(_fpt(weight, like).t())
    return out if bias is None else out + _fpt(bias, like)


def conv2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> FixedPrecisionTensor:
    if _pair(dilation, "dilation") != 1 or groups != 1:
        raise NotImplementedError(tr("convolutions on shared values take dilation=1, groups=1"))
    like = x if isinstance(x, FixedPrecisionTensor) else weight
    x, weight = _fpt(x, like), _fpt(weight, like)
    s, p = _pair(stride, "stride"), _pair(padding, "padding")

    def op(a: Any, b: Any) -> Any:
        return conv_int(a, b, s, p)

    out = x._new(truncate(bilinear(x.child, weight.child, op), x.scale))
    return out if bias is None else out + _fpt(bias, like).view(1, -1, 1, 1)


def relu(x: FixedPrecisionTensor, inplace: bool = False) -> FixedPrecisionTensor:
    return x.relu()


def max_pool2d(
    x: FixedPrecisionTensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> FixedPrecisionTensor:
    """The largest value of each window: a knockout over the k*k values of every window,
    all windows at once."""
    k = _pair(kernel_size, "kernel")
    s = k if stride is None else _pair(stride, "stride")
    if _pair(padding, "padding") or _pair(dilation, "dilation") != 1 or ceil_mode or return_indices:
        raise NotImplementedError(
            tr("max-pooling on shared values takes no padding, dilation, ceil_mode or indices")
        )

    def windows(t: Any) -> Any:
        w = t.unfold(2, k, s).unfold(3, k, s)
        return w.reshape(*w.shape[:4], k * k)

    child = x.child.apply(windows) if hasattr(x.child, "apply") else windows(x.child)
    return x._new(child).max(dim=-1)


def flatten(x: FixedPrecisionTensor, start_dim: int = 0, end_dim: int = -1) -> Any:
    return x.flatten(start_dim, end_dim)


def _binary(method: str, reflected: bool = False) -> Any:
    """An operator that torch handed us, possibly with a plain tensor first."""

    def run(a: Any, b: Any, *rest: Any, **kwargs: Any) -> Any:
        if reflected:
            a, b = b, a
        like = a if isinstance(a, FixedPrecisionTensor) else b
        if isinstance(b, torch.Tensor) and not isinstance(a, FixedPrecisionTensor):
            a = _fpt(a, like)
        return getattr(a, method)(b, *rest, **kwargs)

    return run


def _method(name: str) -> Any:
    def run(x: FixedPrecisionTensor, *args: Any, **kwargs: Any) -> Any:
        return getattr(x, name)(*args, **kwargs)

    return run


_HANDLERS = {
    "linear": linear,
    "conv2d": conv2d,
    "relu": relu,
    "max_pool2d": max_pool2d,
    "_max_pool2d": max_pool2d,
    "flatten": flatten,
    "matmul": _binary("matmul"),
    "mm": _binary("matmul"),
    "__matmul__": _binary("matmul"),
    "__rmatmul__": _binary("matmul", reflected=True),
    "add": _binary("__add__"),
    "__add__": _binary("__add__"),
    "__radd__": _binary("__add__", reflected=True),
    "sub": _binary("__sub__"),
    "__sub__": _binary("__sub__"),
    "__rsub__": _binary("__sub__", reflected=True),
    "mul": _binary("__mul__"),
    "__mul__": _binary("__mul__"),
    "__rmul__": _binary("__mul__", reflected=True),
    "eq": _binary("__eq__"),
    "__eq__": _binary("__eq__"),
    "gt": _binary("__gt__"),
    "__gt__": _binary("__gt__"),
    "lt": _binary("__lt__"),
    "__lt__": _binary("__lt__"),
    "ge": _binary("__ge__"),
    "__ge__": _binary("__ge__"),
    "le": _binary("__le__"),
    "__le__": _binary("__le__"),
    **{
        name: _method(name)
        for name in ("sum", "argmax", "max", "view", "reshape", "t", "unsqueeze", "expand")
    },
}


def call(func: Any, args: tuple, kwargs: dict) -> Any:
    """Run torch function `func` on fixed-precision arguments, or say it cannot."""
    if any(getattr(type(a), "records_gradients", False) for a in args):
        return NotImplemented  # the autograd layer handles it and calls us back
    name = getattr(func, "__name__", repr(func))
    handler = _HANDLERS.get(name)
    if handler is None:
        raise TypeError(
            tr(
                "`{name}` does not work on fixed-precision or shared values. What works: "
                "{value}, and the arithmetic operators.",
                name=name,
                value=", ".join(sorted(n for n in _HANDLERS if not n.startswith("_"))),
            )
        )
    return handler(*args, **kwargs)


handle_torch_functions(call)
