"""Optimizers through pointers, and `sy.Optims`: one stateful optimizer per worker."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import optim

import federated as sy
from tests.helpers import X, Y, assert_same_state, held, linear, snapshot, values, workers


def step(model, opt, data, target) -> torch.Tensor:
    """One seed-style step; `model` must already be where `data` is."""
    opt.zero_grad()
    loss = ((model(data) - target) ** 2).sum()
    loss.backward()
    opt.step()
    return loss


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1),
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda ps: optim.Adam(ps, lr=0.1),
        lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True, weight_decay=0.1),
        lambda ps: optim.AdamW(ps, lr=0.1),
        lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5),
        lambda ps: optim.Adamax(ps, lr=0.1),
        lambda ps: optim.NAdam(ps, lr=0.1),
        lambda ps: optim.RAdam(ps, lr=0.1),
        lambda ps: optim.Adadelta(ps),
        lambda ps: optim.ASGD(ps, lr=0.1),  # its foreach version mixes in local scalars
        lambda ps: optim.Rprop(ps, lr=0.1),
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, foreach=False),
    ],
    ids=[
        "sgd",
        "momentum",
        "nesterov-wd",
        "adam",
        "adam-amsgrad-wd",
        "adamw",
        "rmsprop",
        "adamax",
        "nadam",
        "radam",
        "adadelta",
        "asgd",
        "rprop",
        "sgd-foreach-false",
    ],
)
def test_an_optimizer_on_one_worker_equals_the_local_one(make):
    (bob,) = workers("bob")
    model, reference = linear(), linear()
    opt, ref_opt = make(model.parameters()), make(reference.parameters())
    data, target = X.send(bob), Y.send(bob)
    model.send(bob)  # after the optimizer was made
    for _ in range(5):
        loss = step(model, opt, data, target)
        ref_loss = step(reference, ref_opt, X, Y)
        assert torch.allclose(held(bob, loss), ref_loss, atol=1e-6)
        for p, r in zip(model.parameters(), reference.parameters()):
            assert torch.allclose(held(bob, p), r, atol=1e-6)
    model.get()
    for a, b in zip(values(model), values(reference)):
        assert torch.allclose(a, b, atol=1e-6)


def _foreach_add_calls(model, opt, data, target) -> list[int]:
    """How many tensors each `torch._foreach_add_` call of one step got."""
    calls = []
    original = torch._foreach_add_

    def spy(*args, **kwargs):
        calls.append(len(args[0]))
        return original(*args, **kwargs)

    torch._foreach_add_ = spy
    try:
        step(model, opt, data, target)
    finally:
        torch._foreach_add_ = original
    return calls


def test_foreach_chosen_by_the_learner_steps_a_workers_group_in_one_call():
    (bob,) = workers("bob")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    reference = copy.deepcopy(model)
    opt = optim.SGD(model.parameters(), lr=0.1, foreach=True)
    ref_opt = optim.SGD(reference.parameters(), lr=0.1)
    data, target = X.send(bob), Y.send(bob)
    model.send(bob)
    assert _foreach_add_calls(model, opt, data, target) == [4]  # all four in one call
    step(reference, ref_opt, X, Y)
    model.get()
    for a, b in zip(values(model), values(reference)):
        assert torch.equal(a, b)


def test_a_step_leaves_the_learners_foreach_setting_and_torchs_choice_alone():
    (bob,) = workers("bob")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)  # foreach left for torch to choose
    data, target = X.send(bob), Y.send(bob)
    model.send(bob)
    assert _foreach_add_calls(model, opt, data, target) == []  # torch's CPU choice: a loop
    assert opt.param_groups[0]["foreach"] is None
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks


def test_adagrad_made_after_send_equals_the_local_one():
    # Adagrad makes its state when it is built, so it is built where the model is
    (bob,) = workers("bob")
    model, reference = linear(), linear()
    data, target = X.send(bob), Y.send(bob)
    model.send(bob)
    opt, ref_opt = (
        optim.Adagrad(model.parameters(), lr=0.1),
        optim.Adagrad(reference.parameters(), lr=0.1),
    )
    for _ in range(3):
        step(model, opt, data, target)
        step(reference, ref_opt, X, Y)
    model.get()
    for a, b in zip(values(model), values(reference)):
        assert torch.allclose(a, b, atol=1e-6)


def test_torch_dispatch_of_the_grad_getter_gives_the_same_pointer_as_the_property():
    (bob,) = workers("bob")
    model = linear()
    data, target = X.send(bob), Y.send(bob)
    model.send(bob)
    ((model(data) - target) ** 2).sum().backward()
    via_property = model.weight.grad
    via_torch = torch.Tensor.grad.__get__(model.weight)
    assert via_torch is via_property
    assert torch.equal(held(bob, via_property), held(bob, model.weight).grad)


def test_sgd_follows_the_model_between_workers_like_local_sgd():
    bob, alice = workers("bob", "alice")
    model, reference = linear(), linear()
    opt = optim.SGD(model.parameters(), lr=0.1)
    ref_opt = optim.SGD(reference.parameters(), lr=0.1)
    datasets = [(X[:2].send(bob), Y[:2].send(bob)), (X[2:].send(alice), Y[2:].send(alice))]
    halves = [(X[:2], Y[:2]), (X[2:], Y[2:])]
    for _ in range(4):
        for (data, target), (x, y) in zip(datasets, halves):
            model.send(data.location)
            loss = step(model, opt, data, target)
            model.get()
            ref_loss = step(reference, ref_opt, x, y)
            assert torch.allclose(loss.get(), ref_loss, atol=1e-6)
            for a, b in zip(values(model), values(reference)):
                assert torch.allclose(a, b, atol=1e-6)
            assert all(
                torch.allclose(p.grad, r.grad, atol=1e-6)
                for p, r in zip(model.parameters(), reference.parameters())
            )


def test_adam_state_lives_on_the_worker():
    (bob,) = workers("bob")
    model = linear()
    opt = optim.Adam(model.parameters(), lr=0.1)
    data, target = X.send(bob), Y.send(bob)
    model.send(bob)
    step(model, opt, data, target)
    model.get()
    for p in model.parameters():
        state = opt.state[p]
        assert isinstance(state["exp_avg"], sy.PointerTensor)
        assert state["exp_avg"].location is bob
        assert isinstance(state["exp_avg_sq"], sy.PointerTensor)
        assert state["exp_avg_sq"].location is bob
        assert not isinstance(state["step"], sy.PointerTensor)
        assert state["step"].item() == 1
    kept = {data.id_at_location, target.id_at_location}
    kept |= {s[k].id_at_location for s in opt.state.values() for k in ("exp_avg", "exp_avg_sq")}
    assert len(kept) == 6
    assert set(bob.objects) == kept


def test_optims_equals_two_local_adams_step_for_step():
    bob, alice = workers("bob", "alice")
    model, reference = linear(), linear()
    optims = sy.Optims(["bob", "alice"], optim=optim.Adam(model.parameters(), lr=0.1))
    local_opts = {
        "bob": optim.Adam(reference.parameters(), lr=0.1),
        "alice": optim.Adam(reference.parameters(), lr=0.1),
    }
    datasets = [(X[:2].send(bob), Y[:2].send(bob)), (X[2:].send(alice), Y[2:].send(alice))]
    halves = [(X[:2], Y[:2]), (X[2:], Y[2:])]
    losses, ref_losses = [], []
    for _ in range(5):
        for (data, target), (x, y) in zip(datasets, halves):
            model.send(data.location)
            opt = optims.get_optim(data.location.id)
            loss = step(model, opt, data, target)
            model.get()
            ref_loss = step(reference, local_opts[data.location.id], x, y)
            losses.append(loss.get().item())
            ref_losses.append(ref_loss.item())
            for a, b in zip(values(model), values(reference)):
                assert torch.allclose(a, b, atol=1e-6)
    assert losses == pytest.approx(ref_losses, abs=1e-6)
    # each worker's optimizer keeps its own state, on that worker
    for name, worker in (("bob", bob), ("alice", alice)):
        opt, ref = optims.get_optim(name), local_opts[name]
        for p, r in zip(model.parameters(), reference.parameters()):
            assert opt.state[p]["exp_avg"].location is worker
            assert opt.state[p]["step"].item() == 5
            assert torch.allclose(
                opt.state[p]["exp_avg"].copy().get(), ref.state[r]["exp_avg"], atol=1e-6
            )
            assert torch.allclose(
                opt.state[p]["exp_avg_sq"].copy().get(), ref.state[r]["exp_avg_sq"], atol=1e-6
            )


def test_optims_makes_one_fresh_optimizer_per_worker_with_the_same_settings():
    bob, alice = workers("bob", "alice")
    model = linear()
    pattern = optim.Adam(model.parameters(), lr=0.05, betas=(0.8, 0.9))
    optims = sy.Optims(["bob", alice], optim=pattern)  # ids or workers
    a, b = optims.get_optim("alice"), optims.get_optim(bob)
    assert a is optims.get_optim(alice)
    assert b is optims.get_optim("bob")
    assert a is not b and pattern is not a and pattern is not b
    for opt in (a, b):
        assert type(opt) is optim.Adam
        assert opt.param_groups[0]["lr"] == 0.05
        assert opt.param_groups[0]["betas"] == (0.8, 0.9)
        assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in model.parameters()]
        assert len(opt.state) == 0
    assert repr(optims) == "Optims(Adam for ['bob', 'alice'])"


def test_optims_rejects_bad_arguments():
    model = linear()
    opt = optim.SGD(model.parameters(), lr=0.1)
    optims = sy.Optims(["bob", "alice"], optim=opt)
    with pytest.raises(KeyError, match="carol") as info:
        optims.get_optim("carol")
    assert "alice" in str(info.value) and "bob" in str(info.value)
    with pytest.raises(TypeError, match="optim"):
        sy.Optims(["bob"], optim=model)
    with pytest.raises(ValueError, match="distinct"):
        sy.Optims(["bob", "bob"], optim=opt)
    with pytest.raises(ValueError):
        sy.Optims([], optim=opt)


STATEFUL = {
    "adam": lambda ps: optim.Adam(ps, lr=0.1),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.1),
    "sgd-momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
}


def _stepped_on_bob_then_model_on_alice(kind: str = "adam"):
    """One stateful optimizer, stepped on bob (its state is there), then the model sent to
    alice and backpropagated: everything just before the wrong `opt.step()`."""
    bob, alice = workers("bob", "alice")
    model = linear()
    opt = STATEFUL[kind](model.parameters())
    bob_data, bob_target = X[:2].send(bob), Y[:2].send(bob)
    alice_data, alice_target = X[2:].send(alice), Y[2:].send(alice)
    model.send(bob)
    step(model, opt, bob_data, bob_target)
    model.get()
    model.send(alice)
    opt.zero_grad()
    loss = ((model(alice_data) - alice_target) ** 2).sum()
    loss.backward()
    keep = (bob_data, bob_target, alice_data, alice_target, loss)
    return bob, alice, model, opt, keep


@pytest.mark.parametrize("kind", list(STATEFUL))
def test_one_stateful_optimizer_on_two_workers_raises_worker_mismatch_naming_optims(kind):
    bob, alice, model, opt, _keep = _stepped_on_bob_then_model_on_alice(kind)
    with pytest.raises(sy.WorkerMismatchError) as info:
        opt.step()
    message = str(info.value)
    assert "Optims" in message
    assert "bob" in message and "alice" in message
    assert "get_optim" in message


@pytest.mark.parametrize("kind", list(STATEFUL))
def test_one_stateful_optimizer_on_two_workers_changes_nothing_on_bob(kind):
    bob, alice, model, opt, _keep = _stepped_on_bob_then_model_on_alice(kind)
    before = snapshot(bob)
    with pytest.raises(sy.WorkerMismatchError):
        opt.step()
    assert_same_state(before, bob)


@pytest.mark.parametrize("kind", list(STATEFUL))
def test_one_stateful_optimizer_on_two_workers_leaves_alices_model_as_it_was(kind):
    bob, alice, model, opt, _keep = _stepped_on_bob_then_model_on_alice(kind)
    params_before = [held(alice, p).detach().clone() for p in model.parameters()]
    with pytest.raises(sy.WorkerMismatchError):
        opt.step()
    for p, old in zip(model.parameters(), params_before):
        assert torch.equal(held(alice, p), old)


@pytest.mark.parametrize("kind", list(STATEFUL))
def test_one_stateful_optimizer_on_two_workers_changes_nothing_on_alice(kind):
    bob, alice, model, opt, _keep = _stepped_on_bob_then_model_on_alice(kind)
    before = snapshot(alice)
    with pytest.raises(sy.WorkerMismatchError):
        opt.step()
    assert_same_state(before, alice)  # same ids, same values


def test_after_the_mismatch_optims_recovers_the_same_training():
    """The error's advice works: the same model trained with Optims from the failed point."""
    bob, alice, model, opt, keep = _stepped_on_bob_then_model_on_alice("adam")
    with pytest.raises(sy.WorkerMismatchError):
        opt.step()
    model.get()
    snapshot_model = copy.deepcopy(model)
    optims = sy.Optims([bob, alice], optim=optim.Adam(model.parameters(), lr=0.1))
    model.send(alice)
    loss = step(model, optims.get_optim("alice"), keep[2], keep[3])
    model.get()
    ref_opt = optim.Adam(snapshot_model.parameters(), lr=0.1)
    ref_loss = step(snapshot_model, ref_opt, X[2:], Y[2:])
    assert torch.allclose(loss.get(), ref_loss, atol=1e-6)
    for a, b in zip(values(model), values(snapshot_model)):
        assert torch.allclose(a, b, atol=1e-6)
