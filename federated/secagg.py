"""Secure averaging that scales: pairwise masks from shared seeds (Bonawitz et al., 2017),
each owner paired with a few neighbours only (as in SecAgg+, Bell et al., 2020).

Lesson 6's `federated_avg(secure=True)` secret-shares every model with every owner, so its
cost grows with the square of the number of owners. Here each owner adds to its model
random masks that cancel in the sum:

* Setup, once: every owner makes a key pair; two neighbours derive a shared seed from their
  keys (Diffie-Hellman), without ever sending it. Each owner also splits its secret key
  into Shamir shares, one per neighbour, any `threshold` of which rebuild it.
* Each round: owner i sends `x_i + PRG(b_i) + sum_{j>i} PRG(s_ij) - sum_{j<i} PRG(s_ij)`
  (mod 2**64, on fixed-point numbers), where `b_i` is a fresh self-mask seed it has
  Shamir-shared with its neighbours and `s_ij` is the pairwise seed with neighbour j,
  stretched for this round. The aggregator adds the masked vectors: pairwise masks cancel.
* Unmasking: for every owner that sent, its neighbours reveal shares of `b_i`; for every
  owner that dropped out after the setup, they reveal shares of its secret key instead,
  so the aggregator can remove that owner's half of the pairwise masks. An owner never
  reveals both kinds for one owner, or the aggregator could unmask that owner's model.

What it assumes: an honest-but-curious aggregator that follows the protocol; fewer than
`threshold` neighbours of any owner collude with it; the messages between owners pass
through the aggregator encrypted (here they are handed over in memory, and we say so);
and owners don't lie about their inputs (masks hide models, they don't check them).
"""

from __future__ import annotations

import copy
import functools
import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from torch import nn

from federated.errors import FederatedError
from federated.language import tr

PRIME = 2**521 - 1  # a Mersenne prime, larger than any 32-byte secret (secret keys)
SMALL_PRIME = 2**127 - 1  # a Mersenne prime for the 16-byte self-mask seeds: faster
FRACTION_BITS = 32  # fixed point: x is sent as round(x * 2**32) mod 2**64


class ProtocolError(FederatedError, RuntimeError):
    """A step of secure averaging was asked for something that would reveal a model, or
    for a step out of order."""


# -- Shamir secret sharing over GF(PRIME) ------------------------------------------------
def shamir_split(
    secret: bytes, xs: Sequence[int], threshold: int, prime: int = PRIME
) -> dict[int, int]:
    """Shares of `secret` at the points `xs` (non-zero, distinct); any `threshold` of them
    rebuild it, fewer tell nothing about it. The secret must be smaller than `prime`."""
    if not 1 <= threshold <= len(xs):
        raise ValueError(
            tr(
                "threshold must be between 1 and {xs_count}, got {threshold}",
                xs_count=len(xs),
                threshold=threshold,
            )
        )
    if len(set(xs)) != len(xs) or any(x % prime == 0 for x in xs):
        raise ValueError(tr("share points must be distinct and non-zero"))
    value = int.from_bytes(secret, "big")
    if value >= prime:
        raise ValueError(tr("the secret is too large for this prime field"))
    coefficients = [value] + [secrets.randbelow(prime) for _ in range(threshold - 1)]
    shares = {}
    for x in xs:
        y = 0
        for c in reversed(coefficients):
            y = (y * x + c) % prime
        shares[x] = y
    return shares


def shamir_join(shares: dict[int, int], length: int = 32, prime: int = PRIME) -> bytes:
    """The secret from `threshold` or more shares (Lagrange interpolation at 0)."""
    if not shares:
        raise ValueError(tr("no shares to rebuild a secret from"))
    numerator, denominator = 0, 1  # one fraction, so that only one inverse is needed
    for xi, yi in shares.items():
        num, den = 1, 1
        for xj in shares:
            if xj != xi:
                num = num * (-xj) % prime
                den = den * (xi - xj) % prime
        numerator = (numerator * den + yi * num * denominator) % prime
        denominator = denominator * den % prime
    secret = numerator * pow(denominator, -1, prime) % prime
    if secret >= 256**length:
        raise ProtocolError(tr("the shares do not rebuild a secret: too few, or wrong ones"))
    return secret.to_bytes(length, "big")


# -- masks ------------------------------------------------------------------------------
def prg(seed: bytes, round_: int, size: int) -> np.ndarray:
    """`size` pseudo-random uint64 words from `seed` (AES in counter mode, the usual choice),
    different for every round."""
    stream = Cipher(algorithms.AES(seed), modes.CTR(round_.to_bytes(8, "big") + bytes(8)))
    return np.frombuffer(stream.encryptor().update(_zeros(8 * size)), dtype=np.uint64)


