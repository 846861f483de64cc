"""federated_avg: equals a hand computation, runs where the models are, changes nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import federated as sy


@pytest.fixture
def workers():
    hook = sy.TorchHook(torch)
    return (
        sy.VirtualWorker(hook, id="bob"),
        sy.VirtualWorker(hook, id="alice"),
        sy.VirtualWorker(hook, id="secure_worker"),
    )


def models(n: int = 3) -> list[nn.Module]:
    torch.manual_seed(1)
    return [nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)) for _ in range(n)]


def test_weighted_average_equals_hand_computation():
    ms = models()
    for i, m in enumerate(ms):  # make the BatchNorm buffers differ too
        m[1].running_mean.fill_(float(i))
        m[1].num_batches_tracked.fill_(i + 5)
    weights = [10, 30, 60]
    avg = sy.federated_avg(ms, weights=weights)
    expected_w = sum(w / 100 * m[0].weight for w, m in zip(weights, ms))
    torch.testing.assert_close(avg[0].weight, expected_w, rtol=0, atol=1e-6)
    torch.testing.assert_close(avg[1].running_mean, torch.full((2,), 0.3 + 1.2))
    assert avg[1].num_batches_tracked.item() == 5  # integers are taken from the first model
    assert isinstance(avg[0].weight, nn.Parameter)


def test_unweighted_average_is_the_plain_mean_and_inputs_are_unchanged():
    ms = models(2)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in ms]
    avg = sy.federated_avg(ms)
    torch.testing.assert_close(avg[0].bias, (ms[0][0].bias + ms[1][0].bias) / 2)
    for m, saved in zip(ms, before):
        for k, v in m.state_dict().items():
            assert torch.equal(v, saved[k])


def test_average_runs_on_the_aggregator_and_only_the_average_comes_back(workers):
    bob, alice, secure = workers
    ms = models(2)
    expected = sy.federated_avg(ms, weights=[1, 3])
    sent = [ms[0].copy().send(bob), ms[1].copy().send(alice)]
    for m in sent:
        m.move(secure)
    assert len(bob.objects) == 0 and len(alice.objects) == 0
    held = len(secure.objects)
    avg = sy.federated_avg(sent, weights=[1, 3])
    assert avg.location is secure
    assert len(secure.objects) == held + held // 2  # one new model; no leftovers
    local = avg.get()
    for a, b in zip(local.state_dict().values(), expected.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert len(secure.objects) == held


def test_models_in_different_places_are_refused_without_side_effects(workers):
    bob, alice, _ = workers
    a, b = models(2)
    a.send(bob)
    b.send(alice)
    before = (dict(bob.objects), dict(alice.objects))
    with pytest.raises(sy.WorkerMismatchError, match="move"):
        sy.federated_avg([a, b])
    assert (dict(bob.objects), dict(alice.objects)) == before


@pytest.mark.parametrize(
    "weights, message", [([1], "2 models"), ([0, 0], "positive"), ([-1, 2], "non-negative")]
)
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(ValueError, match=message):
        sy.federated_avg(models(2), weights=weights)


def test_empty_or_mismatched_models_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        sy.federated_avg([])
    with pytest.raises(ValueError, match="architecture"):
        sy.federated_avg([nn.Linear(2, 1), nn.Linear(3, 1)])
