"""The parts a `VirtualWorker` is made of, each on its own: store, executor, policy."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import federated as sy
from federated.executor import Executor
from federated.policy import PrivacyPolicy
from federated.store import ObjectStore


@dataclass(frozen=True)
class Handle:
    """A handle of our own: the executor knows handles only by `id_at_location`."""

    id_at_location: int


def _parts() -> tuple[ObjectStore, PrivacyPolicy, Executor]:
    store = ObjectStore("dana")
    policy = PrivacyPolicy(store)
    return store, policy, Executor(store, policy)


def test_the_store_counts_ids_from_one_and_says_whose_object_is_missing():
    store = ObjectStore("dana")
    assert store.register("a") == 1 and store.register("b") == 2
    assert store.lookup(2) == "b" and store.pop(1) == "a"
    assert list(store.view) == [2]
    store.discard(99)  # missing ids are fine here
    with pytest.raises(sy.ObjectNotFoundError, match="dana holds no object 1"):
        store.lookup(1)


def test_the_executor_resolves_any_handle_and_wraps_results_with_the_callers_function():
    store, _, executor = _parts()
    x = store.register(torch.tensor([1.0, 2.0]))
    made = []

    def wrap(obj_id: int, tensor: torch.Tensor) -> tuple[str, int]:
        made.append(obj_id)
        return ("mine", obj_id)

    out = executor.run(torch.add, (Handle(x), Handle(x)), {"alpha": 2}, wrap)
    assert out == ("mine", 2) and made == [2]
    assert torch.equal(store.lookup(2), torch.tensor([3.0, 6.0]))
    parts = executor.run(torch.Tensor.chunk, (Handle(x), 2), None, wrap)
    assert parts == (("mine", 3), ("mine", 4))
    assert executor.run(torch.Tensor.size, (Handle(x),), None, wrap) == torch.Size([2])


def test_an_in_place_result_keeps_its_handle_and_is_refreshed_only_if_reshaped():
    store, _, executor = _parts()
    x = Handle(store.register(torch.tensor([1.0, 2.0])))
    refreshed = []

    def refresh(handle: Handle, real: torch.Tensor) -> Handle:
        refreshed.append(tuple(real.shape))
        return handle

    assert executor.run(torch.Tensor.add_, (x, 1), None, lambda i, t: i, refresh) is x
    assert refreshed == []
    assert executor.run(torch.Tensor.unsqueeze_, (x, 0), None, lambda i, t: i, refresh) is x
    assert refreshed == [(1, 2)] and len(store) == 1


class Refusing(PrivacyPolicy):
    active = True  # hear every call, not only those touching private data

    def before_call(self, func, inputs, written):
        self.seen = (inputs, written)
        raise PermissionError("no")


def test_a_policy_that_refuses_stops_the_call_before_anything_runs():
    store = ObjectStore("dana")
    policy = Refusing(store)
    executor = Executor(store, policy)
    x = Handle(store.register(torch.tensor([1.0])))
    y = Handle(store.register(torch.tensor([5.0])))
    with pytest.raises(PermissionError):
        executor.run(torch.Tensor.add_, (x, y), None, lambda i, t: i)
    assert policy.seen == ([1, 2], [1])
    assert torch.equal(store.lookup(1), torch.tensor([1.0])) and len(store) == 2


def test_the_policy_hears_inputs_outputs_and_what_was_written():
    store = ObjectStore("dana")
    calls = []

    class Listening(PrivacyPolicy):
        active = True  # hear every call, not only those touching private data

        def after_call(self, func, inputs, outputs, written):
            calls.append((func.__name__, list(inputs), list(outputs), list(written)))

    executor = Executor(store, Listening(store))
    x = Handle(store.register(torch.tensor([1.0, 2.0])))
    y = Handle(store.register(torch.tensor([3.0, 4.0])))
    executor.run(torch.mul, (x, y), None, lambda i, t: i)
    executor.run(torch.Tensor.mul_, (x, y), None, lambda i, t: i)
    executor.run(torch.add, (x, y), {"out": y}, lambda i, t: i)
    executor.run(torch.nn.functional.relu, (x,), {"inplace": True}, lambda i, t: i)
    assert calls == [
        ("mul", [1, 2], [3], []),
        ("mul_", [1, 2], [1], [1]),
        ("add", [1, 2], [2], [2]),
        ("relu", [1], [1], [1]),
    ]


def test_an_unknown_handle_fails_before_anything_runs():
    store, _, executor = _parts()
    x = Handle(store.register(torch.tensor([1.0])))
    with pytest.raises(sy.ObjectNotFoundError):
        executor.run(torch.Tensor.add_, (x, Handle(7)), None, lambda i, t: i)
    assert torch.equal(store.lookup(1), torch.tensor([1.0]))


def test_release_lets_private_data_leave_and_only_through_a_named_exit():
    bob = sy.VirtualWorker(None, id="bob")
    p = bob.load(torch.tensor([1.0, 2.0]), private=True)
    with pytest.raises(sy.PrivateDataError):
        bob.fetch(p.id_at_location)
    with pytest.raises(ValueError, match="exit"):
        bob.policy.release(p.id_at_location, "window")
    bob.policy.release(p.id_at_location, "dp")
    assert torch.equal(bob.fetch(p.id_at_location), torch.tensor([1.0, 2.0]))


def test_charge_spends_the_budget_and_refuses_past_it_changing_nothing():
    bob = sy.VirtualWorker(None, id="bob")
    p = bob.load(torch.tensor([1.0, 2.0]), private=True, epsilon=1.0)
    q = bob.load(torch.tensor([3.0]), private=True)
    bob.policy.charge([p.id_at_location], 0.75)
    with pytest.raises(sy.BudgetExceededError, match="0.25 left"):
        bob.policy.charge([p.id_at_location], 0.5)
    with pytest.raises(sy.BudgetExceededError, match="no privacy budget"):
        bob.policy.charge([p.id_at_location, q.id_at_location], 0.1)
    assert bob.policy.remaining(p.id_at_location) == pytest.approx(0.25)  # all or none
    bob.policy.charge([p.id_at_location], 0.25)
    with pytest.raises(ValueError, match="positive"):
        bob.policy.charge([p.id_at_location], 0.0)
    with pytest.raises(ValueError, match="epsilon"):
        bob.load(torch.tensor([1.0]), epsilon=-1.0)
    assert len(bob.objects) == 2


# ---- the executor's two paths give the same answers ---------------------------------------

# (name, handles a and b -> `run`'s func, args and kwargs): the calls a training step and
# the loader make, with and without keywords, in place, with tuples and plain values
CALLS = [
    ("add", lambda a, b: (torch.add, (a, b), None)),
    ("add_ alpha", lambda a, b: (torch.Tensor.add_, (a, b), {"alpha": -0.5})),
    ("relu inplace=False", lambda a, b: (torch.nn.functional.relu, (a,), {"inplace": False})),
    ("max with dim", lambda a, b: (torch.max, (a,), {"dim": 0})),
    ("index with a handle", lambda a, b: (torch.Tensor.__getitem__, (a, b), None)),
    ("a plain value", lambda a, b: (torch.Tensor.dim, (a,), None)),
    ("cat of a list", lambda a, b: (torch.cat, ([a, a],), None)),
    ("unsqueeze_ reshapes", lambda a, b: (torch.Tensor.unsqueeze_, (a, 0), None)),
]


def _run_both_ways(make, fill: bool, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(PrivacyPolicy, "fill_fresh_memory", fill)
    store, _, executor = _parts()
    a = Handle(store.register(torch.tensor([[3.0, -1.0], [0.5, 2.0]])))
    b = Handle(store.register(torch.tensor([1, 0])))
    refreshed: list[int] = []

    def refresh(handle, value):
        refreshed.append(handle.id_at_location)
        return handle

    result = executor.run(*make(a, b), lambda i, r: Handle(i), refresh)
    held = {i: (t.shape, t.tolist()) for i, t in store.items()}
    return result, held, refreshed


@pytest.mark.parametrize("make", [c[1] for c in CALLS], ids=[c[0] for c in CALLS])
def test_the_unwatched_path_answers_as_the_general_one(make, monkeypatch):
    """With nothing to watch a call skips the policy's bookkeeping (`_unwatched`); with
    memory to fill it takes the general path. Same results, same handles, same store."""
    fast = _run_both_ways(make, False, monkeypatch)
    general = _run_both_ways(make, True, monkeypatch)
    assert fast == general
    result, held, _ = fast
    if isinstance(result, Handle):
        assert result.id_at_location in held


def test_an_in_place_call_returns_its_handle_and_adds_no_object_on_the_unwatched_path(
    monkeypatch,
):
    monkeypatch.setattr(PrivacyPolicy, "fill_fresh_memory", False)
    store, policy, executor = _parts()
    a = Handle(store.register(torch.tensor([1.0, 2.0])))
    assert not policy.active
    answered: list[object] = []
    unwatched = Executor._unwatched

    def spy(self, *args):
        answered.append(unwatched(self, *args))
        return answered[-1]

    monkeypatch.setattr(Executor, "_unwatched", spy)
    out = executor.run(torch.Tensor.mul_, (a, 3.0), None, lambda i, r: Handle(i))
    assert answered == [a]  # the unwatched path answered; `run` added nothing after it
    assert out is a
    assert list(store) == [a.id_at_location]
    assert store[a.id_at_location].tolist() == [3.0, 6.0]


def test_a_worker_holding_private_data_never_takes_the_unwatched_path(monkeypatch):
    """The attack: compute on private data hoping the fast path forgets to label the
    result. Loading private data switches the fast path off for the whole process."""
    monkeypatch.setattr(PrivacyPolicy, "fill_fresh_memory", False)
    (dana,) = [sy.VirtualWorker(sy.TorchHook(torch), id="dana")]
    secret = dana.load(torch.tensor([4.0, 5.0]), private=True)
    taken: list[bool] = []
    unwatched = Executor._unwatched

    def spy(self, *args):
        taken.append(True)
        return unwatched(self, *args)

    monkeypatch.setattr(Executor, "_unwatched", spy)
    copy = secret + 0
    assert not taken
    with pytest.raises(sy.PrivateDataError):
        copy.get()
