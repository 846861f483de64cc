"""Additive secret sharing in the ring of 2**64 (int64 arithmetic, which wraps).

A secret s is split into n shares that look like random numbers and add up to s:
s = s_1 + ... + s_n (mod 2**64). Each worker holds one share. n - 1 of the shares are
uniformly random, so any n - 1 of them together say nothing about s. Adding two shared
values, or multiplying one by a public number, is done share by share, with no talking.

Multiplying two shared values needs help: a *crypto provider* deals a Beaver triple,
shares of random a, b and c = a * b. The workers open x - a and y - b, which are masked
by a and b and so reveal nothing, and from them compute shares of x * y. The crypto
provider never sees x or y; it only makes the random triples.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import torch

from federated.errors import WorkerMismatchError
from federated.pointer import PointerTensor

_HALF = 2**31


def random_ring(shape: Any, like: Any = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform int64 values over the whole ring. With `like` (a pointer), they are made
    on that pointer's worker, so nobody else sees them."""
    if like is not None:
        high = torch.randint_like(like, -_HALF, _HALF)
        return high * 2**32 + torch.randint_like(like, 0, 2 * _HALF)
    high = torch.randint(-_HALF, _HALF, shape, dtype=torch.int64, generator=generator)
    return high * 2**32 + torch.randint(0, 2 * _HALF, shape, dtype=torch.int64,
                                        generator=generator)


def _local_generator() -> torch.Generator:
    return torch.Generator().manual_seed(secrets.randbits(63))


def _ids(workers: Sequence[Any]) -> list[str]:
    return [w.id for w in workers]


class AdditiveSharingTensor:
    """Shares of one int64 tensor, one pointer per worker.

    Made by `AdditiveSharingTensor.share(secret, workers)` (or `x.fix_precision().share(
    bob, alice, crypto_provider=carol)`); `.get()` adds the shares back together.
    """

    def __init__(self, shares: dict[str, PointerTensor], workers: Sequence[Any],
                 crypto_provider: Any = None) -> None:
        self.shares, self.workers, self.crypto_provider = shares, list(workers), crypto_provider

    @classmethod
    def share(cls, secret: Any, workers: Sequence[Any],
              crypto_provider: Any = None) -> AdditiveSharingTensor:
        """Split `secret` (int64, here or on one worker) into shares on `workers`."""
        workers = list(workers)
        if len(workers) < 2 or len(set(_ids(workers))) != len(workers):
            raise ValueError("sharing needs at least two distinct workers")
        if not isinstance(secret, torch.Tensor) or secret.dtype != torch.int64:
            raise TypeError("only int64 tensors can be shared: call .fix_precision() first")
        if isinstance(secret, PointerTensor):
            return cls._share_remote(secret, workers, crypto_provider)
        generator = _local_generator()
        masks = [random_ring(secret.shape, generator=generator) for _ in workers[1:]]
        last = secret - sum(masks) if masks else secret
        values = [last, *masks]
        return cls({w.id: v.send(w) for w, v in zip(workers, values)}, workers, crypto_provider)

    @classmethod
    def _share_remote(cls, secret: PointerTensor, workers: list[Any],
                      crypto_provider: Any) -> AdditiveSharingTensor:
        """Shares of a value held by one worker: that worker makes the random masks and
        sends each share straight to its holder. The value never leaves it in one piece."""
        masks = [random_ring(None, like=secret) for _ in workers[1:]]
        rest = secret
        for mask in masks:
            rest = rest - mask
        shares = {}
        for worker, piece in zip(workers, [rest, *masks]):
            shares[worker.id] = piece.move(worker)
        return cls(shares, workers, crypto_provider)

    @property
    def shape(self) -> torch.Size:
        return next(iter(self.shares.values())).shape

    def __repr__(self) -> str:
        return f"AdditiveSharingTensor(shape={tuple(self.shape)}, workers={list(self.shares)})"

    def get(self) -> torch.Tensor:
        """Reconstruct: fetch every share and add them (wrapping)."""
        total = None
        for pointer in self.shares.values():
            value = pointer.get()
            total = value if total is None else total + value
        return total

    # ---- share-wise operations ---------------------------------------------------------------

    def _new(self, shares: dict[str, PointerTensor]) -> AdditiveSharingTensor:
        return AdditiveSharingTensor(shares, self.workers, self.crypto_provider)

    def _check(self, other: AdditiveSharingTensor) -> None:
        if list(other.shares) != list(self.shares):
            raise WorkerMismatchError(
                f"shared values on {list(self.shares)} and {list(other.shares)} cannot be "
                f"combined: share both among the same workers"
            )

    def _public_on(self, worker_id: str, value: torch.Tensor) -> Any:
        """A public operand where share `worker_id` is: a number, or a tensor sent there."""
        if value.dim() == 0:
            return int(value)
        return value.send(self.shares[worker_id].location)

    def __add__(self, other: Any) -> AdditiveSharingTensor:
        if isinstance(other, AdditiveSharingTensor):
            self._check(other)
            return self._new({w: s + other.shares[w] for w, s in self.shares.items()})
        first = next(iter(self.shares))  # a public value is added to one share only
        public = torch.as_tensor(other, dtype=torch.int64)
        return self._new({w: s + self._public_on(w, public) if w == first else s
                          for w, s in self.shares.items()})

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
            return self._beaver_mul(other)
        public = torch.as_tensor(other, dtype=torch.int64)
        return self._new({w: s * self._public_on(w, public) for w, s in self.shares.items()})

    __rmul__ = __mul__

    def truncate(self, divisor: int) -> AdditiveSharingTensor:
        """Divide by a public positive integer. With two holders, one floors and the other
        ceils its share, which is exact up to one unit in the last place unless the value
        is near the edge of the ring (SecureML, Mohassel and Zhang, 2017)."""
        if len(self.shares) != 2:
            raise NotImplementedError(
                "dividing a shared value works with exactly two share holders; share among "
                "two workers, or reconstruct the sum first and divide it in the open"
            )
        (w0, s0), (w1, s1) = self.shares.items()
        return self._new({w0: torch.div(s0, divisor, rounding_mode="floor"),
                          w1: -torch.div(-s1, divisor, rounding_mode="floor")})

    def _beaver_mul(self, other: AdditiveSharingTensor) -> AdditiveSharingTensor:
        self._check(other)
        provider = self.crypto_provider or other.crypto_provider
        if provider is None:
            raise ValueError(
                "multiplying two shared values needs a crypto provider to deal Beaver "
                "triples: share with crypto_provider=some_worker"
            )
        a, b, c = _beaver_triple(provider, self.shape, other.shape, self.workers)
        epsilon = (self - a).get()  # masked by a: reveals nothing about self
        delta = (other - b).get()
        first = next(iter(self.shares))
        shares = {}
        for w, c_share in c.shares.items():
            eps, dlt = self._public_on(w, epsilon), self._public_on(w, delta)
            z = c_share + eps * b.shares[w] + a.shares[w] * dlt
            shares[w] = z + eps * dlt if w == first else z
        return self._new(shares)


def _beaver_triple(provider: Any, shape_a: Any, shape_b: Any, workers: list[Any]):
    """Shares of random a, b and c = a * b, made on the crypto provider."""
    seed = torch.zeros(torch.broadcast_shapes(shape_a, shape_b), dtype=torch.int64)
    on_provider = seed.send(provider)
    a = random_ring(None, like=on_provider)
    b = random_ring(None, like=on_provider)
    c = a * b
    return tuple(AdditiveSharingTensor._share_remote(v, workers, None) for v in (a, b, c))
