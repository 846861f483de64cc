"""The seed lesson's three stages, written with `import federated as sy`.

Stage 1 trains centrally; stage 2 trains on bob's and alice's halves of the data with one
SGD optimizer that follows the model; stage 3 continues with Adam through `sy.Optims`.
Each federated stage is checked against plain PyTorch doing the same updates in the same
order, and the workers must hold nothing but the data (and Adam's state) afterwards.
"""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import nn, optim

import federated as sy

ITERATIONS = 10


def toy_dataset() -> tuple[torch.Tensor, torch.Tensor]:
    data = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]], requires_grad=True)
    target = torch.tensor([[0], [0], [1], [1.0]], requires_grad=True)
    return data, target


def toy_model(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(2, 1)


def printed_losses(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"^tensor\(([-+0-9.e]+)", text, flags=re.M)]


# ---- the seed's code, stage by stage ------------------------------------------------------


def centralized(model: nn.Linear, data, target) -> list[float]:
    """The seed's first `train()`."""
    losses = []
    opt = optim.SGD(params=model.parameters(), lr=0.1)
    for _ in range(20):
        opt.zero_grad()
        pred = model(data)
        loss = ((pred - target) ** 2).sum()
        loss.backward()
        opt.step()
        print(loss.data)
        losses.append(loss.item())
    return losses


def setup_federation():
    """The seed's second cell up to `datasets = ...`."""
    hook = sy.TorchHook(torch)
    bob = sy.VirtualWorker(hook, id="bob")
    alice = sy.VirtualWorker(hook, id="alice")
    data, target = toy_dataset()
    data_bob = data[0:2]
    target_bob = target[0:2]
    data_alice = data[2:]
    target_alice = target[2:]
    data_bob = data_bob.send(bob)
    data_alice = data_alice.send(alice)
    target_bob = target_bob.send(bob)
    target_alice = target_alice.send(alice)
    datasets = [(data_bob, target_bob), (data_alice, target_alice)]
    return bob, alice, datasets


def federated_sgd(model: nn.Linear, datasets) -> list[float]:
    """The seed's second `train()`."""
    losses = []
    opt = optim.SGD(params=model.parameters(), lr=0.1)
    for _ in range(ITERATIONS):
        for data, target in datasets:
            model.send(data.location)
            opt.zero_grad()
            pred = model(data)
            loss = ((pred - target) ** 2).sum()
            loss.backward()
            opt.step()
            model.get()
            value = loss.get()
            print(value)
            losses.append(value.item())
    return losses


def federated_adam(model: nn.Linear, datasets) -> tuple[list[float], sy.Optims]:
    """The seed's third `train()`, with `Optims`."""
    workers = ["bob", "alice"]
    optims = sy.Optims(workers, optim=optim.Adam(params=model.parameters(), lr=0.1))
    losses = []
    for _ in range(ITERATIONS):
        for data, target in datasets:
            model.send(data.location)
            opt = optims.get_optim(data.location.id)
            opt.zero_grad()
            pred = model(data)
            loss = ((pred - target) ** 2).sum()
            loss.backward()
            opt.step()
            model.get()
            value = loss.get()
            print(value)
            losses.append(value.item())
    return losses, optims


# ---- plain PyTorch doing the same updates ---------------------------------------------------


def halves() -> list[tuple[torch.Tensor, torch.Tensor]]:
    data, target = toy_dataset()
    return [(data[0:2].detach(), target[0:2].detach()), (data[2:].detach(), target[2:].detach())]


def plain(model: nn.Linear, opt_for) -> list[float]:
    """`ITERATIONS` passes over the two halves in order; `opt_for(i)` is half i's optimizer."""
    losses = []
    for _ in range(ITERATIONS):
        for i, (x, y) in enumerate(halves()):
            opt = opt_for(i)
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).sum()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses


def same_model(model: nn.Linear) -> nn.Linear:
    twin = nn.Linear(2, 1)
    twin.load_state_dict(copy.deepcopy(model.state_dict()))
    return twin


def params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ---- the tests ------------------------------------------------------------------------------


def test_stage1_centralized_training_is_plain_gradient_descent(capsys):
    sy.TorchHook(torch)  # hooking must not change plain torch
    model = toy_model()
    w, b = model.weight.detach().clone().double(), model.bias.detach().clone().double()
    data, target = toy_dataset()
    losses = centralized(model, data, target)
    out = capsys.readouterr().out
    assert printed_losses(out) == pytest.approx(losses, abs=1e-4)
    assert len(printed_losses(out)) == 20
    # the same steps by hand: loss = sum (Xw^T + b - y)^2
    x, y = data.detach().double(), target.detach().double()
    expected = []
    for _ in range(20):
        r = x @ w.T + b - y
        expected.append((r**2).sum().item())
        w = w - 0.1 * 2 * (r.T @ x)
        b = b - 0.1 * 2 * r.sum(0)
    assert losses == pytest.approx(expected, abs=1e-5)
    assert torch.allclose(model.weight.detach().double(), w, atol=1e-5)
    assert losses[-1] < losses[0] / 2


