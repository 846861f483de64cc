"""Training on shared data with a shared model: gradients of shares (shared_autograd)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn, optim

from federated.shared_autograd import AutogradTensor
from tests.helpers import workers as make_workers


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(2, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        return self.out(F.relu(self.hidden(x)))


def _data():
    g = torch.Generator().manual_seed(7)
    x = torch.rand(16, 2, generator=g) * 2 - 1
    y = (x[:, :1] - 0.5 * x[:, 1:]).abs() + 0.2  # a bend that needs the ReLU
    return x, y


def test_gradients_of_shares_equal_torch_gradients():
    bob, alice, carol = make_workers("bob", "alice", "carol")
    x, y = _data()
    torch.manual_seed(0)
    plain = Tiny()
    shared = Tiny()
    shared.load_state_dict(plain.state_dict())
    ((plain(x) - y) ** 2).sum().div(16).backward()

    shared.fix_precision().share(bob, alice, crypto_provider=carol, requires_grad=True)
    data = x.fix_precision().share(bob, alice, crypto_provider=carol, requires_grad=True)
    target = y.fix_precision().share(bob, alice, crypto_provider=carol, requires_grad=True)
    loss = ((shared(data) - target) ** 2).sum().refresh() / 16
    loss.backward()
    for (name, p), q in zip(shared.named_parameters(), plain.parameters()):
        assert isinstance(p, AutogradTensor) and isinstance(p.grad, AutogradTensor)
        got = p.grad.get().float_precision()
        torch.testing.assert_close(got, q.grad, rtol=0, atol=0.02, msg=name)


def test_loss_of_training_on_shares_falls_and_parameters_stay_shared():
    bob, alice, carol = make_workers("bob", "alice", "carol")
    x, y = _data()
    torch.manual_seed(0)
    model = Tiny().fix_precision().share(bob, alice, crypto_provider=carol, requires_grad=True)
    opt = optim.SGD(model.parameters(), lr=0.2).fix_precision()
    data = x.fix_precision().share(bob, alice, crypto_provider=carol, requires_grad=True)
    target = y.fix_precision().share(bob, alice, crypto_provider=carol, requires_grad=True)
    losses = []
    for _ in range(12):
        opt.zero_grad()
        loss = ((model(data) - target) ** 2).sum().refresh() / 16
        loss.backward()
        opt.step()
        losses.append(loss.get().float_precision().item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is not None for p in model.parameters())
    weight = model.hidden.weight.child.child
    assert set(weight.shares) == {"bob", "alice"}  # still shares after twelve steps
