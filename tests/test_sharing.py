"""Fixed precision, additive secret sharing, Beaver multiplication, secure averaging."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import federated as sy
from federated.sharing import AdditiveSharingTensor


@pytest.fixture(autouse=True)
def hooked():
    """Tests below use .fix_precision() before any worker exists."""
    with sy.TorchHook(torch) as hook:
        yield hook


@pytest.fixture
def workers():
    hook = sy.TorchHook(torch)
    return tuple(sy.VirtualWorker(hook, id=name) for name in ("bob", "alice", "carol"))


def test_encoding_round_trips_negative_zero_and_large_values():
    x = torch.tensor([-2.5, 0.0, 1e-3, 123456789.125, -4e12], dtype=torch.float64)
    encoded = x.fix_precision(precision=3)
    assert encoded.child.dtype == torch.int64
    assert encoded.child.tolist() == [-2500, 0, 1, 123456789125, -4000000000000000]
    torch.testing.assert_close(encoded.float_precision(), x, rtol=0, atol=1e-3)
    assert x.fix_prec(precision=2).precision == 2


@pytest.mark.parametrize("value", [1e16, -1e16, float("inf"), float("nan")])
def test_out_of_range_values_raise_instead_of_wrapping(value):
    with pytest.raises(OverflowError):
        torch.tensor([1.0, value]).fix_precision(precision=3)


def test_local_products_out_of_range_raise():
    big = torch.tensor([3e6]).fix_precision(precision=3)
    with pytest.raises(OverflowError, match="product"):
        big * big


def test_a_single_share_is_independent_of_the_secret(workers):
    bob, alice, _ = workers
    bins = 16

    def bob_share_histogram(secret: int) -> torch.Tensor:
        values = torch.full((4000,), secret, dtype=torch.int64)
        shared = values.share(bob, alice)
        share = bob.objects[shared.shares["bob"].id_at_location]
        top_bits = torch.bitwise_right_shift(share, 60) + 8  # 16 bins over the whole ring
        counts = torch.bincount(top_bits, minlength=bins).double()
        assert torch.equal(shared.get(), values)  # and the sum is still exact
        return counts

    expected = 4000 / bins
    for secret in (0, 10**15, -(10**15)):
        counts = bob_share_histogram(secret)
        chi2 = ((counts - expected) ** 2 / expected).sum().item()
        assert chi2 < 50  # 15 degrees of freedom: p < 1e-5 of a false alarm


def test_shares_are_held_by_each_worker_and_none_equals_the_secret(workers):
    bob, alice, carol = workers
    secret = torch.tensor([5, -7, 10**12])
    shared = secret.share(bob, alice, carol)
    held = [w.objects[shared.shares[w.id].id_at_location] for w in workers]
    assert all(not torch.equal(h, secret) for h in held)
    assert torch.equal(held[0] + held[1] + held[2], secret)  # wrapping int64 sum


def test_reconstruction_after_share_wise_operations(workers):
    bob, alice, carol = workers
    x = torch.tensor([1.5, -2.25, 0.0, 1000.125])
    y = torch.tensor([2.0, 4.0, -1.0, 0.5])
    sx = x.fix_precision().share(bob, alice, crypto_provider=carol)
    sy_ = y.fix_precision().share(bob, alice, crypto_provider=carol)
    cases = {
        "add": (sx + sy_, x + y),
        "sub": (sx - sy_, x - y),
        "neg": (-sx, -x),
        "public add": (sx + 1.5, x + 1.5),
        "times int": (sx * 3, x * 3),
        "times float": (sx * 0.5, x * 0.5),
        "div": (sx / 4, x / 4),
        "sum": (sx.sum(), x.sum()),
    }
    for name, (shared, expected) in cases.items():
        got = shared.get().float_precision()
        torch.testing.assert_close(got, expected, rtol=0, atol=2e-3, msg=name)


def test_beaver_multiplication_matches_plain_multiplication(workers):
    bob, alice, carol = workers
    torch.manual_seed(0)
    x, y = torch.randn(50) * 10, torch.randn(50) * 10
    product = x.fix_precision().share(bob, alice, crypto_provider=carol) * y.fix_precision().share(
        bob, alice, crypto_provider=carol
    )
    torch.testing.assert_close(product.get().float_precision(), x * y, rtol=0, atol=2e-2)
    ints = torch.tensor([3, -4, 10**6])
    raw = ints.share(bob, alice, crypto_provider=carol) * ints.share(
        bob, alice, crypto_provider=carol
    )
    assert torch.equal(raw.get(), ints * ints)  # exact in the ring
    assert len(carol.objects) == 0  # the triples went to bob and alice; carol kept nothing


def test_multiplication_without_crypto_provider_is_refused(workers):
    bob, alice, _ = workers
    a, b = torch.tensor([2]).share(bob, alice), torch.tensor([3]).share(bob, alice)
    with pytest.raises(ValueError, match="crypto provider"):
        a * b


def test_bad_sharing_input_is_refused(workers):
    bob, alice, carol = workers
    with pytest.raises(TypeError, match="fix_precision"):
        torch.tensor([1.5]).share(bob, alice)
    with pytest.raises(ValueError, match="two distinct"):
        torch.tensor([1]).share(bob)
    a = torch.tensor([1]).share(bob, alice)
    b = torch.tensor([1]).share(bob, carol)
    with pytest.raises(sy.WorkerMismatchError):
        a + b


def test_truncation_needs_two_share_holders(workers):
    shared = torch.tensor([1.0]).fix_precision().share(*workers)
    with pytest.raises(NotImplementedError, match="two share holders"):
        shared * 0.5


def test_secure_average_equals_plain_average_and_nobody_sees_another_model(workers):
    torch.manual_seed(0)
    models = [nn.Linear(4, 3) for _ in workers]
    plain = sy.federated_avg(models, weights=[10, 20, 30])
    sent = [m.copy().send(w) for m, w in zip(models, workers)]
    before = [len(w.objects) for w in workers]

    seen: list[tuple[str, torch.Tensor]] = []
    original_register = sy.VirtualWorker.register

    def spy(self, obj):  # record every object any worker is ever given
        if isinstance(obj, torch.Tensor) and not isinstance(obj, sy.PointerTensor):
            seen.append((self.id, obj.detach().clone()))
        return original_register(self, obj)

    sy.VirtualWorker.register = spy
    try:
        secure = sy.federated_avg(
            sent, weights=[10, 20, 30], secure=True, crypto_provider=workers[2]
        )
    finally:
        sy.VirtualWorker.register = original_register

    for mine, theirs in zip(secure.state_dict().values(), plain.state_dict().values()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=3e-6)
    assert secure.location is None
    assert [len(w.objects) for w in workers] == before  # nothing left behind
    # No worker ever held another owner's (weighted, encoded or plain) parameters.
    for owner, model in zip(workers, models):
        for param in model.parameters():
            for fraction in (1.0, 10 / 60, 20 / 60, 30 / 60):
                scaled = param.detach() * fraction
                encoded = (scaled.double() * 10**6).round().long()
                for holder, obj in seen:
                    if holder != owner.id and obj.shape == param.shape:
                        assert not torch.allclose(obj.double(), scaled.double(), atol=1e-4)
                        assert not torch.equal(obj, encoded)


def test_secure_average_needs_each_model_on_its_own_worker(workers):
    bob, alice, _ = workers
    a, b = nn.Linear(2, 1).send(bob), nn.Linear(2, 1).send(bob)
    with pytest.raises(ValueError, match="own owner"):
        sy.federated_avg([a, b], secure=True)
    with pytest.raises(ValueError, match="own owner"):
        sy.federated_avg([nn.Linear(2, 1), nn.Linear(2, 1)], secure=True)


def test_remote_sharing_keeps_the_value_off_the_caller(workers):
    bob, alice, _ = workers
    secret = torch.tensor([41, 42]).send(bob)
    shared = AdditiveSharingTensor.share(secret, [bob, alice])
    assert torch.equal(shared.get(), torch.tensor([41, 42]))
    assert torch.equal(secret.get(), torch.tensor([41, 42]))  # the original is untouched


def test_matrix_products_of_shared_and_public_operands(workers):
    bob, alice, carol = workers
    torch.manual_seed(1)
    a, b = torch.randn(5, 4), torch.randn(4, 3)
    sa = a.fix_precision().share(bob, alice, crypto_provider=carol)
    sb = b.fix_precision().share(bob, alice, crypto_provider=carol)
    for product in (
        sa.matmul(sb),
        sa.mm(sb),
        sa @ sb,
        sa @ b.fix_precision(),
        a.fix_precision() @ sb,
    ):
        assert isinstance(product.child, AdditiveSharingTensor)
        torch.testing.assert_close(product.get().float_prec(), a @ b, rtol=0, atol=1e-2)
    ints = torch.tensor([[2, -3], [4, 5]])
    shared = ints.share(bob, alice, crypto_provider=carol)
    assert torch.equal((shared @ shared).get(), ints @ ints)  # exact in the ring
    assert torch.equal((shared @ ints).get(), ints @ ints)
    assert len(carol.objects) == 0


def test_refresh_keeps_the_value_and_changes_every_share(workers):
    bob, alice, carol = workers
    secret = torch.tensor([7, -8, 0])
    shared = secret.share(bob, alice, crypto_provider=carol)
    old = bob.objects[shared.shares["bob"].id_at_location].clone()
    fresh = shared.refresh()
    new = bob.objects[fresh.shares["bob"].id_at_location]
    assert not torch.equal(old, new)
    assert torch.equal(fresh.get(), secret)


def test_equality_of_shared_values_is_shared_not_a_python_bool(workers):
    bob, alice, carol = workers
    a = torch.tensor([1.0, 2.0]).fix_precision().share(bob, alice, crypto_provider=carol)
    b = torch.tensor([1.0, 3.0]).fix_precision().share(bob, alice, crypto_provider=carol)
    equal = a == b
    assert isinstance(equal, sy.FixedPrecisionTensor)
    assert isinstance(equal.child, AdditiveSharingTensor)
    assert torch.equal(equal.get().float_precision(), torch.tensor([1.0, 0.0]))


def test_models_shared_from_their_owners_add_up_without_leaving_shares(workers):
    """Two owners each share their model's weights from their own worker; the sum comes
    here still shared, and only the final `.get()` puts it together."""
    bob, alice, carol = workers
    torch.manual_seed(2)
    bobs, alices = nn.Linear(3, 1), nn.Linear(3, 1)
    expected = (bobs.weight + alices.weight).detach() / 2
    bobs.send(bob)
    alices.send(alice)
    w_bob = bobs.weight.data.fix_precision().share(bob, alice, crypto_provider=carol).get()
    w_alice = alices.weight.data.fix_precision().share(bob, alice, crypto_provider=carol).get()
    total = w_bob + w_alice
    assert isinstance(total.child, AdditiveSharingTensor)
    for holder in (bob, alice):  # each holds one random-looking share of the sum
        share = holder.objects[total.child.shares[holder.id].id_at_location]
        assert not torch.equal(share, (expected * 2 * 1000).round().long())
    torch.testing.assert_close(total.get().float_precision() / 2, expected, rtol=0, atol=1e-3)
