"""Comparing secret-shared numbers: x < 0, ReLU, max and argmax, all on shares.

Additions and multiplications are all that Beaver triples give us, and a comparison is
neither. The protocol here is the arithmetic-to-binary conversion that CrypTen uses
(B. Knott et al., "CrypTen: Secure Multi-Party Computation Meets Machine Learning",
NeurIPS 2021), with the crypto provider as its trusted dealer:

1. x = x0 + x1 (mod 2**64), bob holding x0 and alice x1. The sign of x is bit 63 of that
   sum. Each holder knows the *bits* of its own share; an adder circuit on those bits,
   computed on XOR-shares, gives XOR-shares of bit 63 without anyone learning a bit.
2. The adder is a Kogge-Stone carry-lookahead adder: the carry into bit 63 needs
   log2(64) = 6 rounds of AND gates, plus one for the first generate bits. An AND of two
   XOR-shared bits uses a binary Beaver triple (a, b, c = a AND b) from the dealer, just
   as a product uses an arithmetic one. 64 bits travel in one int64 word, so one word
   operation does all 64 gates.
3. The sign bit is turned back into arithmetic shares with a random bit the dealer
   shares both ways (XOR and arithmetic): one more round.

So `x < 0` costs 8 rounds; ReLU is x times (1 - sign bit), one Beaver product more.
The values anyone opens are always masked by the dealer's fresh random words, so the
holders learn nothing; the dealer sees none of the inputs. As with Beaver triples, the
dealer must not collude with a holder: it knows the masks, so with the opened values it
could unmask everything. It works for |x| < 2**63,
which fixed precision guarantees (|x| < 2**62 for every encoded value).

PySyft 0.2 also accepted `protocol="fss"` (function secret sharing, as in AriaNN by T.
Ryffel et al., PETS 2022) and `"snn"` (SecureNN); both names are accepted and this
protocol runs for each (`PROTOCOL` below says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch

from federated import traffic
from federated.language import tr

if TYPE_CHECKING:  # at run time the class comes from the shares given: no import cycle
    from federated.pointer import PointerTensor
    from federated.sharing import AdditiveSharingTensor

PROTOCOL = "arithmetic-to-binary conversion with a trusted dealer (CrypTen's)"
ACCEPTED_PROTOCOLS = ("fss", "snn", "a2b", None)
_SHIFTS = (1, 2, 4, 8, 16, 32)  # Kogge-Stone: each round doubles the span of a carry


def check_protocol(protocol: str | None) -> None:
    """Refuse a protocol name we do not know, before anything is shared."""
    if protocol not in ACCEPTED_PROTOCOLS:
        raise ValueError(
            tr(
                "unknown protocol {protocol}: use one of {value} (all run {protocol_2})",
                protocol=repr(protocol),
                value=ACCEPTED_PROTOCOLS[:-1],
                protocol_2=PROTOCOL,
            )
        )


class XorShares:
    """64 bits per element, each shared as b = b0 XOR b1 between two holders."""

    def __init__(self, shares: dict[str, Any], like: AdditiveSharingTensor) -> None:
        self.shares, self.like = shares, like

    def apply(self, func: Any, *args: Any) -> XorShares:
        return XorShares({w: func(s, *args) for w, s in self.shares.items()}, self.like)

    def __xor__(self, other: XorShares) -> XorShares:
        return XorShares({w: s ^ other.shares[w] for w, s in self.shares.items()}, self.like)

    def __lshift__(self, k: int) -> XorShares:
        return self.apply(torch.bitwise_left_shift, k)

    def __and__(self, other: XorShares) -> XorShares:
        """AND with a binary Beaver triple: open e = x ^ a and f = y ^ b, then
        z = c ^ (e & b) ^ (f & a) ^ (e & f), the last term added by one holder only."""
        provider = self.like.crypto_provider
        workers = self.like.workers
        shape = next(iter(self.shares.values())).shape
        dealer = type(self.like)
        ra, rb = dealer.random_on(provider, shape), dealer.random_on(provider, shape)
        a, b, c = (_xor_deal(v, workers, self.like) for v in (ra, rb, ra & rb))
        e, f = _open_xor([self ^ a, other ^ b])
        first = next(iter(self.shares))
        out = {}
        for w, c_w in c.shares.items():
            where = c_w.location
            e_w, f_w = where.receive(e), where.receive(f)  # what `e.send(where)` does
            z = c_w ^ (e_w & b.shares[w]) ^ (f_w & a.shares[w])
            out[w] = z ^ where.receive(e & f) if w == first else z
        return XorShares(out, self.like)

    @staticmethod
    def stack(values: list[XorShares]) -> XorShares:
        first = values[0]
        return XorShares(
            {w: torch.stack([v.shares[w] for v in values]) for w in first.shares}, first.like
        )

    def __getitem__(self, index: Any) -> XorShares:
        return self.apply(torch.Tensor.__getitem__, index)


def _xor_deal(value: Any, workers: list[Any], like: AdditiveSharingTensor) -> XorShares:
    """The dealer splits a word it made into two XOR-shares and sends one to each."""
    mask = type(like).random_on(value.location, value.shape)
    traffic.dealt(value.numel(), len(workers))
    pieces = [value ^ mask, mask]
    return XorShares({w.id: p.move(w) for w, p in zip(workers, pieces)}, like)


def _open_xor(values: list[XorShares]) -> list[torch.Tensor]:
    """Open masked XOR-shared words, all in one round."""
    traffic.opened(sum(next(iter(v.shares.values())).numel() for v in values), 2)
    opened = []
    for v in values:
        shares = iter(v.shares.values())
        total = next(shares).get()
        for share in shares:
            total = total ^ share.get()
        opened.append(total)
    return opened


def _two_holders(x: AdditiveSharingTensor) -> None:
    if len(x.shares) != 2:
        raise NotImplementedError(
            tr(
                "comparisons on shares work with exactly two share holders (and a crypto "
                "provider): share among two workers"
            )
        )
    if x.crypto_provider is None:
        raise ValueError(
            tr(
                "comparing shared values needs a crypto provider to deal random bits and "
                "triples: share with crypto_provider=some_worker"
            )
        )


def sign_bit(x: AdditiveSharingTensor) -> AdditiveSharingTensor:
    """Arithmetic shares of 1 where x < 0 and 0 elsewhere; x stays secret."""
    _two_holders(x)
    (w0, s0), (w1, s1) = x.shares.items()
    # Bob's share as an XOR-sharing (his word, zeros at alice), and alice's likewise.
    mine = XorShares({w0: s0, w1: torch.zeros_like(s1)}, x)
    theirs = XorShares({w0: torch.zeros_like(s0), w1: s1}, x)
    propagate = XorShares({w0: s0, w1: s1}, x)  # x0 XOR x1, with no talking
    generate = mine & theirs
    p = propagate
    for k in _SHIFTS:
        if k == _SHIFTS[-1]:  # the last round needs no new propagate bits
            generate = generate ^ (p & (generate << k))
            break
        both = XorShares.stack([p, p]) & XorShares.stack([generate << k, p << k])
        generate, p = generate ^ both[0], both[1]
    # bit 63 of x0 + x1 = bit 63 of (x0 XOR x1) XOR the carry into it
    top = (propagate ^ (generate << 1)).apply(torch.bitwise_right_shift, 63)
    return _bit_to_arithmetic(top.apply(torch.bitwise_and, 1), x)


def _bit_to_arithmetic(bit: XorShares, like: AdditiveSharingTensor) -> AdditiveSharingTensor:
    """From XOR-shares of a bit to additive shares: the dealer shares a random bit r
    both ways; c = bit XOR r is opened, and bit = c + r - 2cr is linear in r."""
    provider, workers = like.crypto_provider, like.workers
    shape = next(iter(bit.shares.values())).shape
    # a pointer in, a pointer out (torch's stubs only know it is a Tensor)
    r = cast("PointerTensor", torch.bitwise_and(type(like).random_on(provider, shape), 1))
    r_xor = _xor_deal(r.clone(), workers, like)
    (r_add,) = type(like).deal(provider, [r], workers)
    (c,) = _open_xor([bit ^ r_xor])
    return r_add * (1 - 2 * c) + c


def relu(x: AdditiveSharingTensor) -> AdditiveSharingTensor:
    """max(x, 0) = x * (1 - [x < 0]): one comparison and one Beaver product."""
    return x * (1 - sign_bit(x))


def max_with_index(
    x: AdditiveSharingTensor, dim: int | None
) -> tuple[AdditiveSharingTensor, AdditiveSharingTensor]:
    """Shares of the largest value over `dim` (all values if None) and of its index.

    A knockout tournament: neighbours are compared pairwise, the larger of each pair (the
    left one on ties, so the first index wins as in torch) goes on. log2(n) rounds of
    one comparison and one Beaver product each.
    """
    if dim is None:
        x, dim = x.flatten(), 0
    dim = dim % x.dim()
    values = x.apply(torch.movedim, dim, -1)
    n = values.shape[-1]
    shared = type(x)
    index = shared.public(
        torch.arange(n, dtype=torch.int64).expand(values.shape).contiguous(), values
    )
    while n > 1:
        half = n // 2
        a, b = values[..., 0 : 2 * half : 2], values[..., 1 : 2 * half : 2]
        ia, ib = index[..., 0 : 2 * half : 2], index[..., 1 : 2 * half : 2]
        keep_a = 1 - sign_bit(a - b)  # a >= b
        picked = shared.stack([keep_a, keep_a]) * shared.stack([a - b, ia - ib])
        best, where = b + picked[0], ib + picked[1]
        if n % 2:  # the odd one out goes on unchallenged
            best = shared.cat([best, values[..., n - 1 :]], -1)
            where = shared.cat([where, index[..., n - 1 :]], -1)
        values, index, n = best, where, (n + 1) // 2
    return values[..., 0], index[..., 0]
