"""Differential privacy: noisy counts and sums, DP-SGD on a worker, DP-FedAvg, budgets.

Every test checks numbers: epsilons against Opacus's accountant, budgets before and
after, noise scales against their formulas, and the crafted-model attack's
reconstruction error with and without DP.
"""

from __future__ import annotations

import math

import pytest
import torch
from opacus.accountants import RDPAccountant
from torch import nn

import federated as sy
from federated import dp
from federated.errors import BudgetExceededError
from tests.helpers import assert_same_state, snapshot


@pytest.fixture
def bob() -> sy.VirtualWorker:
    hook = sy.TorchHook(torch)
    return sy.VirtualWorker(hook, id="bob")


def records(n: int = 40, features: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, features, generator=gen)
    y = (x.sum(1) > features / 2).long()
    return x, y


# ---- the accountant ------------------------------------------------------------------------


def test_epsilon_is_what_opacus_accountant_says():
    accountant = RDPAccountant()
    for _ in range(30):
        accountant.step(noise_multiplier=1.3, sample_rate=0.05)
    assert dp.epsilon(1.3, sample_rate=0.05, steps=30, delta=1e-5) == pytest.approx(
        accountant.get_epsilon(1e-5), rel=1e-12
    )
    # more noise costs less; more steps cost more
    assert (
        dp.epsilon(2.0, sample_rate=0.05, steps=30, delta=1e-5)
        < dp.epsilon(1.3, sample_rate=0.05, steps=30, delta=1e-5)
        < dp.epsilon(1.3, sample_rate=0.05, steps=60, delta=1e-5)
    )
    with pytest.raises(ValueError, match="infinite"):
        dp.epsilon(0.0, sample_rate=0.05, steps=30, delta=1e-5)


# ---- noisy counts and sums ----------------------------------------------------------------


def test_noisy_count_is_laplace_around_the_true_count_and_spends_exactly(bob):
    ages = torch.tensor([23.0, 67, 45, 71, 80, 12, 65, 30])  # 4 are above 60
    data = bob.load(ages, private=True, epsilon=5000.0)
    dp.reproducible(bob, 0)
    draws = torch.tensor(
        [dp.noisy_count(data, epsilon=2.0, above=60).get().item() for _ in range(2000)],
        dtype=torch.float64,
    )
    # Laplace(0, b) with b = 1/epsilon: mean 0, mean absolute deviation b, variance 2 b^2
    assert draws.mean().item() == pytest.approx(4.0, abs=0.05)
    assert (draws - 4).abs().mean().item() == pytest.approx(0.5, rel=0.06)
    assert draws.var().item() == pytest.approx(2 * 0.5**2, rel=0.12)
    assert bob.policy.remaining(data.id_at_location) == pytest.approx(5000.0 - 2000 * 2.0)
    # without `above`, nonzero records are counted
    flags = bob.load(torch.tensor([1.0, 0, 1, 1, 0]), private=True, epsilon=1e6)
    assert dp.noisy_count(flags, epsilon=1e5).get().item() == pytest.approx(3.0, abs=1e-3)


def test_noisy_sum_clamps_each_record_to_its_bounds(bob):
    values = bob.load(torch.tensor([-50.0, 3, 4, 500]), private=True, epsilon=1e6)
    total = dp.noisy_sum(values, epsilon=1e5, lower=0.0, upper=10.0).get().item()
    assert total == pytest.approx(0 + 3 + 4 + 10, abs=1e-2)


def test_same_seed_same_noise_and_fresh_workers_differ(bob):
    data = bob.load(torch.ones(10), private=True, epsilon=10.0)
    dp.reproducible(bob, 7)
    first = dp.noisy_count(data, epsilon=1.0).get().item()
    dp.reproducible(bob, 7)
    assert dp.noisy_count(data, epsilon=1.0).get().item() == first
    dp._generators.pop(bob)  # back to a secret seed from the operating system
    others = {dp.noisy_count(data, epsilon=1.0).get().item() for _ in range(3)}
    assert len(others) == 3


