"""Additive secret sharing in the ring of 2**64 (int64 arithmetic, which wraps).

A secret s is split into n shares that look like random numbers and add up to s:
s = s_1 + ... + s_n (mod 2**64). Each worker holds one share. n - 1 of the shares are
uniformly random, so any n - 1 of them together say nothing about s. Adding two shared
values, or multiplying one by a public number, is done share by share, with no talking.

Multiplying two shared values needs help: a *crypto provider* deals a Beaver triple,
shares of random a, b and c = a * b. The workers open x - a and y - b, which are masked
by a and b and so reveal nothing, and from them compute shares of x * y. The crypto
provider never sees x or y; it only makes the random triples. The same trick works for
any operation that is linear in each input, so matrix products and convolutions of two
shared values are done the same way (`_beaver`).

Comparisons (`<`, `==`, ReLU, max, argmax) need more than sums and products; they live
in `federated.comparison`. `federated.traffic` counts the rounds and bytes of it all.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, cast

import torch

from federated import traffic
from federated.errors import WorkerMismatchError
from federated.language import tr
from federated.pointer import PointerTensor

_HALF = 2**31


def random_ring(
    shape: Any, like: Any = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Uniform int64 values over the whole ring. With `like` (a pointer), they are made
    on that pointer's worker, so nobody else sees them."""
    if like is not None:
        high = torch.randint_like(like, -_HALF, _HALF)
        return high * 2**32 + torch.randint_like(like, 0, 2 * _HALF)
    high = torch.randint(-_HALF, _HALF, shape, dtype=torch.int64, generator=generator)
    return high * 2**32 + torch.randint(0, 2 * _HALF, shape, dtype=torch.int64, generator=generator)


def _local_generator() -> torch.Generator:
    return torch.Generator().manual_seed(secrets.randbits(63))


def _ids(workers: Sequence[Any]) -> list[str]:
    return [w.id for w in workers]


