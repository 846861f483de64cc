"""Whole models: `model.send`, `.get`, `.move`, `.copy`, `.location`, and their errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn, optim

import federated as sy
from tests.helpers import X, Y, assert_same_state, linear, snapshot, values, workers


def remote_values(model: nn.Module) -> list[torch.Tensor]:
    """The values a sent model's worker holds for its parameters."""
    where = model.location
    return [where.objects[p.id_at_location].detach().clone() for p in model.parameters()]


def test_send_turns_parameters_into_pointers_keeping_their_identity():
    (bob,) = workers("bob")
    model = linear()
    ids = [id(p) for p in model.parameters()]
    before = values(model)
    assert model.send(bob) is model
    params = list(model.parameters())
    assert [id(p) for p in params] == ids
    assert all(isinstance(p, sy.PointerTensor) and p.location is bob for p in params)
    assert [p.shape for p in params] == [torch.Size([1, 2]), torch.Size([1])]
    assert sorted(bob.objects) == [1, 2]
    assert [p.id_at_location for p in params] == [1, 2]
    for p, old in zip(params, before):
        real = bob.objects[p.id_at_location]
        assert torch.equal(real, old)
        assert real.requires_grad and real.is_leaf
    assert model.weight is params[0]
    assert model.location is bob


def test_send_to_the_worker_it_is_on_changes_nothing():
    (bob,) = workers("bob")
    model = linear().send(bob)
    before = snapshot(bob)
    ptr_ids = [p.id_at_location for p in model.parameters()]
    assert model.send(bob) is model
    assert [p.id_at_location for p in model.parameters()] == ptr_ids
    assert_same_state(before, bob)


def test_a_sent_model_computes_on_the_worker():
    (bob,) = workers("bob")
    model = linear()
    expected = model(X)
    model.send(bob)
    pred = model(X.send(bob))
    assert isinstance(pred, sy.PointerTensor) and pred.location is bob
    assert pred.shape == (4, 1)
    assert torch.allclose(pred.get(), expected)


def test_get_brings_plain_parameters_back_with_their_gradients():
    (bob,) = workers("bob")
    model = linear()
    ids = [id(p) for p in model.parameters()]
    model.send(bob)
    data, target = X.send(bob), Y.send(bob)
    ((model(data) - target) ** 2).sum().backward()
    on_bob = remote_values(model)
    grads_on_bob = [bob.objects[p.id_at_location].grad.clone() for p in model.parameters()]
    param_ids_on_bob = [p.id_at_location for p in model.parameters()]
    assert model.get() is model
    params = list(model.parameters())
    assert [id(p) for p in params] == ids
    assert all(type(p) is nn.Parameter for p in params)
    assert all(p.requires_grad for p in params)
    for p, value, grad in zip(params, on_bob, grads_on_bob):
        assert torch.equal(p.detach(), value)
        assert p.grad is not None and type(p.grad) is torch.Tensor
        assert torch.equal(p.grad, grad)
    assert all(i not in bob.objects for i in param_ids_on_bob)
    assert sorted(bob.objects) == sorted([data.id_at_location, target.id_at_location])
    assert model.location is None
    # the gradients equal the local computation's
    local = linear()
    ((local(X) - Y) ** 2).sum().backward()
    assert torch.allclose(model.weight.grad, local.weight.grad)
    assert torch.allclose(model.bias.grad, local.bias.grad)


def test_get_without_backward_brings_no_gradient():
    (bob,) = workers("bob")
    model = linear()
    before = values(model)
    model.send(bob).get()
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(p.detach(), v) for p, v in zip(model.parameters(), before))
    assert len(bob.objects) == 0


def test_a_fetched_model_trains_locally_again():
    (bob,) = workers("bob")
    model = linear().send(bob).get()
    reference = linear()
    for m in (model, reference):
        opt = optim.SGD(m.parameters(), lr=0.1)
        opt.zero_grad()
        ((m(X) - Y) ** 2).sum().backward()
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(values(model), values(reference)))