def test_spent_budget_refuses_and_changes_nothing(bob):
    ages = torch.tensor([23.0, 67, 45, 71])
    data = bob.load(ages, private=True, epsilon=1.0)
    dp.noisy_count(data, epsilon=0.6, above=60).get()
    before = snapshot(bob)
    with pytest.raises(BudgetExceededError, match=r"0\.4 left.*0\.6"):
        dp.noisy_count(data, epsilon=0.6, above=60)
    assert_same_state(before, bob)
    assert bob.policy.remaining(data.id_at_location) == pytest.approx(0.4)
    assert torch.equal(bob.store.lookup(data.id_at_location), ages)
    dp.noisy_count(data, epsilon=0.4, above=60).get()  # what is left can still be spent
    assert bob.policy.remaining(data.id_at_location) == pytest.approx(0.0)


def test_queries_need_the_loaded_dataset_a_budget_and_sane_arguments(bob):
    data = bob.load(torch.tensor([1.0, 2, 3]), private=True, epsilon=1.0)
    no_budget = bob.load(torch.tensor([1.0, 2, 3]), private=True)
    table = bob.load(torch.ones(2, 2), private=True, epsilon=1.0)
    scaled = data * 1000
    before = snapshot(bob)
    with pytest.raises(ValueError, match="as its owner loaded it"):
        dp.noisy_count(scaled, epsilon=0.1)  # one record would count 1000 times
    with pytest.raises(BudgetExceededError, match="no privacy budget"):
        dp.noisy_count(no_budget, epsilon=0.1)
    for bad in (0, -1.0, math.inf, math.nan, True):
        with pytest.raises(ValueError, match="epsilon"):
            dp.noisy_count(data, epsilon=bad)
    with pytest.raises(ValueError, match="lower < upper"):
        dp.noisy_sum(data, epsilon=0.1, lower=5.0, upper=1.0)
    with pytest.raises(ValueError, match="1-D"):
        dp.noisy_count(table, epsilon=0.1)
    with pytest.raises(TypeError, match="pointer"):
        dp.noisy_count(torch.ones(3), epsilon=0.1)
    assert_same_state(before, bob)
    assert bob.policy.remaining(data.id_at_location) == 1.0


# ---- DP-SGD ---------------------------------------------------------------------------------


def small_model() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))


def test_dp_train_reports_the_accountants_epsilon_and_charges_both_datasets(bob):
    x, y = records(40)
    data = bob.load(x, private=True, epsilon=50.0)
    target = bob.load(y, private=True, epsilon=60.0)
    dp.reproducible(bob, 1)
    model, spent = dp.train(
        small_model(),
        data,
        target,
        epochs=3,
        batch_size=10,
        lr=0.5,
        noise_multiplier=1.1,
        max_grad_norm=1.0,
        delta=1e-3,
    )
    accountant = RDPAccountant()
    for _ in range(3 * 4):  # 3 epochs of 40/10 = 4 Poisson batches
        accountant.step(noise_multiplier=1.1, sample_rate=0.25)
    assert spent == pytest.approx(accountant.get_epsilon(1e-3), rel=1e-12)
    assert bob.policy.remaining(data.id_at_location) == pytest.approx(50.0 - spent)
    assert bob.policy.remaining(target.id_at_location) == pytest.approx(60.0 - spent)
    assert model[0].weight.location is bob
    trained = model.get()  # released through the "dp" exit
    assert isinstance(trained[0].weight, nn.Parameter)
    assert not torch.equal(trained[0].weight, small_model()[0].weight)  # it did train
    assert trained[0].weight.grad is None


def test_dp_exit_is_open_when_the_owner_closed_the_model_exit(bob):
    x, y = records(20)
    data = bob.load(x, private=True, epsilon=20.0, model_exit=False)
    target = bob.load(y, private=True, epsilon=20.0, model_exit=False)
    model, spent = dp.train(
        small_model(),
        data,
        target,
        epochs=1,
        batch_size=10,
        lr=0.5,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        delta=1e-3,
    )
    assert isinstance(model.get()[0].weight, nn.Parameter)
    assert bob.policy.remaining(data.id_at_location) == pytest.approx(20.0 - spent)