class AdditiveSharingTensor:
    """Shares of one int64 tensor, one pointer per worker.

    Made by `AdditiveSharingTensor.share(secret, workers)` (or `x.fix_precision().share(
    bob, alice, crypto_provider=carol)`); `.get()` adds the shares back together.
    """

    def __init__(
        self, shares: dict[str, PointerTensor], workers: Sequence[Any], crypto_provider: Any = None
    ) -> None:
        self.shares, self.workers, self.crypto_provider = shares, list(workers), crypto_provider

    @classmethod
    def share(
        cls, secret: Any, workers: Sequence[Any], crypto_provider: Any = None
    ) -> AdditiveSharingTensor:
        """Split `secret` (int64, here or on one worker) into shares on `workers`."""
        workers = list(workers)
        if len(workers) < 2 or len(set(_ids(workers))) != len(workers):
            raise ValueError(tr("sharing needs at least two distinct workers"))
        if not isinstance(secret, torch.Tensor) or secret.dtype != torch.int64:
            raise TypeError(tr("only int64 tensors can be shared: call .fix_precision() first"))
        if isinstance(secret, PointerTensor):
            return cls._share_remote(secret, workers, crypto_provider)
        generator = _local_generator()
        masks = [random_ring(secret.shape, generator=generator) for _ in workers[1:]]
        last = secret - sum(masks) if masks else secret
        values = [last, *masks]
        traffic.shared(secret.numel(), len(workers))
        return cls({w.id: w.receive(v) for w, v in zip(workers, values)}, workers, crypto_provider)

    @classmethod
    def _share_remote(
        cls, secret: PointerTensor, workers: list[Any], crypto_provider: Any
    ) -> AdditiveSharingTensor:
        """Shares of a value held by one worker: that worker makes the random masks and
        sends each share straight to its holder. The value never leaves it in one piece."""
        masks = [random_ring(None, like=secret) for _ in workers[1:]]
        rest = secret
        for mask in masks:
            rest = rest - mask
        shares = {}
        for worker, piece in zip(workers, [rest, *masks]):  # pointers on the secret's worker
            shares[worker.id] = cast(PointerTensor, piece).move(worker)
        return cls(shares, workers, crypto_provider)

    @property
    def shape(self) -> torch.Size:
        return next(iter(self.shares.values())).shape

    def numel(self) -> int:
        return self.shape.numel()

    def dim(self) -> int:
        return len(self.shape)

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    @classmethod
    def public(cls, value: torch.Tensor, like: AdditiveSharingTensor) -> AdditiveSharingTensor:
        """A public int64 value as a trivial sharing: the first holder has it, the others
        zero. Lets public and shared values go through one code path."""
        value = torch.as_tensor(value, dtype=torch.int64)
        shares = {
            w: p.location.receive(value if i == 0 else torch.zeros_like(value))
            for i, (w, p) in enumerate(like.shares.items())
        }
        return cls(shares, like.workers, like.crypto_provider)

    def __repr__(self) -> str:
        return f"AdditiveSharingTensor(shape={tuple(self.shape)}, workers={list(self.shares)})"

    def get(self) -> torch.Tensor:
        """Reconstruct: fetch every share and add them (wrapping)."""
        traffic.opened(self.numel(), len(self.shares))
        return self._reconstruct()

    def _reconstruct(self) -> torch.Tensor:
        values = [pointer.get() for pointer in self.shares.values()]
        return sum(values[1:], start=values[0])  # int64 addition wraps around the ring

    # ---- share-wise operations ---------------------------------------------------------------

    def _new(self, shares: dict[str, Any]) -> AdditiveSharingTensor:
        """Shares computed from these: pointers, though torch's stubs call the results of
        operations on pointers `Tensor`."""
        return AdditiveSharingTensor(shares, self.workers, self.crypto_provider)

    def _check(self, other: AdditiveSharingTensor) -> None:
        if list(other.shares) != list(self.shares):
            raise WorkerMismatchError(
                tr(
                    "shared values on {value} and {value_2} cannot be combined: share both "
                    "among the same workers",
                    value=list(self.shares),
                    value_2=list(other.shares),
                )
            )

    def _public_on(self, worker_id: str, value: torch.Tensor) -> Any:
        """A public operand where share `worker_id` is: a number, or a tensor sent there."""
        if value.dim() == 0:
            return int(value)
        return self.shares[worker_id].location.receive(value)

    def __add__(self, other: Any) -> AdditiveSharingTensor:
        if isinstance(other, AdditiveSharingTensor):
            self._check(other)
            return self._new({w: s + other.shares[w] for w, s in self.shares.items()})
        first = next(iter(self.shares))  # a public value is added to one share only
        public = torch.as_tensor(other, dtype=torch.int64)
        return self._new(
            {w: s + self._public_on(w, public) if w == first else s for w, s in self.shares.items()}
        )

    __radd__ = __add__

    def __neg__(self) -> AdditiveSharingTensor:
        return self._new({w: -s for w, s in self.shares.items()})

    def __sub__(self, other: Any) -> AdditiveSharingTensor:
        return self + (-other)

    def __rsub__(self, other: Any) -> AdditiveSharingTensor:
        return (-self) + other

    def sum(self, *args: Any, **kwargs: Any) -> AdditiveSharingTensor:
        return self._new({w: s.sum(*args, **kwargs) for w, s in self.shares.items()})

    def __mul__(self, other: Any) -> AdditiveSharingTensor:
        if isinstance(other, AdditiveSharingTensor):
            return self._beaver(other, torch.mul)
        public = torch.as_tensor(other, dtype=torch.int64)
        return self._new({w: s * self._public_on(w, public) for w, s in self.shares.items()})

    __rmul__ = __mul__

    def truncate(self, divisor: int) -> AdditiveSharingTensor:
        """Divide by a public positive integer. With two holders, one floors and the other
        ceils its share, which is exact up to one unit in the last place unless the value
        is near the edge of the ring (SecureML, Mohassel and Zhang, 2017)."""
        if len(self.shares) != 2:
            raise NotImplementedError(
                tr(
                    "dividing a shared value works with exactly two share holders; share "
                    "among two workers, or reconstruct the sum first and divide it in the "
                    "open"
                )
            )
        (w0, s0), (w1, s1) = self.shares.items()
        return self._new(
            {
                w0: torch.div(s0, divisor, rounding_mode="floor"),
                w1: -torch.div(-s1, divisor, rounding_mode="floor"),
            }
        )

    def _beaver(self, other: AdditiveSharingTensor, op: Any) -> AdditiveSharingTensor:
        """`op(self, other)` for a bilinear `op` (`*`, `@`, a convolution): one round.

        The crypto provider deals shares of random a, b and c = op(a, b). The holders open
        e = x - a and f = y - b, masked by a and b and so revealing nothing, and each
        computes its share of op(x, y) = c + op(e, b) + op(a, f) + op(e, f).
        """
        self._check(other)
        provider = self.crypto_provider or other.crypto_provider
        if provider is None:
            raise ValueError(
                tr(
                    "multiplying two shared values needs a crypto provider to deal Beaver "
                    "triples: share with crypto_provider=some_worker"
                )
            )
        a, b, c = _beaver_triple(provider, self.shape, other.shape, self.workers, op)
        epsilon, delta = open_together([self - a, other - b])
        first = next(iter(self.shares))
        shares = {}
        for w, c_share in c.shares.items():
            where = self.shares[w].location
            eps, dlt = where.receive(epsilon), where.receive(delta)
            z = c_share + op(eps, b.shares[w]) + op(a.shares[w], dlt)
            shares[w] = z + where.receive(op(epsilon, delta)) if w == first else z
        return self._new(shares)

    def matmul(self, other: Any) -> AdditiveSharingTensor:
        """Matrix product with a shared (Beaver) or public (share-wise) operand."""
        if isinstance(other, AdditiveSharingTensor):
            return self._beaver(other, torch.matmul)
        public = torch.as_tensor(other, dtype=torch.int64)
        return self._new({w: s @ s.location.receive(public) for w, s in self.shares.items()})

    mm = matmul
    __matmul__ = matmul

    def __rmatmul__(self, other: Any) -> AdditiveSharingTensor:
        public = torch.as_tensor(other, dtype=torch.int64)
        return self._new({w: s.location.receive(public) @ s for w, s in self.shares.items()})

    def refresh(self) -> AdditiveSharingTensor:
        """The same value in fresh shares: the first holder draws a random mask for each
        other holder, adds it to its share and sends it, to be subtracted there."""
        (first, mine), *others = self.shares.items()
        shares = {}
        for w, share in others:
            mask = random_ring(None, like=mine)
            mine = mine + mask
            shares[w] = share - cast(PointerTensor, mask).move(share.location)
        traffic.shared(self.numel() * len(others), 1)
        return self._new({first: mine, **shares})

    # ---- ops that only rearrange or sum: done share by share -----------------------------

    def apply(self, func: Any, *args: Any, **kwargs: Any) -> AdditiveSharingTensor:
        """`func(share, *args, **kwargs)` on every share: right for any linear op that
        takes no other shared input (a view, a slice, a padding with zeros, a sum)."""
        return self._new({w: func(s, *args, **kwargs) for w, s in self.shares.items()})

    def view(self, *shape: Any) -> AdditiveSharingTensor:
        return self.apply(torch.Tensor.reshape, *shape)

    reshape = view

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> AdditiveSharingTensor:
        return self.apply(torch.flatten, start_dim, end_dim)

    def t(self) -> AdditiveSharingTensor:
        return self.apply(torch.t)

    def permute(self, *dims: Any) -> AdditiveSharingTensor:
        return self.apply(torch.Tensor.permute, *dims)

    def expand(self, *shape: Any) -> AdditiveSharingTensor:
        return self.apply(torch.Tensor.expand, *shape)

    def unsqueeze(self, dim: int) -> AdditiveSharingTensor:
        return self.apply(torch.unsqueeze, dim)

    def __getitem__(self, index: Any) -> AdditiveSharingTensor:
        return self.apply(torch.Tensor.__getitem__, index)

    @staticmethod
    def cat(values: Sequence[AdditiveSharingTensor], dim: int = 0) -> AdditiveSharingTensor:
        first = values[0]
        for v in values[1:]:
            first._check(v)
        return first._new({w: torch.cat([v.shares[w] for v in values], dim) for w in first.shares})

    @staticmethod
    def stack(values: Sequence[AdditiveSharingTensor], dim: int = 0) -> AdditiveSharingTensor:
        first = values[0]
        for v in values[1:]:
            first._check(v)
        return first._new(
            {w: torch.stack([v.shares[w] for v in values], dim) for w in first.shares}
        )

    # ---- the dealer, reached through the shares by federated/comparison.py ----------------

    @staticmethod
    def random_on(provider: Any, shape: Any) -> PointerTensor:
        """`random_on`, for code that has shares but does not import this module."""
        return random_on(provider, shape)

    @staticmethod
    def deal(
        provider: Any, values: Sequence[PointerTensor], workers: list[Any]
    ) -> list[AdditiveSharingTensor]:
        """`deal`, for code that has shares but does not import this module."""
        return deal(provider, values, workers)

    # ---- comparisons: the protocol is in federated/comparison.py -------------------------

    def __lt__(self, other: Any) -> AdditiveSharingTensor:
        """Shares of 1 where self < other, else 0 (see `comparison`)."""
        from federated import comparison

        return comparison.sign_bit(self - other)

    def __gt__(self, other: Any) -> AdditiveSharingTensor:
        from federated import comparison

        return comparison.sign_bit(other - self)

    def __le__(self, other: Any) -> AdditiveSharingTensor:
        return 1 - (self > other)

    def __ge__(self, other: Any) -> AdditiveSharingTensor:
        return 1 - (self < other)

    def __eq__(self, other: Any) -> AdditiveSharingTensor:  # type: ignore[override]
        """1 - (x < y) - (x > y): both comparisons run together, in one batch."""
        from federated import comparison

        both = comparison.sign_bit(AdditiveSharingTensor.stack([self - other, other - self]))
        return 1 - both[0] - both[1]

    eq, lt, gt, le, ge = __eq__, __lt__, __gt__, __le__, __ge__
    __hash__ = object.__hash__  # identity, as for any handle

    def relu(self) -> AdditiveSharingTensor:
        from federated import comparison

        return comparison.relu(self)

    def max(self, dim: int | None = None, return_idx: bool = False) -> Any:
        """The largest value (over `dim`, or over all); with `return_idx`, also where."""
        from federated import comparison

        values, indices = comparison.max_with_index(self, dim)
        return (values, indices) if return_idx else values

    def argmax(self, dim: int | None = None) -> AdditiveSharingTensor:
        """Shares of the index of the largest value (the first one on ties, as torch)."""
        from federated import comparison

        return comparison.max_with_index(self, dim)[1]