@functools.lru_cache(maxsize=8)
def _zeros(size: int) -> bytes:
    return bytes(size)


def encode(vector: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Floats times `scale` to fixed point in the ring of integers mod 2**64."""
    scaled = np.rint(vector * (scale * 2.0**FRACTION_BITS))
    if np.abs(scaled).max(initial=0) >= 2.0**62:
        raise ValueError(
            tr(
                "a weighted parameter is too large for fixed point (|x| >= 2**30): look "
                "for a model whose training diverged, or make the `weights` smaller"
            )
        )
    return scaled.astype(np.int64).view(np.uint64)


def decode(words: np.ndarray) -> torch.Tensor:
    """The inverse of `encode`, for the sum."""
    return torch.from_numpy(words.view(np.int64).astype(np.float64) / 2.0**FRACTION_BITS)


def flatten(model: nn.Module) -> np.ndarray:
    """All floating-point parameters and buffers of `model` as one float64 vector."""
    with torch.no_grad():
        tensors = [t.reshape(-1) for t in model.state_dict().values() if t.dtype.is_floating_point]
        return torch.cat(tensors).numpy().astype(np.float64)


def neighbours(n: int, degree: int) -> list[list[int]]:
    """Each owner's neighbours on a ring: `degree // 2` on each side (all, if few)."""
    if degree >= n - 1:
        return [[j for j in range(n) if j != i] for i in range(n)]
    half = max(1, degree // 2)
    return [sorted({(i + d) % n for d in range(-half, half + 1)} - {i}) for i in range(n)]


def default_degree(n: int) -> int:
    """SecAgg+'s choice: a number of neighbours growing like log n."""
    return min(n - 1, 2 * math.ceil(math.log2(max(n, 2))))


def _public_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _pair_seed(own: X25519PrivateKey, other: bytes) -> bytes:
    shared = own.exchange(X25519PublicKey.from_public_bytes(other))
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"federated pairwise mask").derive(shared)


# -- the two roles --------------------------------------------------------------------------
class Owner:
    """A data owner's side of the protocol. It keeps its secret key, its pairwise seeds and
    the shares other owners gave it; it sends only public keys, shares and masked vectors."""

    def __init__(self, index: int) -> None:
        self.index = index
        self._secret = X25519PrivateKey.generate()
        self.public_key = _public_bytes(self._secret.public_key())
        self._seeds: dict[int, bytes] = {}
        self._held_key_shares: dict[int, int] = {}  # owner -> share of its secret key
        self._held_mask_shares: dict[int, int] = {}  # owner -> share of its self-mask seed
        self._revealed: dict[int, str] = {}  # owner -> which kind was revealed
        self._self_seed: bytes | None = None

    def agree(self, public_keys: dict[int, bytes]) -> None:
        """Derive a pairwise seed with each neighbour from its public key."""
        self._seeds = {j: _pair_seed(self._secret, key) for j, key in public_keys.items()}

    def share_secret_key(self, threshold: int) -> dict[int, int]:
        """Shares of this owner's secret key, one per neighbour (x = neighbour index + 1)."""
        raw = self._secret.private_bytes_raw()
        return shamir_split(raw, [j + 1 for j in self._seeds], threshold)

    def keep_shares(
        self, owner: int, key_share: int | None = None, mask_share: int | None = None
    ) -> None:
        """Hold shares another owner sent (encrypted in a real system)."""
        if key_share is not None:
            self._held_key_shares[owner] = key_share
        if mask_share is not None:
            self._held_mask_shares[owner] = mask_share

    def share_self_mask(self, threshold: int) -> dict[int, int]:
        """A fresh self-mask seed for this round, shared among the neighbours."""
        self._self_seed = secrets.randbelow(SMALL_PRIME).to_bytes(16, "big")
        self._revealed.clear()
        return shamir_split(self._self_seed, [j + 1 for j in self._seeds], threshold, SMALL_PRIME)

    def masked(self, model: nn.Module, weight: float, round_: int) -> np.ndarray:
        """This owner's weighted model plus its self mask and pairwise masks."""
        if self._self_seed is None:
            raise ProtocolError(tr("share_self_mask must come before masked in every round"))
        words = encode(flatten(model), weight)
        words += prg(self._self_seed, round_, words.size)
        for j, seed in self._seeds.items():
            mask = prg(seed, round_, words.size)
            if j > self.index:
                words += mask
            else:
                words -= mask
        self._self_seed = None
        return words

    def forget(self, owner: int) -> None:
        """Stop masking with an owner that left: it sends nothing any more."""
        self._seeds.pop(owner, None)

    def reveal(self, owner: int, kind: str) -> int:
        """One share for unmasking: `"mask"` (owner sent its vector) or `"key"` (it dropped).
        Refuses to give both kinds for one owner in a round."""
        if kind not in ("mask", "key"):
            raise ValueError(tr("kind is 'mask' or 'key'"))
        if self._revealed.get(owner, kind) != kind:
            raise ProtocolError(
                tr(
                    "owner {index} already revealed a {value} share of owner {owner}; both "
                    "would unmask its model",
                    index=self.index,
                    value=self._revealed[owner],
                    owner=owner,
                )
            )
        held = self._held_mask_shares if kind == "mask" else self._held_key_shares
        if owner not in held:
            raise ProtocolError(
                tr(
                    "owner {index} holds no {kind} share of owner {owner}",
                    index=self.index,
                    kind=kind,
                    owner=owner,
                )
            )
        self._revealed[owner] = kind
        return held[owner]


@dataclass
class Session:
    """The setup shared by many rounds: owners, the neighbour graph, public keys."""

    owners: list[Owner]
    graph: list[list[int]]
    threshold: int
    public_keys: list[bytes] = field(default_factory=list)
    round: int = 0
    dropped: set[int] = field(default_factory=set)

    @classmethod
    def setup(cls, n: int, degree: int | None = None, threshold: int | None = None) -> Session:
        """Keys and secret-key shares for `n` owners (each with `degree` neighbours)."""
        if n < 2:
            raise ValueError(tr("secure averaging needs at least two owners"))
        graph = neighbours(n, default_degree(n) if degree is None else degree)
        smallest = min(len(g) for g in graph)
        threshold = threshold if threshold is not None else smallest // 2 + 1
        if not 1 <= threshold <= smallest:
            raise ValueError(tr("threshold must be between 1 and {smallest}", smallest=smallest))
        owners = [Owner(i) for i in range(n)]
        keys = [o.public_key for o in owners]
        for owner, near in zip(owners, graph):
            owner.agree({j: keys[j] for j in near})
        for owner in owners:
            for x, share in owner.share_secret_key(threshold).items():
                owners[x - 1].keep_shares(owner.index, key_share=share)
        return cls(owners, graph, threshold, keys)


def secure_average(
    models: Sequence[nn.Module],
    weights: Sequence[float] | None = None,
    *,
    session: Session | None = None,
    dropouts: Iterable[int] = (),
) -> nn.Module:
    """The weighted average of local `models`, computed by an aggregator that only ever sees
    masked vectors. `dropouts` are owners that vanish after sharing their self-mask (before
    sending): the average is over the others. Pass one `session` to many rounds to reuse
    its keys; owners that dropped stay out of later rounds."""
    n = len(models)
    session = session or Session.setup(n)
    if len(session.owners) != n:
        raise ValueError(
            tr(
                "the session has {owners_count} owners, got {n} models",
                owners_count=len(session.owners),
                n=n,
            )
        )
    shapes = [[tuple(t.shape) for t in m.state_dict().values()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(tr("secure_average needs models of one architecture (same shapes)"))
    dropouts = set(dropouts) | session.dropped
    alive = [i for i in range(n) if i not in dropouts]
    weights = [1.0] * n if weights is None else [float(w) for w in weights]
    if len(weights) != n or any(w < 0 for w in weights):
        raise ValueError(tr("give {n} non-negative weights (sample counts)", n=n))
    total = sum(weights[i] for i in alive)
    if total <= 0:
        raise ValueError(tr("the owners that stay must hold a positive total weight"))
    for i in range(n):
        near_alive = [j for j in session.graph[i] if j not in dropouts]
        if len(near_alive) < session.threshold:
            raise ProtocolError(
                tr(
                    "owner {i} has {near_alive_count} neighbours left, fewer than the "
                    "threshold {threshold}: too many dropped out",
                    i=i,
                    near_alive_count=len(near_alive),
                    threshold=session.threshold,
                )
            )
    session.round += 1
    round_, owners = session.round, session.owners
    for i in range(n):  # every owner still in the session shares a fresh self mask
        if i in session.dropped:
            continue
        for x, share in owners[i].share_self_mask(session.threshold).items():
            owners[x - 1].keep_shares(i, mask_share=share)
    # What the aggregator receives: masked vectors only, from the owners still there.
    total_words = sum(owners[i].masked(models[i], weights[i] / total, round_) for i in alive)
    assert isinstance(total_words, np.ndarray)  # not sum's 0: `alive` has a positive weight
    need = session.threshold  # exactly a threshold of shares: more would only cost time
    for i in alive:  # remove each sender's self mask
        helpers = [j for j in session.graph[i] if j not in dropouts][:need]
        shares = {j + 1: owners[j].reveal(i, "mask") for j in helpers}
        seed = shamir_join(shares, 16, SMALL_PRIME)
        total_words -= prg(seed, round_, total_words.size)
    for d in sorted(dropouts - session.dropped):  # cancel the masks of those who left
        helpers = [j for j in session.graph[d] if j not in dropouts][:need]
        shares = {j + 1: owners[j].reveal(d, "key") for j in helpers}
        secret = X25519PrivateKey.from_private_bytes(shamir_join(shares))
        for j in session.graph[d]:
            if j in dropouts:
                continue
            mask = prg(_pair_seed(secret, session.public_keys[j]), round_, total_words.size)
            # owner j added +mask if d > j, -mask if d < j: undo it
            if d > j:
                total_words -= mask
            else:
                total_words += mask
    for d in dropouts - session.dropped:
        for j in session.graph[d]:
            owners[j].forget(d)
    session.dropped |= dropouts
    return _unflatten(models[0], decode(total_words))


def _unflatten(like: nn.Module, vector: torch.Tensor) -> nn.Module:
    average = copy.deepcopy(like)
    state, offset = average.state_dict(), 0
    with torch.no_grad():
        for tensor in state.values():
            if not tensor.dtype.is_floating_point:
                continue  # counters such as BatchNorm's are taken from the first model
            size = tensor.numel()
            tensor.copy_(vector[offset : offset + size].reshape(tensor.shape).to(tensor.dtype))
            offset += size
    return average


# -- a small committee of aggregators ----------------------------------------------------
class Member:
    """One of a few aggregators. Each owner gives every member an additive share of its
    model: all but the last member get a 16-byte seed (the share is the seed's PRG output),
    the last gets the model minus those shares. One member alone sees only random numbers."""

    def __init__(self, index: int, last: bool) -> None:
        self.index, self.last = index, last
        self._held: dict[int, bytes | np.ndarray] = {}

    def receive(self, owner: int, share: bytes | np.ndarray) -> None:
        """Keep one owner's share (sent encrypted to this member in a real system)."""
        self._held[owner] = share

    def total(self, owners: Iterable[int], round_: int, size: int) -> np.ndarray:
        """The sum of the shares of `owners` (those whose shares reached every member)."""
        words = np.zeros(size, dtype=np.uint64)
        for owner in owners:
            share = self._held.pop(owner)
            words += share if isinstance(share, np.ndarray) else prg(share, round_, size)
        self._held.clear()
        return words


def committee_average(
    models: Sequence[nn.Module],
    weights: Sequence[float] | None = None,
    *,
    members: int = 3,
    dropouts: Iterable[int] = (),
    round_: int = 1,
) -> nn.Module:
    """The weighted average of local `models` through `members` aggregators that add up
    additive shares. It assumes that not all members collude (any `members - 1` of them
    together learn nothing about one model). An owner in `dropouts` sends nothing and is
    left out; one whose shares reached only some members would be left out the same way."""
    n = len(models)
    if n < 1 or members < 2:
        raise ValueError(tr("committee averaging needs at least one model and two members"))
    shapes = [[tuple(t.shape) for t in m.state_dict().values()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(tr("committee_average needs models of one architecture (same shapes)"))
    weights = [1.0] * n if weights is None else [float(w) for w in weights]
    dropouts = set(dropouts)
    alive = [i for i in range(n) if i not in dropouts]
    if len(weights) != n or any(w < 0 for w in weights):
        raise ValueError(tr("give {n} non-negative weights (sample counts)", n=n))
    total = sum(weights[i] for i in alive)
    if total <= 0:
        raise ValueError(tr("the owners that stay must hold a positive total weight"))
    committee = [Member(k, last=k == members - 1) for k in range(members)]
    size = 0
    for i in alive:  # each owner, on its own machine
        words = encode(flatten(models[i]), weights[i] / total)
        size = words.size
        for member in committee[:-1]:
            seed = secrets.token_bytes(16)
            member.receive(i, seed)
            words -= prg(seed, round_, size)
        committee[-1].receive(i, words)
    summed = sum(member.total(alive, round_, size) for member in committee)
    assert isinstance(summed, np.ndarray)  # not sum's 0: a committee has two members or more
    return _unflatten(models[0], decode(summed))


def average(
    models: Sequence[nn.Module], weights: Sequence[float] | None = None, protocol: str = "masks"
) -> nn.Module:
    """`federated_avg(models, weights, secure="masks" | "committee")` lands here."""
    if protocol == "masks":
        return secure_average(models, weights)
    if protocol == "committee":
        return committee_average(models, weights)
    raise ValueError(
        tr(
            "unknown secure averaging protocol {protocol}: use True (lesson 6), "
            "'masks' or 'committee'",
            protocol=repr(protocol),
        )
    )
