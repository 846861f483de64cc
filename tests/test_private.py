"""Private data: computed on where it is; what leaves is a trained model, nothing else.

The many ways around these rules are in `test_attacks.py`; here is what a learner meets."""

from __future__ import annotations

import pytest
import torch
from torch import nn, optim

import federated as sy


@pytest.fixture
def owner():
    hook = sy.TorchHook(torch)
    bob, alice = sy.VirtualWorker(hook, id="bob"), sy.VirtualWorker(hook, id="alice")
    records = torch.tensor([[63.0, 1.0], [47.0, 0.0], [55.0, 1.0], [38.0, 0.0]])
    bob.load(records, tag=["#patients", "#ages"], private=True, description="age, diagnosis")
    return bob, alice, records


def test_search_finds_loaded_data_by_tag(owner):
    bob, _, records = owner
    (found,) = bob.search("#patients")
    assert found.shape == records.shape
    assert bob.search("#patients", "#ages")[0].id_at_location == found.id_at_location
    assert bob.search("#nothing") == []
    info = bob.describe(found.id_at_location)
    assert info.tags == ("#patients", "#ages") and info.private
    assert info.description == "age, diagnosis"
    del found  # loaded data is the owner's: dropping pointers does not free it
    assert len(bob.search("#patients")) == 1


@pytest.mark.parametrize(
    "leak",
    [
        lambda p: p.get(),
        lambda p: p.copy().get(),
        lambda p: p.clone().get(),
        lambda p: p.detach().get(),
        lambda p: p.view(-1).get(),
        lambda p: p.reshape(8).get(),
        lambda p: p[0].get(),
        lambda p: p[:, 1].get(),
        lambda p: p.t().get(),
        lambda p: (p + 0).get(),
        lambda p: (p * 1).get(),
        lambda p: p.float().get(),
        lambda p: torch.cat([p, p]).get(),
        lambda p: p.unbind(0)[0].get(),
    ],
)
def test_raw_data_and_trivial_copies_cannot_be_fetched(owner, leak):
    bob, alice, records = owner
    (patients,) = bob.search("#patients")
    with pytest.raises(PermissionError):
        leak(patients)
    assert torch.equal(bob.objects[patients.id_at_location], records)
    assert len(alice.objects) == 0


def test_private_data_cannot_be_moved_or_fetched_through_a_chain(owner):
    bob, alice, records = owner
    (patients,) = bob.search("#patients")
    with pytest.raises(sy.PrivateDataError):
        patients.move(alice)
    assert patients.location is bob and len(alice.objects) == 0
    chained = patients.send(alice)
    with pytest.raises(PermissionError):
        chained.remote_get()
    assert torch.equal(bob.objects[patients.id_at_location], records)


@pytest.mark.parametrize(
    "aggregate",
    [
        lambda p: p[:, 0].mean(),
        lambda p: p.sum(),
        lambda p: (p[:, 0] > 50).float().mean(),
        lambda p: torch.nn.functional.mse_loss(p[:, 0], p[:, 1]),
    ],
)
def test_aggregates_of_private_data_stay_too(owner, aggregate):
    """A mean of one record is the record: smaller results are no safer than the data.
    Aggregates leave only through differential privacy (lesson 8)."""
    bob, _, records = owner
    (patients,) = bob.search("#patients")
    result = aggregate(patients)
    with pytest.raises(sy.PrivateDataError, match="differential privacy"):
        result.get()
    assert torch.equal(bob.objects[patients.id_at_location], records)


def test_a_model_trained_on_private_data_may_leave(owner):
    bob, _, _ = owner
    (patients,) = bob.search("#patients")
    ages, diagnosis = (patients[:, 0:1] - 50) / 10, patients[:, 1:2]
    torch.manual_seed(0)
    model = nn.Linear(1, 1).send(bob)
    opt = optim.SGD(model.parameters(), lr=1.0)
    for _ in range(10):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(ages), diagnosis)
        loss.backward()
        opt.step()
    with pytest.raises(sy.PrivateDataError):
        loss.get()  # the loss is computed from the records
    model.get()
    assert model.weight.item() > 1.0  # older patients: diagnosis 1
    assert model.weight.grad is None  # the gradient stays on bob
    held = {i: o for i, o in bob.objects.items() if i != patients.id_at_location}
    assert all(bob.is_private(i) for i in held)  # what training left there stays there


def test_a_copy_of_a_trained_model_leaves_like_the_model(owner):
    """`model.copy().get()` (lessons 4 and 6 average such copies) is the model exit too;
    a copy of the data is still the data."""
    bob, _, _ = owner
    (patients,) = bob.search("#patients")
    model = nn.Linear(1, 1).send(bob)
    opt = optim.SGD(model.parameters(), lr=0.1)
    model(patients[:, 0:1] / 50).sum().backward()
    opt.step()
    copy = model.copy().get()
    assert isinstance(copy.weight, nn.Parameter) and copy.weight.grad is None
    assert torch.equal(copy.weight.detach(), model.copy().get().weight.detach())
    with pytest.raises(sy.PrivateDataError):
        patients.copy().get()


def test_an_owner_may_keep_models_trained_on_her_data(owner):
    bob, _, records = owner
    bob.load(records, tag="#strict", private=True, model_exit=False)
    (strict,) = bob.search("#strict")
    model = nn.Linear(1, 1).send(bob)
    opt = optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    model(strict[:, 0:1] / 50).sum().backward()
    opt.step()
    with pytest.raises(sy.PrivateDataError, match="model_exit=False"):
        model.get()
    assert model.location is bob


def test_public_data_is_unaffected(owner):
    bob, _, _ = owner
    x = torch.tensor([1.0, 2.0]).send(bob)
    assert torch.equal((x + 0).get(), torch.tensor([1.0, 2.0]))
    assert not bob.is_private(x.id_at_location)
