"""Workers: their table of objects, and how pointers' lifetimes keep it tidy.

No `gc.collect()` here: a pointer frees its object as soon as its last reference goes, so
the worker's table is checked right after `del`.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn, optim

import federated as sy
from tests.helpers import held, workers


def test_worker_id_and_repr():
    (bob,) = workers("bob")
    assert bob.id == "bob"
    assert repr(bob) == "<VirtualWorker id:bob #objects:0>"
    keep = torch.zeros(2).send(bob)
    assert repr(bob) == "<VirtualWorker id:bob #objects:1>"
    assert keep.location is bob


@pytest.mark.parametrize("bad", ["", None, 7])
def test_worker_needs_a_non_empty_string_id(bad):
    hook = sy.TorchHook(torch)
    with pytest.raises(ValueError, match="id"):
        sy.VirtualWorker(hook, id=bad)


def test_hook_is_idempotent_and_wants_torch_itself():
    first = sy.TorchHook(torch)
    second = sy.TorchHook(torch)
    assert torch.Tensor.send is second.torch.Tensor.send
    (bob,) = workers("bob")
    assert torch.equal(torch.tensor([1.0]).send(bob).get(), torch.tensor([1.0]))
    assert first.torch is torch
    with pytest.raises(TypeError, match="TorchHook"):
        sy.TorchHook(nn)


def test_objects_is_a_read_only_live_view():
    (bob,) = workers("bob")
    p = torch.tensor([1.0]).send(bob)
    view = bob.objects
    with pytest.raises(TypeError):
        view[1] = torch.tensor([5.0])
    with pytest.raises(TypeError):
        bob.objects[2] = torch.tensor([5.0])
    with pytest.raises(TypeError):
        del bob.objects[1]
    with pytest.raises((AttributeError, TypeError)):
        bob.objects = {}
    assert list(bob.objects) == [1]
    assert torch.equal(bob.objects[1], torch.tensor([1.0]))
    q = torch.tensor([2.0]).send(bob)
    assert sorted(view) == [1, 2]  # the view follows the worker
    p.get()
    assert list(view) == [q.id_at_location]


def test_a_worker_is_copied_as_itself():
    (bob,) = workers("bob")
    assert copy.copy(bob) is bob
    assert copy.deepcopy(bob) is bob


def test_dropping_the_last_pointer_frees_the_remote_object():
    (bob,) = workers("bob")
    keep = torch.tensor([1.0]).send(bob)
    p = torch.tensor([2.0]).send(bob)
    assert sorted(bob.objects) == [1, 2]
    del p
    assert list(bob.objects) == [keep.id_at_location]
    ptrs = [torch.tensor([float(i)]).send(bob) for i in range(5)]
    assert len(bob.objects) == 6
    ptrs.clear()
    assert list(bob.objects) == [1]


def test_temporary_results_are_freed_as_they_go():
    (bob,) = workers("bob")
    x = torch.tensor([1.0, 2.0, 3.0]).send(bob)
    for _ in range(50):
        y = ((x * 2 + 1) - x).sum()
        assert sorted(bob.objects) == [1, y.id_at_location]
    assert torch.equal(y.get(), torch.tensor(9.0))
    assert list(bob.objects) == [1]


def test_dropping_a_chain_frees_both_ends():
    bob, alice = workers("bob", "alice")
    chain = torch.tensor([1.0]).send(bob).send(alice)
    assert len(bob.objects) == 1 and len(alice.objects) == 1
    del chain
    assert len(alice.objects) == 0
    assert len(bob.objects) == 0


def test_a_moved_pointer_frees_on_its_new_worker():
    bob, alice = workers("bob", "alice")
    other = torch.tensor([0.0]).send(alice)
    p = torch.tensor([1.0]).send(bob).move(alice)
    assert len(bob.objects) == 0 and len(alice.objects) == 2
    del p
    assert len(bob.objects) == 0
    assert list(alice.objects) == [other.id_at_location]


def test_fetched_or_freed_pointers_free_nothing_else():
    (bob,) = workers("bob")
    keep = torch.tensor([1.0]).send(bob)
    fetched = torch.tensor([2.0]).send(bob)
    value = fetched.get()
    del fetched
    assert list(bob.objects) == [keep.id_at_location]
    assert torch.equal(value, torch.tensor([2.0]))
    orphan = torch.tensor([3.0]).send(bob)
    bob.clear_objects()
    again = torch.tensor([4.0]).send(bob)  # ids still count up after a clear
    assert again.id_at_location == 4
    del orphan
    assert list(bob.objects) == [4]


def test_clear_objects_empties_the_worker():
    (bob,) = workers("bob")
    p = torch.tensor([1.0]).send(bob)
    torch.tensor([2.0]).send(bob).send(bob)
    bob.clear_objects()
    assert dict(bob.objects) == {}
    with pytest.raises(sy.ObjectNotFoundError, match="bob"):
        p.get()


def test_a_training_loop_leaves_only_the_data_on_the_workers():
    bob, alice = workers("bob", "alice")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
    datasets = [(x[:2].send(bob), y[:2].send(bob)), (x[2:].send(alice), y[2:].send(alice))]
    opt = optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        for data, target in datasets:
            model.send(data.location)
            opt.zero_grad()
            loss = ((model(data) - target) ** 2).sum()
            loss.backward()
            opt.step()
            model.get()
            loss.get()
    del loss, data, target
    (db, tb), (da, ta) = datasets
    assert sorted(bob.objects) == sorted([db.id_at_location, tb.id_at_location])
    assert sorted(alice.objects) == sorted([da.id_at_location, ta.id_at_location])
    assert torch.equal(held(bob, db), x[:2])
    assert torch.equal(held(alice, ta), y[2:])
    assert all(type(p) is nn.Parameter for p in model.parameters())


# ---- undoing the hook ---------------------------------------------------------------------


def _hook_free() -> None:
    """torch as it is without federated: no added methods, no optimizer hooks."""
    from torch.optim.optimizer import _global_optimizer_pre_hooks

    assert not hasattr(torch.tensor(1.0), "send")
    assert not hasattr(torch.tensor(1.0), "owner")
    assert not hasattr(nn.Linear(1, 1), "send")
    assert "location" not in vars(nn.Module)
    assert len(_global_optimizer_pre_hooks) == 0
    opt = optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks


def test_unhook_leaves_torch_without_added_methods_or_optimizer_hooks():
    hook = sy.TorchHook(torch)
    assert hasattr(torch.tensor(1.0), "send") and sy.hook.hooked()
    hook.unhook()
    _hook_free()
    assert not sy.hook.hooked()
    again = sy.TorchHook(torch)  # and it can be hooked again
    (bob,) = [sy.VirtualWorker(again, id="bob")]
    assert torch.equal(torch.tensor([2.0]).send(bob).get(), torch.tensor([2.0]))
    again.unhook()
    _hook_free()


def test_the_hook_as_a_context_manager_unhooks_on_leaving_even_after_an_error():
    with sy.TorchHook(torch) as hook:
        bob = sy.VirtualWorker(hook, id="bob")
        x = torch.tensor([1.0, 2.0]).send(bob)
        assert torch.equal((x * 2).get(), torch.tensor([2.0, 4.0]))
    _hook_free()
    with pytest.raises(ZeroDivisionError), sy.TorchHook(torch):
        1 / 0  # noqa: B018
    _hook_free()


def test_a_pointer_keeps_working_after_unhook():
    hook = sy.TorchHook(torch)
    bob = sy.VirtualWorker(hook, id="bob")
    x = torch.tensor([1.0, 2.0]).send(bob)
    hook.unhook()
    assert torch.equal((x + 1).get(), torch.tensor([2.0, 3.0]))  # pointers are torch's own


# ---- PySyft's names -----------------------------------------------------------------------


def test_pysyft_names_owner_local_worker_and_tensors():
    hook = sy.TorchHook(torch)
    bob = sy.VirtualWorker(hook, id="bob")
    x = torch.tensor([1.0, 2.0])
    p = x.send(bob)
    assert hook.local_worker is sy.local_worker
    assert sy.local_worker.id == "me"
    assert p.owner is sy.local_worker and x.owner is sy.local_worker
    assert p.location is bob
    assert dict(bob._tensors) == dict(bob.objects)
    assert torch.equal(bob._tensors[p.id_at_location], x)


def test_worker_data_is_loaded_with_the_tensors_tags_and_description():
    hook = sy.TorchHook(torch)
    ages = torch.tensor([63.0, 47.0]).tag("#ages", "#boston").describe("ages of patients")
    assert ages.tags == ("#ages", "#boston") and ages.description == "ages of patients"
    scores = torch.tensor([1.0, 0.0, 1.0]).tag("#scores", "#boston")
    bob = sy.VirtualWorker(hook, id="bob", data=(ages, scores))
    assert len(bob.objects) == 2
    (found,) = bob.search(["#ages", "#boston"])
    assert torch.equal(bob.objects[found.id_at_location], ages)
    assert bob.describe(found.id_at_location).description == "ages of patients"
    assert [p.id_at_location for p in bob.search("#boston")] == [1, 2]
    assert [p.id_at_location for p in bob.search(["#boston"], "#scores")] == [2]
    assert bob.search(["#ages", "#scores"]) == []
    del found
    assert len(bob.objects) == 2  # data the owner placed stays


@pytest.mark.parametrize("bad", [[torch.tensor([1.0]), "x"], [3]])
def test_worker_data_must_be_local_tensors(bad):
    hook = sy.TorchHook(torch)
    with pytest.raises(TypeError, match="data"):
        sy.VirtualWorker(hook, id="bob", data=bad)


def test_bad_tags_are_refused_and_change_nothing():
    hook = sy.TorchHook(torch)
    x = torch.tensor([1.0])
    with pytest.raises(TypeError, match="tag"):
        x.tag("#a", 3)
    assert not hasattr(x, "tags")
    bob = sy.VirtualWorker(hook, id="bob")
    with pytest.raises(TypeError, match="tag"):
        bob.load(x, tag=[3])
    assert len(bob.objects) == 0
    with pytest.raises(TypeError, match="tag"):
        bob.search(7)