def test_dp_train_over_budget_is_refused_before_it_runs(bob):
    x, y = records(40)
    data = bob.load(x, private=True, epsilon=1.0)
    target = bob.load(y, private=True, epsilon=1.0)
    model = small_model()
    weights = [p.detach().clone() for p in model.parameters()]
    before = snapshot(bob)
    planned = dp.epsilon(0.8, sample_rate=0.25, steps=20, delta=1e-3)
    assert planned > 1.0
    with pytest.raises(BudgetExceededError, match="left"):
        dp.train(
            model,
            data,
            target,
            epochs=5,
            batch_size=10,
            lr=0.5,
            noise_multiplier=0.8,
            max_grad_norm=1.0,
            delta=1e-3,
        )
    assert_same_state(before, bob)
    assert sy.module.location(model) is None  # not even sent
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights))
    assert bob.policy.remaining(data.id_at_location) == 1.0
    assert bob.policy.remaining(target.id_at_location) == 1.0


def test_dp_train_refused_when_one_of_the_two_budgets_is_short(bob):
    x, y = records(40)
    data = bob.load(x, private=True, epsilon=100.0)
    target = bob.load(y, private=True, epsilon=0.1)
    with pytest.raises(BudgetExceededError):
        dp.train(
            small_model(),
            data,
            target,
            epochs=1,
            batch_size=10,
            lr=0.5,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            delta=1e-3,
        )
    assert bob.policy.remaining(data.id_at_location) == 100.0  # all or none


class Mixer(nn.Module):
    """A model that lets one example's value into every other example's output."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x + x.mean(0))


@pytest.mark.parametrize(
    "model, error, match",
    [
        (Mixer(), TypeError, "nn.Sequential"),
        (nn.Sequential(nn.Linear(5, 2), nn.BatchNorm1d(2)), TypeError, "BatchNorm1d"),
        (nn.Sequential(nn.Flatten(0), nn.Linear(10 * 5, 2)), ValueError, "batch dimension"),
        (nn.Sequential(Mixer()), TypeError, "Mixer"),
    ],
)
def test_dp_train_refuses_models_that_could_mix_examples(bob, model, error, match):
    x, y = records(10)
    data = bob.load(x, private=True, epsilon=10.0)
    target = bob.load(y, private=True, epsilon=10.0)
    with pytest.raises(error, match=match):
        dp.train(
            model,
            data,
            target,
            epochs=1,
            batch_size=5,
            lr=0.1,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            delta=1e-3,
        )
    assert bob.policy.remaining(data.id_at_location) == 10.0


def test_dp_train_refuses_hooks_bad_losses_large_delta_and_wrong_shapes(bob):
    x, y = records(10)
    data = bob.load(x, private=True, epsilon=10.0)
    target = bob.load(y, private=True, epsilon=10.0)
    hooked = small_model()
    hooked[0].register_forward_hook(lambda m, i, o: o + o.mean(0))
    args = dict(epochs=1, batch_size=5, lr=0.1, noise_multiplier=1.0, max_grad_norm=1.0)
    with pytest.raises(ValueError, match="hooks"):
        dp.train(hooked, data, target, delta=1e-3, **args)
    with pytest.raises(ValueError, match="loss"):
        dp.train(small_model(), data, target, delta=1e-3, loss="anything", **args)
    with pytest.raises(ValueError, match="delta"):
        dp.train(small_model(), data, target, delta=0.2, **args)
    with pytest.raises(RuntimeError):  # 7 inputs for data with 5 features
        dp.train(nn.Sequential(nn.Linear(7, 2)), data, target, delta=1e-3, **args)
    assert bob.policy.remaining(data.id_at_location) == 10.0


def test_dp_train_refuses_a_model_already_on_the_worker(bob):
    """A model there could be private data in disguise (its weight set to the data) or a
    model trained without DP; releasing it through the dp exit would carry that out."""
    x, y = records(10)
    data = bob.load(x, private=True, epsilon=10.0)
    target = bob.load(y, private=True, epsilon=10.0)
    disguised = nn.Sequential(nn.Linear(10, 5)).send(bob)
    before = snapshot(bob)
    with pytest.raises(ValueError, match="model that is here"):
        dp.train(
            disguised,
            data,
            target,
            epochs=1,
            batch_size=5,
            lr=0.1,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            delta=1e-3,
        )
    assert_same_state(before, bob)
    assert bob.policy.remaining(data.id_at_location) == 10.0
    replaced = small_model()
    replaced[0].forward = lambda x: x + x.mean(0)
    with pytest.raises(ValueError, match="forward"):
        dp.train(
            replaced,
            data,
            target,
            epochs=1,
            batch_size=5,
            lr=0.1,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            delta=1e-3,
        )


def test_a_failure_during_training_says_nothing_about_the_data(bob):
    x, y = records(20)
    data = bob.load(x, private=True, epsilon=50.0)
    target = bob.load(y * 7, private=True, epsilon=50.0)  # labels 0 and 7, two outputs
    with pytest.raises(RuntimeError) as caught:
        dp.train(
            small_model(),
            data,
            target,
            epochs=1,
            batch_size=10,
            lr=0.5,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            delta=1e-3,
        )
    assert "Target" not in str(caught.value) and "bounds" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    planned = dp.epsilon(1.0, sample_rate=0.5, steps=2, delta=1e-3)
    assert bob.policy.remaining(data.id_at_location) == pytest.approx(50.0 - planned)


def test_non_finite_records_count_as_zero(bob):
    values = bob.load(torch.tensor([1.0, math.nan, math.inf, 2.0]), private=True, epsilon=1e6)
    total = dp.noisy_sum(values, epsilon=1e5, lower=-5.0, upper=5.0).get().item()
    assert total == pytest.approx(3.0, abs=1e-2)
    assert dp.noisy_count(values, epsilon=1e5).get().item() == pytest.approx(2.0, abs=1e-2)


# ---- the crafted-model attack (issue 12) ------------------------------------------------------


def crafted() -> nn.Sequential:
    """One linear layer with a bias: for one example x, the weight's gradient is the
    bias's gradient times x, so dividing the two updates gives x back."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 1))


