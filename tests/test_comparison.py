"""Comparisons, ReLU, max, argmax and max-pooling on secret shares (federated.comparison)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import federated as sy
from federated import comparison, traffic
from federated.fixed_precision import LIMIT
from tests.helpers import workers as make_workers

EDGE = LIMIT - 1  # the largest encoded magnitude fixed precision allows


@pytest.fixture
def trio():
    return make_workers("bob", "alice", "carol")


def _ring_values(n: int, seed: int) -> torch.Tensor:
    """Random int64 values over the whole encodable range, with 0, +-1 and both edges."""
    g = torch.Generator().manual_seed(seed)
    spread = torch.randint(-(2**62) + 1, 2**62 - 1, (n,), generator=g)
    small = torch.randint(-5, 6, (n,), generator=g)
    return torch.cat([spread, small, torch.tensor([0, 1, -1, EDGE, -EDGE, EDGE - 1])])


@pytest.mark.parametrize("name", ["lt", "gt", "le", "ge", "eq"])
def test_comparisons_of_two_shared_values_agree_with_torch(trio, name):
    bob, alice, carol = trio
    x = _ring_values(200, seed=1)
    y = torch.cat([_ring_values(200, seed=2)[:-6], torch.tensor([0, 1, 1, EDGE, EDGE, -EDGE])])
    y[::7] = x[::7]  # plenty of equal pairs
    sx = x.share(bob, alice, crypto_provider=carol)
    sy_ = y.share(bob, alice, crypto_provider=carol)
    result = getattr(sx, name)(sy_)
    assert isinstance(result, sy.AdditiveSharingTensor)  # still shared, never a bool
    assert torch.equal(result.get(), getattr(x, name)(y).long())


@pytest.mark.parametrize("op", ["__lt__", "__gt__", "__le__", "__ge__", "__eq__"])
def test_fixed_precision_comparisons_with_public_and_shared_operands(trio, op):
    bob, alice, carol = trio
    torch.manual_seed(3)
    x = torch.cat([torch.randn(60) * 100, torch.tensor([0.0, -0.0, 2.5, -2.5, 4.6e15, -4.6e15])])
    y = torch.cat([torch.randn(60) * 100, torch.tensor([0.0, 0.001, 2.5, -2.501, 4.6e15, 0.0])])
    sx = x.fix_precision().share(bob, alice, crypto_provider=carol)
    sy_ = y.fix_precision().share(bob, alice, crypto_provider=carol)
    expected = getattr(x, op)(y).float()
    assert torch.equal(getattr(sx, op)(sy_).get().float_precision(), expected)
    assert torch.equal(getattr(sx, op)(2.5).get().float_precision(), getattr(x, op)(2.5).float())


def test_relu_agrees_with_torch_including_zero_and_the_edges(trio):
    bob, alice, carol = trio
    torch.manual_seed(4)
    x = torch.cat([torch.randn(300) * 10, torch.tensor([0.0, 1e-3, -1e-3, 4.6e15, -4.6e15])])
    encoded = x.fix_precision()
    shared = x.fix_precision().share(bob, alice, crypto_provider=carol)
    out = F.relu(shared)
    assert torch.equal(out.get().child, torch.relu(encoded.child))  # exact, in integers
    assert torch.equal(shared.relu().get().float_precision(), torch.relu(encoded.float_precision()))


def test_max_and_argmax_over_a_dim_and_over_everything(trio):
    bob, alice, carol = trio
    torch.manual_seed(5)
    x = torch.randn(6, 7).mul(10).round()  # whole numbers: many ties
    x[2] = 3.0  # a row of ties: the first index wins, as in torch
    shared = x.fix_precision().share(bob, alice, crypto_provider=carol)
    assert torch.equal(shared.argmax(dim=1).get().float_precision(), x.argmax(dim=1).float())
    assert torch.equal(shared.argmax(dim=0).get().float_precision(), x.argmax(dim=0).float())
    assert torch.equal(shared.max(dim=1).get().float_precision(), x.max(dim=1).values)
    assert torch.equal(shared.max().get().float_precision(), x.max())
    values, indices = shared.max(dim=0, return_idx=True)
    assert torch.equal(indices.get().float_precision(), x.argmax(dim=0).float())
    assert torch.equal(values.get().float_precision(), x.max(dim=0).values)


def test_max_pooling_agrees_with_torch(trio):
    bob, alice, carol = trio
    torch.manual_seed(6)
    x = torch.randn(2, 3, 6, 6)
    encoded = x.fix_precision()
    shared = x.fix_precision().share(bob, alice, crypto_provider=carol)
    pooled = F.max_pool2d(shared, 2).get()
    assert torch.equal(pooled.float_precision(), F.max_pool2d(encoded.float_precision(), 2))
    assert torch.equal(
        F.max_pool2d(shared, 3, stride=3).get().float_precision(),
        F.max_pool2d(encoded.float_precision(), 3),
    )


def test_shares_of_a_comparison_result_are_independent_of_the_secret(trio):
    bob, alice, carol = trio
    bins, n = 16, 4000
    expected = n / bins
    for secret in (-3, 0, 5):  # results 1, 0 and 0
        x = torch.full((n,), secret, dtype=torch.int64).share(bob, alice, crypto_provider=carol)
        bit = x < 0
        share = bob.objects[bit.shares["bob"].id_at_location]
        counts = torch.bincount(torch.bitwise_right_shift(share, 60) + 8, minlength=bins)
        chi2 = ((counts.double() - expected) ** 2 / expected).sum().item()
        assert chi2 < 50  # 15 degrees of freedom: p < 1e-5 of a false alarm
        assert torch.equal(bit.get(), torch.full((n,), int(secret < 0)))


def test_what_the_holders_open_during_a_comparison_is_uniform(trio, monkeypatch):
    """Every word opened inside the adder is masked by the dealer's random words: its
    bits are 1 half of the time whatever the secret."""
    bob, alice, carol = trio
    opened: list[torch.Tensor] = []
    original = comparison._open_xor

    def spy(values):
        result = original(values)
        opened.extend(result)
        return result

    monkeypatch.setattr(comparison, "_open_xor", spy)
    x = torch.zeros(2000, dtype=torch.int64).share(bob, alice, crypto_provider=carol)
    (x < 0).get()
    words = torch.cat([w.flatten() for w in opened if w.abs().max() > 1])
    ones = sum(((words >> i) & 1).sum().item() for i in range(64)) / (64 * words.numel())
    assert abs(ones - 0.5) < 0.01
    # the last opening, of the sign bit masked by the dealer's random bit: a fair coin
    sign_opened = opened[-1]
    assert sign_opened.max() <= 1 and abs(sign_opened.double().mean().item() - 0.5) < 0.05
    assert len(carol.objects) == 0  # the dealer kept nothing


def test_a_comparison_costs_eight_rounds(trio):
    bob, alice, carol = trio
    x = torch.tensor([5, -5]).share(bob, alice, crypto_provider=carol)
    with traffic.measure() as cost:
        x.lt(0)
    assert cost.rounds == 8
    assert cost.bytes > 0 and cost.dealer_bytes > 0
    with traffic.measure() as cost:
        x.relu()
    assert cost.rounds == 9  # the comparison and one Beaver product


def test_comparisons_need_a_crypto_provider_and_two_holders(trio):
    bob, alice, carol = trio
    no_dealer = torch.tensor([1, -1]).share(bob, alice)
    with pytest.raises(ValueError, match="crypto provider"):
        no_dealer.lt(0)
    three = torch.tensor([1, -1]).share(bob, alice, carol, crypto_provider=carol)
    with pytest.raises(NotImplementedError, match="two share holders"):
        three.relu()


def test_protocol_names_pysyft_accepted_run_and_others_are_refused(trio):
    bob, alice, carol = trio
    held = len(bob.objects)
    with pytest.raises(ValueError, match="unknown protocol"):
        torch.tensor([1.0]).fix_precision().share(
            bob, alice, crypto_provider=carol, protocol="magic"
        )
    assert len(bob.objects) == held  # refused before anything was shared
    x = (
        torch.tensor([-1.0, 2.0])
        .fix_prec()
        .share(bob, alice, crypto_provider=carol, protocol="fss")
    )
    assert torch.equal((x > 0).get().float_prec(), torch.tensor([0.0, 1.0]))
    assert "CrypTen" in comparison.PROTOCOL


def test_get_of_a_pointer_to_a_shared_value_keeps_it_shared(trio):
    bob, alice, carol = trio
    secret = torch.tensor([1.5, -2.25])
    pointer = secret.send(bob)
    shared = pointer.fix_precision().share(bob, alice, crypto_provider=carol).get()
    assert isinstance(shared.child, sy.AdditiveSharingTensor)  # here, but still in shares
    assert torch.equal(shared.get().float_precision(), secret)  # only this reconstructs
    encoded = secret.send(bob).fix_precision().get()
    assert isinstance(encoded, sy.FixedPrecisionTensor)
    assert torch.equal(encoded.child, torch.tensor([1500, -2250]))


def test_comparisons_and_relu_across_worker_processes():
    hook = sy.TorchHook(torch)
    token = "comparison-test-token-0123456789"
    with (
        sy.WorkerProcess("bob", token=token, timeout=120) as pb,
        sy.WorkerProcess("alice", token=token, timeout=120) as pa,
    ):
        bob, alice = (
            sy.RemoteWorker(hook, id=p.id, port=p.port, token=token, timeout=60) for p in (pb, pa)
        )
        carol = sy.VirtualWorker(hook, id="carol")
        x = torch.tensor([-1.5, 0.0, 2.0, 7.0, -0.001])
        shared = x.fix_precision().share(bob, alice, crypto_provider=carol)
        assert torch.equal((shared > 0).get().float_precision(), (x > 0).float())
        assert torch.equal(F.relu(shared).get().float_precision(), torch.relu(x))
        assert shared.argmax().get().float_precision().item() == 3
        for worker in (bob, alice):
            worker.flush()
            worker.close()
