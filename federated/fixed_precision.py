"""Fixed precision: real numbers as integers, so that they can be secret-shared.

Secret sharing works on integers that wrap around (the ring of 2**64, which is exactly
int64 arithmetic). A real number x is stored as round(x * 10**precision). Sums of
encoded numbers are encoded sums; a product carries 10**precision twice, so it is
divided by 10**precision once afterwards (truncation).

The range: an encoded value must satisfy |x| * 10**precision < 2**62 (with precision 3,
|x| < 4.6e15), which leaves room for a sum of two. A product must stay within the same
bound *before* truncation: |x * y| * 10**(2 * precision) < 2**62. Encoding checks its
input and raises OverflowError; products of local values are checked too. Products of
shared values cannot be checked without revealing them, so keep them in range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from federated.language import tr

LIMIT = 2**62


def _check_range(values: torch.Tensor, what: str) -> None:
    if not torch.isfinite(values).all():
        raise OverflowError(tr("cannot encode {what}: it contains inf or nan", what=what))
    if values.numel() and values.abs().max() >= LIMIT:
        raise OverflowError(
            tr(
                "{what} is out of the fixed-precision range (|x| * 10**precision < "
                "2**62); use a smaller precision or scale the values down",
                what=what,
            )
        )


def encode(tensor: Any, precision: int) -> torch.Tensor:
    """round(tensor * 10**precision) as int64, or OverflowError if it does not fit."""
    scaled = torch.as_tensor(tensor, dtype=torch.float64) * 10**precision
    _check_range(scaled, "the value")
    return scaled.round().long()


class FixedPrecisionTensor:
    """A tensor of reals held as integers: `x.fix_precision(precision=3)`.

    `child` is the int64 tensor, a pointer to one, or its secret shares. Arithmetic,
    matrix products, comparisons, ReLU, max and argmax work (on shares too, where the
    comparisons are those of `federated.comparison`), and so do the torch functions a
    small network calls (`F.linear`, `F.conv2d`, `F.relu`, `F.max_pool2d`, `torch.flatten`;
    see `federated.shared_nn`). `.float_precision()` (or `.float_prec()`) decodes.

    `origin` is the worker the value was encoded on when it was made from a pointer
    (`ptr.fix_precision()`): as in PySyft, the value is then still *there*, so `.get()`
    brings the fixed-precision or shared tensor here and decodes or reconstructs nothing.
    """

    def __init__(
        self, child: Any, precision: int = 3, dtype: torch.dtype = torch.float32, origin: Any = None
    ):
        if not isinstance(precision, int) or not 0 <= precision <= 9:
            raise ValueError(tr("precision is a number of decimal digits from 0 to 9"))
        self.child, self.precision, self.dtype, self.origin = child, precision, dtype, origin

    @classmethod
    def from_float(cls, tensor: torch.Tensor, precision: int = 3) -> FixedPrecisionTensor:
        """Encode a local tensor, or a pointer's value on its own worker."""
        dtype = tensor.dtype if tensor.dtype.is_floating_point else torch.float32
        if hasattr(tensor, "location"):
            scaled = tensor.detach().double() * 10**precision
            if (~torch.isfinite(scaled) | (scaled.abs() >= LIMIT)).any().get():
                raise OverflowError(
                    tr(
                        "the value is out of the fixed-precision range (|x| * 10**precision < "
                        "2**62): scale the values down, or choose a smaller `precision`"
                    )
                )
            return cls(scaled.round().long(), precision, dtype, origin=tensor.location)
        return cls(encode(tensor.detach(), precision), precision, dtype)

    @property
    def scale(self) -> int:
        return 10**self.precision

    @property
    def shape(self) -> torch.Size:
        return self.child.shape

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return self.shape.numel()

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"FixedPrecisionTensor(precision={self.precision}, child={self.child!r})"

    def _new(self, child: Any) -> FixedPrecisionTensor:
        return FixedPrecisionTensor(child, self.precision, self.dtype, self.origin)

    def float_precision(self) -> torch.Tensor:
        """Decode to an ordinary float tensor; the child must be here (`.get()` it first)."""
        if not isinstance(self.child, torch.Tensor) or hasattr(self.child, "location"):
            raise TypeError(tr("float_precision() needs the value here: call .get() first"))
        return (self.child.double() / self.scale).to(self.dtype)

    float_prec = float_precision

    # ---- moving ----------------------------------------------------------------------------

    def share(
        self,
        *workers: Any,
        crypto_provider: Any = None,
        protocol: str | None = None,
        requires_grad: bool = False,
        field: int | None = None,
        dtype: Any = None,
        **unused: Any,
    ) -> Any:
        """Split into secret shares, one per worker; see `sharing.AdditiveSharingTensor`.

        `protocol` ("fss", "snn") is accepted for PySyft's sake; comparisons always run
        `federated.comparison.PROTOCOL`. With `requires_grad=True` the result records
        operations for `backward()` (see `federated.shared_autograd`).
        """
        from federated.comparison import check_protocol
        from federated.sharing import AdditiveSharingTensor

        check_protocol(protocol)
        if field not in (None, 2**64) or dtype not in (None, "long", torch.int64):
            raise ValueError(
                tr(
                    "shares live in the ring of 2**64 (int64): leave field and dtype at "
                    "their defaults"
                )
            )
        if unused.keys() - {"no_wrap"}:
            raise TypeError(tr("share() got unexpected arguments {value}", value=sorted(unused)))
        if isinstance(self.child, AdditiveSharingTensor):
            raise ValueError(tr("this value is already shared"))
        shared = self._new(AdditiveSharingTensor.share(self.child, workers, crypto_provider))
        if requires_grad:
            if _record_gradients is None:
                raise RuntimeError(tr("import federated first: it sets up gradients of shares"))
            return _record_gradients(shared)
        return shared

    def send(self, worker: Any) -> FixedPrecisionTensor:
        return self._new(self.child.send(worker))

    def get(self) -> FixedPrecisionTensor:
        """Bring the value here. Made here: reconstruct the shares (or fetch the integers),
        ready for `.float_precision()`. Made on a worker from a pointer: bring the shared
        tensor itself here, still shared, as PySyft did."""
        from federated.sharing import AdditiveSharingTensor

        if self.origin is not None and isinstance(self.child, AdditiveSharingTensor):
            return FixedPrecisionTensor(self.child, self.precision, self.dtype)
        return FixedPrecisionTensor(self.child.get(), self.precision, self.dtype)

    def refresh(self) -> FixedPrecisionTensor:
        return self._new(self.child.refresh()) if hasattr(self.child, "refresh") else self

    # ---- arithmetic --------------------------------------------------------------------------

    def _public(self, other: Any) -> Any:
        """An encoded public operand (Python number or local tensor)."""
        return encode(other, self.precision)

    def _same(self, other: FixedPrecisionTensor) -> None:
        if other.precision != self.precision:
            raise ValueError(
                tr(
                    "precisions differ: {precision} and {precision_2}. Encode both with the "
                    "same `precision` in `fix_precision(...)`.",
                    precision=self.precision,
                    precision_2=other.precision,
                )
            )

    def _operand(self, other: Any) -> Any:
        """The integers of `other`: its child, or the encoding of a public value."""
        if isinstance(other, FixedPrecisionTensor):
            self._same(other)
            return other.child
        return self._public(other)

    def __add__(self, other: Any) -> FixedPrecisionTensor:
        if _autograd(other):
            return NotImplemented
        return self._new(self.child + self._operand(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> FixedPrecisionTensor:
        if _autograd(other):
            return NotImplemented
        return self._new(self.child - self._operand(other))

    def __rsub__(self, other: Any) -> FixedPrecisionTensor:
        return self._new(self._public(other) - self.child)

    def __neg__(self) -> FixedPrecisionTensor:
        return self._new(-self.child)

    def __mul__(self, other: Any) -> FixedPrecisionTensor:
        if _autograd(other):
            return NotImplemented
        if isinstance(other, int) and not isinstance(other, bool):
            return self._new(self.child * other)  # an integer needs no rescaling
        return self._product(other, torch.mul)

    __rmul__ = __mul__

    def __pow__(self, power: int) -> FixedPrecisionTensor:
        if power != 2:
            raise NotImplementedError(tr("only squares (** 2) of fixed-precision values work"))
        return self * self

    def _product(self, other: Any, op: Any) -> FixedPrecisionTensor:
        """A bilinear `op` (`*`, `@`, a convolution) of two encoded values, rescaled once."""
        theirs = self._operand(other)
        if (
            isinstance(self.child, torch.Tensor)
            and isinstance(theirs, torch.Tensor)
            and not hasattr(self.child, "location")
            and op is torch.mul
        ):
            _check_range(self.child.double().abs() * theirs.double().abs(), "the product")
        return self._new(truncate(bilinear(self.child, theirs, op), self.scale))

    def matmul(self, other: Any) -> FixedPrecisionTensor:
        if _autograd(other):
            return NotImplemented
        return self._product(other, torch.matmul)

    mm = matmul
    __matmul__ = matmul

    def __truediv__(self, other: Any) -> FixedPrecisionTensor:
        if isinstance(other, (FixedPrecisionTensor, torch.Tensor)):
            raise TypeError(tr("fixed-precision values can only be divided by a public number"))
        if isinstance(other, int) and not isinstance(other, bool):
            if other == 0:
                raise ZeroDivisionError(tr("division of a fixed-precision value by zero"))
            return self._new(truncate(self.child, other))
        return self * (1.0 / other)

    def sum(self, *args: Any, **kwargs: Any) -> FixedPrecisionTensor:
        return self._new(self.child.sum(*args, **kwargs))

    # ---- rearranging (share by share when shared) --------------------------------------------

    def view(self, *shape: Any) -> FixedPrecisionTensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = tuple(shape[0])
        return self._new(self.child.reshape(*shape))

    reshape = view

    def view_as(self, other: Any) -> FixedPrecisionTensor:
        return self.view(*other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> FixedPrecisionTensor:
        return self._new(self.child.flatten(start_dim, end_dim))

    def t(self) -> FixedPrecisionTensor:
        return self._new(self.child.t())

    def expand(self, *shape: Any) -> FixedPrecisionTensor:
        return self._new(self.child.expand(*shape))

    def unsqueeze(self, dim: int) -> FixedPrecisionTensor:
        return self._new(self.child.unsqueeze(dim))

    def __getitem__(self, index: Any) -> FixedPrecisionTensor:
        return self._new(self.child[index])

    # ---- comparisons: shares of 0 or 1, encoded -------------------------------------------

    def _bits(self, bits: Any) -> FixedPrecisionTensor:
        """A 0/1 result as a fixed-precision value (1 is encoded as 10**precision)."""
        if isinstance(bits, torch.Tensor) and bits.dtype == torch.bool:
            bits = bits.long()
        return self._new(bits * self.scale)

    def __lt__(self, other: Any) -> FixedPrecisionTensor:
        return self._bits(self.child < self._operand(other))

    def __gt__(self, other: Any) -> FixedPrecisionTensor:
        return self._bits(self.child > self._operand(other))

    def __le__(self, other: Any) -> FixedPrecisionTensor:
        return self._bits(self.child <= self._operand(other))

    def __ge__(self, other: Any) -> FixedPrecisionTensor:
        return self._bits(self.child >= self._operand(other))

    def __eq__(self, other: Any) -> FixedPrecisionTensor:  # type: ignore[override]
        return self._bits(self.child == self._operand(other))

    eq, lt, gt, le, ge = __eq__, __lt__, __gt__, __le__, __ge__
    __hash__ = object.__hash__  # identity: models keep parameters in sets

    def relu(self) -> FixedPrecisionTensor:
        return self._new(self.child.relu())

    def max(self, dim: int | None = None, return_idx: bool = False) -> Any:
        """Shared: PySyft's `max(dim=None, return_idx=False)`. Here: torch's `max`."""
        from federated.sharing import AdditiveSharingTensor

        if not isinstance(self.child, AdditiveSharingTensor):
            if dim is None:
                return self._new(self.child.max())
            values, indices = self.child.max(dim)
            return (
                (self._new(values), self._new(indices * self.scale))
                if return_idx
                else self._new(values)
            )
        result = self.child.max(dim, return_idx=return_idx)
        if return_idx:
            return self._new(result[0]), self._new(result[1] * self.scale)
        return self._new(result)

    def argmax(self, dim: int | None = None) -> FixedPrecisionTensor:
        """The index of the largest value, as a fixed-precision value (as in PySyft)."""
        return self._new(self.child.argmax(dim) * self.scale)

    # ---- torch functions called on it (`F.relu(x)`, `torch.flatten(x, 1)`, a layer) --------

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        if _torch_functions is None:
            raise RuntimeError(tr("import federated first: it sets up torch functions on shares"))
        return _torch_functions(func, args, kwargs or {})


# What runs torch functions on these values (`federated.shared_nn`) and what records their
# gradients (`federated.shared_autograd`) import this module, so they register themselves
# here instead of being imported from it: PyTorch's own recipe for extending torch, and no
# import cycle.
_torch_functions: Callable[[Any, tuple, dict], Any] | None = None
_record_gradients: Callable[[FixedPrecisionTensor], Any] | None = None


def handle_torch_functions(handler: Callable[[Any, tuple, dict], Any]) -> None:
    """Make `handler(func, args, kwargs)` run the torch functions called on these values."""
    global _torch_functions
    _torch_functions = handler


def record_gradients_with(wrapper: Callable[[FixedPrecisionTensor], Any]) -> None:
    """Make `share(..., requires_grad=True)` wrap its result with `wrapper`."""
    global _record_gradients
    _record_gradients = wrapper


def _autograd(value: Any) -> bool:
    """True for values that record gradients: they take over the operation."""
    return getattr(type(value), "records_gradients", False)


def bilinear(x: Any, y: Any, op: Any) -> Any:
    """`op(x, y)` for integers that may be shared (Beaver) or public (share by share)."""
    from federated.sharing import AdditiveSharingTensor

    x_shared, y_shared = isinstance(x, AdditiveSharingTensor), isinstance(y, AdditiveSharingTensor)
    if x_shared and y_shared:
        return x._beaver(y, op)
    if x_shared:
        return x._new({w: op(s, y.send(s.location)) for w, s in x.shares.items()})
    if y_shared:
        return y._new({w: op(x.send(s.location), s) for w, s in y.shares.items()})
    return op(x, y)


def truncate(child: Any, divisor: int) -> Any:
    """Integer division that also works on shares (which know how to do it)."""
    if hasattr(child, "truncate"):
        return child.truncate(divisor)
    return torch.div(child, divisor, rounding_mode="floor")