def test_stage2_federated_sgd_equals_plain_pytorch(capsys):
    bob, alice, datasets = setup_federation()
    model = toy_model()
    reference = same_model(model)
    losses = federated_sgd(model, datasets)
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 2 * ITERATIONS
    assert printed_losses(out) == pytest.approx(losses, abs=1e-4)

    ref_opt = optim.SGD(reference.parameters(), lr=0.1)  # one optimizer, as in the seed
    ref_losses = plain(reference, lambda i: ref_opt)
    assert losses == pytest.approx(ref_losses, abs=1e-6)
    for a, b in zip(params(model), params(reference)):
        assert torch.allclose(a, b, atol=1e-6)
    assert losses[-1] < losses[0] / 2
    assert all(type(p) is nn.Parameter for p in model.parameters())


def test_stage2_leaves_only_the_data_and_target_on_each_worker():
    bob, alice, datasets = setup_federation()
    model = toy_model()
    federated_sgd(model, datasets)
    (data_bob, target_bob), (data_alice, target_alice) = datasets
    assert len(bob.objects) == 2
    assert len(alice.objects) == 2
    assert sorted(bob.objects) == sorted([data_bob.id_at_location, target_bob.id_at_location])
    assert sorted(alice.objects) == sorted([data_alice.id_at_location, target_alice.id_at_location])
    data, target = toy_dataset()
    assert torch.equal(bob.objects[data_bob.id_at_location], data[0:2].detach())
    assert torch.equal(alice.objects[target_alice.id_at_location], target[2:].detach())


def _run_stages_2_and_3():
    bob, alice, datasets = setup_federation()
    model = toy_model()
    reference = same_model(model)
    federated_sgd(model, datasets)
    ref_opt = optim.SGD(reference.parameters(), lr=0.1)
    plain(reference, lambda i: ref_opt)
    before_adam = same_model(model)
    losses, optims = federated_adam(model, datasets)
    return bob, alice, datasets, model, reference, before_adam, losses, optims


def test_stage3_adam_through_optims_equals_two_plain_adams(capsys):
    bob, alice, datasets, model, reference, before_adam, losses, optims = _run_stages_2_and_3()
    out = capsys.readouterr().out
    assert len(printed_losses(out)) == 4 * ITERATIONS  # stage 2's and stage 3's
    assert printed_losses(out)[2 * ITERATIONS :] == pytest.approx(losses, abs=1e-4)

    for a, b in zip(params(before_adam), params(reference)):  # stage 3 starts at the same point
        assert torch.allclose(a, b, atol=1e-6)
    adams = [optim.Adam(reference.parameters(), lr=0.1) for _ in range(2)]  # one per half
    ref_losses = plain(reference, lambda i: adams[i])
    assert losses == pytest.approx(ref_losses, abs=1e-6)
    for a, b in zip(params(model), params(reference)):
        assert torch.allclose(a, b, atol=1e-6)
    assert losses[-1] < losses[0] / 2


def test_stage3_from_a_fresh_model_converges_and_equals_two_plain_adams(capsys):
    bob, alice, datasets = setup_federation()
    model = toy_model()
    reference = same_model(model)
    losses, _ = federated_adam(model, datasets)
    adams = [optim.Adam(reference.parameters(), lr=0.1) for _ in range(2)]
    assert losses == pytest.approx(plain(reference, lambda i: adams[i]), abs=1e-6)
    assert losses[-1] < losses[0] / 2
    assert len(printed_losses(capsys.readouterr().out)) == 2 * ITERATIONS


def test_stage3_leaves_only_data_target_and_adam_state_on_each_worker():
    bob, alice, datasets, model, reference, before_adam, losses, optims = _run_stages_2_and_3()
    for worker, (data, target) in zip((bob, alice), datasets):
        opt = optims.get_optim(worker.id)
        state = [s[k] for s in opt.state.values() for k in ("exp_avg", "exp_avg_sq")]
        assert len(state) == 4
        assert all(isinstance(t, sy.PointerTensor) and t.location is worker for t in state)
        expected = {data.id_at_location, target.id_at_location}
        expected |= {t.id_at_location for t in state}
        assert len(worker.objects) == 6
        assert set(worker.objects) == expected
    assert all(type(p) is nn.Parameter for p in model.parameters())