def reconstruct(before: nn.Sequential, after: nn.Sequential) -> torch.Tensor:
    dw = before[0].weight.detach() - after[0].weight.detach()
    db = before[0].bias.detach() - after[0].bias.detach()
    return (dw / db).reshape(-1)


def test_crafted_model_reads_a_record_exactly_without_dp(bob):
    x = torch.tensor([[0.3, 0.9, 0.1, 0.5, 0.7]])
    data = bob.load(x, private=True)
    target = bob.load(torch.tensor([[1.0]]), private=True)
    start = crafted()
    model = crafted().send(bob)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    loss = ((model(data) - target) ** 2).sum()
    loss.backward()
    opt.step()
    leaked = reconstruct(start, model.get())  # a trained model is allowed to leave
    torch.testing.assert_close(leaked, x[0], rtol=1e-4, atol=1e-5)


def test_crafted_model_under_dp_sgd_gives_noise_and_runs_out_of_budget(bob):
    x = torch.tensor([[0.3, 0.9, 0.1, 0.5, 0.7]] * 1 + [[0.2, 0.2, 0.2, 0.2, 0.2]] * 9)
    data = bob.load(x, private=True, epsilon=4.0)
    target = bob.load(torch.ones(10, 1), private=True, epsilon=4.0)
    dp.reproducible(bob, 5)
    errors = []
    for _ in range(2):
        model, spent = dp.train(
            crafted(),
            data,
            target,
            epochs=1,
            batch_size=1,
            lr=0.1,
            noise_multiplier=1.5,
            max_grad_norm=1.0,
            delta=1e-3,
            loss="mse",
        )
        leaked = reconstruct(crafted(), model.get())
        errors.append(((leaked - x[0]).norm() / x[0].norm()).item())
    assert spent == pytest.approx(dp.epsilon(1.5, sample_rate=0.1, steps=10, delta=1e-3))
    assert min(errors) > 0.5  # relative error: the record is not read back
    with pytest.raises(BudgetExceededError):  # and asking again and again runs dry
        for _ in range(10):
            dp.train(
                crafted(),
                data,
                target,
                epochs=1,
                batch_size=1,
                lr=0.1,
                noise_multiplier=1.5,
                max_grad_norm=1.0,
                delta=1e-3,
                loss="mse",
            )
    assert bob.policy.remaining(data.id_at_location) < spent


# ---- DP-FedAvg --------------------------------------------------------------------------------