def test_move_takes_the_model_to_another_worker():
    bob, alice = workers("bob", "alice")
    model = linear()
    ids = [id(p) for p in model.parameters()]
    before = values(model)
    model.send(bob)
    bob_ids = [p.id_at_location for p in model.parameters()]
    assert model.move(alice) is model
    assert [id(p) for p in model.parameters()] == ids
    assert model.location is alice
    assert all(p.location is alice for p in model.parameters())
    assert all(i not in bob.objects for i in bob_ids)
    assert len(bob.objects) == 0
    assert len(alice.objects) == 2
    assert all(torch.equal(a, b) for a, b in zip(remote_values(model), before))
    data = X.send(alice)
    pred = model(data)  # runs on alice now
    assert torch.allclose(pred.get(), linear()(X))
    model.get()
    assert all(torch.equal(a, b) for a, b in zip(values(model), before))
    assert list(alice.objects) == [data.id_at_location]


def test_move_after_training_leaves_nothing_behind_and_keeps_the_gradients():
    bob, alice = workers("bob", "alice")
    model = linear()
    opt = optim.SGD(model.parameters(), lr=0.1)
    data, target = X.send(bob), Y.send(bob)
    model.send(bob)
    opt.zero_grad()
    ((model(data) - target) ** 2).sum().backward()
    opt.step()  # reads every p.grad
    grads = [bob.objects[p.id_at_location].grad.clone() for p in model.parameters()]
    trained = remote_values(model)
    model.move(alice)
    assert sorted(bob.objects) == sorted([data.id_at_location, target.id_at_location])
    assert len(alice.objects) == 2
    assert all(torch.equal(p.grad.copy().get(), g) for p, g in zip(model.parameters(), grads))
    model.get()
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert all(torch.equal(a, b) for a, b in zip(values(model), trained))
    assert len(alice.objects) == 0


def test_move_to_its_own_worker_changes_nothing():
    (bob,) = workers("bob")
    model = linear().send(bob)
    before = snapshot(bob)
    assert model.move(bob) is model
    assert model.location is bob
    assert_same_state(before, bob)


def test_copy_of_a_sent_model_lives_on_the_same_worker_and_is_independent():
    (bob,) = workers("bob")
    model = linear()
    before = values(model)
    model.send(bob)
    twin = model.copy()
    assert twin is not model
    assert twin.location is bob
    assert len(bob.objects) == 4
    twin_ids = {p.id_at_location for p in twin.parameters()}
    assert twin_ids.isdisjoint({p.id_at_location for p in model.parameters()})
    assert all(torch.equal(a, b) for a, b in zip(remote_values(twin), before))
    with torch.no_grad():
        twin.weight.add_(100)  # on bob, to the copy only
    assert all(torch.equal(a, b) for a, b in zip(remote_values(model), before))
    twin.get()
    model.get()
    assert all(type(p) is nn.Parameter for p in twin.parameters())
    assert torch.equal(twin.weight.detach(), before[0] + 100)
    assert torch.equal(model.weight.detach(), before[0])
    assert torch.equal(twin.bias.detach(), before[1])
    assert len(bob.objects) == 0


def test_copy_of_a_local_model_is_local_and_independent():
    sy.TorchHook(torch)
    model = linear()
    twin = model.copy()
    assert twin.location is None
    with torch.no_grad():
        twin.weight.zero_()
    assert not torch.equal(model.weight, twin.weight)


def test_a_copy_of_a_sent_model_explains_a_wrong_worker_like_the_model_does():
    bob, alice = workers("bob", "alice")
    model = linear().send(bob)
    twin = model.copy()
    data = X.send(alice)
    with pytest.raises(sy.WorkerMismatchError) as original:
        model(data)
    with pytest.raises(sy.WorkerMismatchError) as copied:
        twin(data)
    assert "the model is on bob" in str(original.value)
    assert str(copied.value) == str(original.value)


def test_location_of_models():
    bob, alice = workers("bob", "alice")
    model = linear()
    assert model.location is None
    model.send(bob)
    assert model.location is bob
    model.move(alice)
    assert model.location is alice
    model.get()
    assert model.location is None
    assert nn.ReLU().location is None  # nothing to send


def test_buffers_travel_and_update_on_the_worker():
    (bob,) = workers("bob")
    torch.manual_seed(0)
    batch = torch.randn(4, 3)
    reference = nn.BatchNorm1d(3)
    model = copy.deepcopy(reference)
    expected = reference(batch)
    model.send(bob)
    assert len(bob.objects) == 5  # weight, bias, running_mean, running_var, num_batches
    assert isinstance(model.running_mean, sy.PointerTensor)
    out = model(batch.send(bob))
    assert torch.allclose(out.get(), expected)
    model.get()
    assert type(model.running_mean) is torch.Tensor
    assert torch.allclose(model.running_mean, reference.running_mean)
    assert torch.allclose(model.running_var, reference.running_var)
    assert model.num_batches_tracked.item() == 1
    assert dict(model.named_buffers()).keys() == dict(reference.named_buffers()).keys()
    assert len(bob.objects) == 0


