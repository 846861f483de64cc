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

from typing import Any

import torch

LIMIT = 2**62


def _check_range(values: torch.Tensor, what: str) -> None:
    if not torch.isfinite(values).all():
        raise OverflowError(f"cannot encode {what}: it contains inf or nan")
    if values.numel() and values.abs().max() >= LIMIT:
        raise OverflowError(
            f"{what} is out of the fixed-precision range (|x| * 10**precision < 2**62); "
            f"use a smaller precision or scale the values down"
        )


def encode(tensor: Any, precision: int) -> torch.Tensor:
    """round(tensor * 10**precision) as int64, or OverflowError if it does not fit."""
    scaled = torch.as_tensor(tensor, dtype=torch.float64) * 10**precision
    _check_range(scaled, "the value")
    return scaled.round().long()


class FixedPrecisionTensor:
    """A tensor of reals held as integers: `x.fix_precision(precision=3)`.

    `child` is the int64 tensor, a pointer to one, or its secret shares. `+`, `-`,
    `sum`, `*` and `/` by public numbers, and `*` of two fixed-precision tensors work;
    `.float_precision()` decodes.
    """

    def __init__(self, child: Any, precision: int = 3, dtype: torch.dtype = torch.float32):
        if not isinstance(precision, int) or not 0 <= precision <= 9:
            raise ValueError("precision is a number of decimal digits from 0 to 9")
        self.child, self.precision, self.dtype = child, precision, dtype

    @classmethod
    def from_float(cls, tensor: torch.Tensor, precision: int = 3) -> FixedPrecisionTensor:
        """Encode a local tensor, or a pointer's value on its own worker."""
        dtype = tensor.dtype if tensor.dtype.is_floating_point else torch.float32
        if hasattr(tensor, "location"):
            scaled = tensor.detach().double() * 10**precision
            if (~torch.isfinite(scaled) | (scaled.abs() >= LIMIT)).any().get():
                raise OverflowError("the value is out of the fixed-precision range "
                                    "(|x| * 10**precision < 2**62)")
            return cls(scaled.round().long(), precision, dtype)
        return cls(encode(tensor.detach(), precision), precision, dtype)

    @property
    def scale(self) -> int:
        return 10**self.precision

    @property
    def shape(self) -> torch.Size:
        return self.child.shape

    def __repr__(self) -> str:
        return f"FixedPrecisionTensor(precision={self.precision}, child={self.child!r})"

    def _new(self, child: Any) -> FixedPrecisionTensor:
        return FixedPrecisionTensor(child, self.precision, self.dtype)

    def float_precision(self) -> torch.Tensor:
        """Decode to an ordinary float tensor; the child must be here (`.get()` it first)."""
        if not isinstance(self.child, torch.Tensor) or hasattr(self.child, "location"):
            raise TypeError("float_precision() needs the value here: call .get() first")
        return (self.child.double() / self.scale).to(self.dtype)

    # ---- moving ----------------------------------------------------------------------------

    def share(self, *workers: Any, crypto_provider: Any = None) -> FixedPrecisionTensor:
        """Split into secret shares, one per worker; see `sharing.AdditiveSharingTensor`."""
        from federated.sharing import AdditiveSharingTensor

        return self._new(AdditiveSharingTensor.share(self.child, workers, crypto_provider))

    def send(self, worker: Any) -> FixedPrecisionTensor:
        return self._new(self.child.send(worker))

    def get(self) -> FixedPrecisionTensor:
        """Bring the integers here (reconstructing shares); then `.float_precision()`."""
        return self._new(self.child.get())

    # ---- arithmetic --------------------------------------------------------------------------

    def _public(self, other: Any) -> Any:
        """An encoded public operand (Python number or local tensor)."""
        return encode(other, self.precision)

    def _same(self, other: FixedPrecisionTensor) -> None:
        if other.precision != self.precision:
            raise ValueError(f"precisions differ: {self.precision} and {other.precision}")

    def __add__(self, other: Any) -> FixedPrecisionTensor:
        if isinstance(other, FixedPrecisionTensor):
            self._same(other)
            return self._new(self.child + other.child)
        return self._new(self.child + self._public(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> FixedPrecisionTensor:
        if isinstance(other, FixedPrecisionTensor):
            self._same(other)
            return self._new(self.child - other.child)
        return self._new(self.child - self._public(other))

    def __rsub__(self, other: Any) -> FixedPrecisionTensor:
        return self._new(self._public(other) - self.child)

    def __neg__(self) -> FixedPrecisionTensor:
        return self._new(-self.child)

    def __mul__(self, other: Any) -> FixedPrecisionTensor:
        if isinstance(other, int) and not isinstance(other, bool):
            return self._new(self.child * other)  # an integer needs no rescaling
        if isinstance(other, FixedPrecisionTensor):
            self._same(other)
            theirs = other.child
        else:
            theirs = self._public(other)
        if isinstance(self.child, torch.Tensor) and isinstance(theirs, torch.Tensor) \
                and not hasattr(self.child, "location"):
            _check_range(self.child.double().abs() * theirs.double().abs(), "the product")
        return self._new(_truncate(self.child * theirs, self.scale))

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> FixedPrecisionTensor:
        if isinstance(other, (FixedPrecisionTensor, torch.Tensor)):
            raise TypeError("fixed-precision values can only be divided by a public number")
        if isinstance(other, int) and not isinstance(other, bool):
            if other == 0:
                raise ZeroDivisionError("division of a fixed-precision value by zero")
            return self._new(_truncate(self.child, other))
        return self * (1.0 / other)

    def sum(self, *args: Any, **kwargs: Any) -> FixedPrecisionTensor:
        return self._new(self.child.sum(*args, **kwargs))


def _truncate(child: Any, divisor: int) -> Any:
    """Integer division that also works on shares (which know how to do it)."""
    if hasattr(child, "truncate"):
        return child.truncate(divisor)
    return torch.div(child, divisor, rounding_mode="floor")
