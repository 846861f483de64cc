"""Encrypted inference: lesson 5's digits CNN, model and images both secret-shared."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import federated as sy
from federated import traffic
from tests.helpers import workers as make_workers


class SmallDigitNet(nn.Module):
    """Lesson 5's network: two convolutions with ReLU and max-pooling, one linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


@pytest.fixture(scope="module")
def trained():
    """A CNN trained in the clear on 1,500 digits; the other 297 are the test set."""
    torch.manual_seed(1)
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target)
    order = torch.randperm(len(images))
    images, labels = images[order], labels[order]
    model = SmallDigitNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(6):
        for i in range(0, 1500, 50):
            opt.zero_grad()
            F.cross_entropy(model(images[i : i + 50]), labels[i : i + 50]).backward()
            opt.step()
    return model, images[1500:], labels[1500:]


def test_encrypted_predictions_equal_plain_predictions(trained):
    model, test_images, test_labels = trained
    bob, alice, carol = make_workers("bob", "alice", "carol")
    images, labels = test_images[:48], test_labels[:48]
    with torch.no_grad():
        plain = model(images).argmax(dim=1)
    assert (plain == labels).float().mean() > 0.9  # the model did learn

    model.fix_precision().share(alice, bob, crypto_provider=carol, protocol="fss")
    # the parameters are shares now: neither holder has the weights
    weight = model.conv1.weight
    held = alice.objects[weight.child.shares["alice"].id_at_location]
    assert held.dtype == torch.int64 and weight.child.shares["bob"].location is bob

    correct = 0
    predictions = []
    with torch.no_grad():
        for start in range(0, 48, 16):
            data = (
                images[start : start + 16]
                .fix_prec()
                .share(alice, bob, crypto_provider=carol, protocol="fss")
            )
            target = (
                labels[start : start + 16]
                .float()
                .fix_prec()
                .share(alice, bob, crypto_provider=carol, protocol="fss")
            )
            output = model(data)
            pred = output.argmax(dim=1)
            assert isinstance(pred.child, sy.AdditiveSharingTensor)
            correct += pred.eq(target.view_as(pred)).sum()
            predictions.append(pred.get().float_precision().long())
    encrypted = torch.cat(predictions)
    assert (encrypted == plain).float().mean() >= 0.99
    assert correct.get().float_precision().item() == (encrypted == labels).sum().item()


def test_encrypted_inference_costs_rounds_and_bytes_plain_does_not(trained):
    model, test_images, _ = trained
    model = SmallDigitNet()
    bob, alice, carol = make_workers("bob", "alice", "carol")
    model.fix_precision().share(bob, alice, crypto_provider=carol)
    data = test_images[:2].fix_precision().share(bob, alice, crypto_provider=carol)
    with traffic.measure() as cost:
        model(data)
    # conv (1) + ReLU (9) + pool (2 x 9) twice, then the linear layer (1)
    assert cost.rounds == 2 * (1 + 9 + 18) + 1
    assert cost.bytes > 2 * test_images[:2].numel() * 8


def test_a_model_on_its_owners_worker_is_shared_from_there():
    bob, alice, carol = make_workers("bob", "alice", "carol")
    torch.manual_seed(0)
    plain = nn.Linear(3, 2)
    x = torch.tensor([[1.0, -2.0, 0.5]])
    model = (
        copy.deepcopy(plain).send(alice).fix_precision().share(bob, alice, crypto_provider=carol)
    )
    assert set(model.weight.child.shares) == {"bob", "alice"}
    data = x.send(bob).fix_precision().share(bob, alice, crypto_provider=carol).get()
    torch.testing.assert_close(
        model(data).get().float_precision(), plain(x).detach(), rtol=0, atol=5e-3
    )


def test_sharing_a_model_before_encoding_it_is_refused_unchanged():
    bob, alice, carol = make_workers("bob", "alice", "carol")
    local = nn.Linear(3, 2)
    before = local.weight.detach().clone()
    with pytest.raises(TypeError, match="fix_precision"):
        local.share(bob, alice, crypto_provider=carol)
    assert torch.equal(local.weight.detach(), before)