def test_an_optimizer_made_before_send_keeps_working():
    (bob,) = workers("bob")
    model, reference = linear(), linear()
    opt = optim.SGD(model.parameters(), lr=0.1)
    ref_opt = optim.SGD(reference.parameters(), lr=0.1)
    data, target = X.send(bob), Y.send(bob)
    model.send(bob)
    opt.zero_grad()
    loss = ((model(data) - target) ** 2).sum()
    loss.backward()
    opt.step()
    on_bob = remote_values(model)
    model.get()
    ref_opt.zero_grad()
    ref_loss = ((reference(X) - Y) ** 2).sum()
    ref_loss.backward()
    ref_opt.step()
    assert torch.allclose(loss.get(), ref_loss)
    for a, b, c in zip(values(model), on_bob, values(reference)):
        assert torch.equal(a, b)
        assert torch.allclose(a, c, atol=1e-7)
    assert not torch.equal(values(model)[0], linear().weight.detach())  # it did move


# ---- errors ---------------------------------------------------------------------------------


def test_a_model_on_bob_called_on_alices_data_raises_worker_mismatch():
    bob, alice = workers("bob", "alice")
    model = linear().send(bob)
    data = X.send(alice)
    before_bob, before_alice = snapshot(bob), snapshot(alice)
    with pytest.raises(sy.WorkerMismatchError) as info:
        model(data)
    message = str(info.value)
    assert "model.send(data.location)" in message or "move" in message
    assert "bob" in message and "alice" in message
    assert_same_state(before_bob, bob)
    assert_same_state(before_alice, alice)
    assert model.location is bob


def test_a_local_model_called_on_bobs_data_raises_local_tensor_error():
    (bob,) = workers("bob")
    model = linear()
    before_params = values(model)
    data = X.send(bob)
    before = snapshot(bob)
    with pytest.raises(sy.LocalTensorError) as info:
        model(data)
    message = str(info.value)
    assert "model.send(data.location)" in message
    assert "bob" in message
    assert_same_state(before, bob)
    assert model.location is None
    assert all(torch.equal(a, b) for a, b in zip(values(model), before_params))


@pytest.mark.parametrize("not_a_worker", ["bob", None, 3, torch.ones(1)])
def test_send_to_something_that_is_not_a_worker_raises_type_error(not_a_worker):
    (bob,) = workers("bob")
    model = linear()
    ids, before = [id(p) for p in model.parameters()], values(model)
    with pytest.raises(TypeError, match="worker"):
        model.send(not_a_worker)
    assert model.location is None
    assert [id(p) for p in model.parameters()] == ids
    assert all(type(p) is nn.Parameter for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(values(model), before))
    assert len(bob.objects) == 0


def test_send_to_another_worker_while_sent_raises_worker_mismatch():
    bob, alice = workers("bob", "alice")
    model = linear().send(bob)
    before_bob, before_alice = snapshot(bob), snapshot(alice)
    with pytest.raises(sy.WorkerMismatchError) as info:
        model.send(alice)
    message = str(info.value)
    assert "bob" in message and "alice" in message
    assert "move" in message or "get()" in message
    assert model.location is bob
    assert_same_state(before_bob, bob)
    assert_same_state(before_alice, alice)


def test_get_of_a_local_model_raises_not_remote_error():
    (bob,) = workers("bob")
    model = linear()
    with pytest.raises(sy.NotRemoteError):
        model.get()
    model.send(bob).get()
    with pytest.raises(sy.NotRemoteError):  # already fetched
        model.get()
    with pytest.raises(sy.NotRemoteError):
        model.move(bob)
    assert model.location is None
    assert len(bob.objects) == 0


def test_get_of_a_model_whose_worker_forgot_it_raises_object_not_found():
    (bob,) = workers("bob")
    model = linear().send(bob)
    bob.clear_objects()
    with pytest.raises(sy.ObjectNotFoundError, match="bob"):
        model.get()
    assert model.location is bob  # nothing half-fetched
    assert all(isinstance(p, sy.PointerTensor) for p in model.parameters())