def clipped(start: nn.Module, model: nn.Module, bound: float) -> nn.Module:
    """By hand: start + the model's update scaled to norm at most `bound`."""
    pairs = list(zip(start.parameters(), model.parameters()))
    norm = math.sqrt(sum(((p - s) ** 2).sum().item() for s, p in pairs))
    scale = min(1.0, bound / norm)
    out = sy.module.copy_module(start)
    with torch.no_grad():
        for o, (s, p) in zip(out.parameters(), pairs):
            o.copy_(s + (p - s) * scale)
    return out


def clients(n: int = 3) -> tuple[nn.Module, list[nn.Module]]:
    torch.manual_seed(4)
    start = nn.Sequential(nn.Linear(6, 3), nn.Tanh(), nn.Linear(3, 2))
    models = []
    for k in range(n):
        m = sy.module.copy_module(start)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * (0.05 if k == 0 else 2.0))  # one small, others large
        models.append(m)
    return start, models


def test_dp_fedavg_without_noise_is_the_plain_average_of_clipped_updates():
    start, models = clients()
    result = sy.federated_avg(models, start=start, max_update_norm=0.5, noise_multiplier=0.0)
    expected = sy.federated_avg([clipped(start, m, 0.5) for m in models])
    for r, e in zip(result.parameters(), expected.parameters()):
        torch.testing.assert_close(r, e, rtol=0, atol=1e-6)
    # the small update was left as it is, the large ones scaled to norm 0.5
    small = clipped(start, models[0], 0.5)
    assert all(torch.equal(a, b) for a, b in zip(small.parameters(), models[0].parameters()))


def test_dp_fedavg_noise_has_the_stated_scale():
    torch.manual_seed(0)
    start = nn.Sequential(nn.Linear(100, 100))
    models = [sy.module.copy_module(start) for _ in range(4)]  # every update is zero
    result = sy.federated_avg(models, start=start, max_update_norm=0.7, noise_multiplier=1.5)
    noise = torch.cat(
        [(r - s).reshape(-1) for r, s in zip(result.parameters(), start.parameters())]
    )
    assert noise.numel() == 10100
    # standard deviation noise_multiplier * C / n per number
    assert noise.std().item() == pytest.approx(1.5 * 0.7 / 4, rel=0.03)
    assert abs(noise.mean().item()) < 4 * 1.5 * 0.7 / 4 / math.sqrt(10100)


def test_dp_fedavg_bounds_one_clients_influence():
    start, models = clients(3)
    huge = sy.module.copy_module(start)
    with torch.no_grad():
        for p in huge.parameters():
            p.add_(1e6)
    base = sy.federated_avg(models, start=start, max_update_norm=0.5)
    other = sy.federated_avg(models[:2] + [huge], start=start, max_update_norm=0.5)
    moved = math.sqrt(
        sum(((a - b) ** 2).sum().item() for a, b in zip(base.parameters(), other.parameters()))
    )
    assert moved <= 2 * 0.5 / 3 + 1e-6  # two clipped updates differ by at most 2C, over n


def test_dp_fedavg_runs_on_the_aggregator():
    hook = sy.TorchHook(torch)
    aggregator = sy.VirtualWorker(hook, id="aggregator")
    start, models = clients()
    expected = sy.federated_avg(models, start=start, max_update_norm=0.5)
    sent = [sy.module.copy_module(m).send(aggregator) for m in models]
    result = sy.federated_avg(
        sent, start=sy.module.copy_module(start).send(aggregator), max_update_norm=0.5
    )
    assert result[0].weight.location is aggregator
    for r, e in zip(result.get().parameters(), expected.parameters()):
        torch.testing.assert_close(r, e, rtol=0, atol=1e-6)
    with pytest.raises(sy.WorkerMismatchError, match="start"):
        sy.federated_avg(sent, start=start, max_update_norm=0.5)


def test_dp_fedavg_arguments():
    start, models = clients()
    with pytest.raises(ValueError, match="start"):
        sy.federated_avg(models, max_update_norm=0.5)
    with pytest.raises(ValueError, match="weights"):
        sy.federated_avg(models, [1, 2, 3], start=start, max_update_norm=0.5)
    with pytest.raises(ValueError, match="max_update_norm > 0"):
        sy.federated_avg(models, start=start, max_update_norm=-1.0)