def open_together(values: Sequence[AdditiveSharingTensor]) -> list[torch.Tensor]:
    """Open several masked values in one round of messages."""
    traffic.opened(sum(v.numel() for v in values), len(values[0].shares))
    return [v._reconstruct() for v in values]


def random_on(provider: Any, shape: Any) -> PointerTensor:
    """Uniform ring elements made on `provider` (nobody else sees them)."""
    made = random_ring(None, like=provider.receive(torch.zeros(shape, dtype=torch.int64)))
    return cast(PointerTensor, made)  # computed through a pointer: a pointer


def deal(
    provider: Any, values: Sequence[PointerTensor], workers: list[Any]
) -> list[AdditiveSharingTensor]:
    """The crypto provider shares values it made among the holders (counted as dealt)."""
    traffic.dealt(sum(v.numel() for v in values), len(workers))
    return [AdditiveSharingTensor._share_remote(v, workers, None) for v in values]


def _beaver_triple(
    provider: Any, shape_a: Any, shape_b: Any, workers: list[Any], op: Any = torch.mul
) -> list[AdditiveSharingTensor]:
    """Shares of random a, b and c = op(a, b), made on the crypto provider."""
    a, b = random_on(provider, shape_a), random_on(provider, shape_b)
    return deal(provider, [a, b, op(a, b)], workers)
