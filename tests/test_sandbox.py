"""`sy.create_sandbox(globals())`: six workers holding scikit-learn's bundled datasets,
tagged, and a grid that finds them."""

from __future__ import annotations

import pytest
import torch
from sklearn import datasets

import federated as sy
from federated.sandbox import DATASETS, WORKERS


@pytest.fixture(scope="module")
def sandbox():
    names: dict = {}
    sy.create_sandbox(names, verbose=False)
    return names


def test_the_sandbox_puts_workers_grid_and_torch_names_into_globals(sandbox):
    for name in WORKERS:
        assert isinstance(sandbox[name], sy.VirtualWorker) and sandbox[name].id == name
    assert [w.id for w in sandbox["workers"]] == list(WORKERS)
    assert isinstance(sandbox["grid"], sy.PrivateGridNetwork)
    assert sandbox["th"] is torch and sandbox["hook"].torch is torch


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_is_split_among_all_workers_without_loss(sandbox, name):
    bunch = getattr(datasets, f"load_{name}")()
    data = sandbox["grid"].search(f"#{name}", "#data")
    target = sandbox["grid"].search(f"#{name}", "#target")
    assert list(data) == list(WORKERS) == list(target)
    parts = [ptrs[0].copy().get() for ptrs in data.values()]
    labels = [ptrs[0].copy().get() for ptrs in target.values()]
    assert all(len(p) == len(t) for p, t in zip(parts, labels))
    whole = torch.cat(parts)
    assert whole.shape == bunch.data.shape
    # the same rows, in a shuffled order: compare them sorted
    want = torch.tensor(bunch.data, dtype=torch.float32)
    assert torch.equal(whole.sum(1).sort().values, want.sum(1).sort().values)
    assert torch.cat(labels).double().sum() == pytest.approx(float(bunch.target.sum()))


def test_grid_search_returns_pointers_per_worker(sandbox):
    found = sandbox["grid"].search("#iris", "#target")
    assert set(found) == set(WORKERS)
    for worker_id, pointers in found.items():
        assert len(pointers) == 1
        pointer = pointers[0]
        assert isinstance(pointer, sy.PointerTensor)
        assert pointer.location is sandbox[worker_id] and pointer.dtype == torch.int64
    assert sandbox["grid"].search("#iris", "#no-such-tag") == {}
    assert sandbox["bob"].search(["#wine", "#data"])[0].shape == (30, 13)


def test_each_worker_s_share_looks_like_the_whole(sandbox):
    for pointers in sandbox["grid"].search("#iris", "#target").values():
        assert set(pointers[0].copy().get().tolist()) == {0, 1, 2}


def test_the_data_is_described(sandbox):
    bob = sandbox["bob"]
    (pointer,) = bob.search("#digits", "#data")
    info = bob.describe(pointer.id_at_location)
    assert "#digits" in info.tags and "digits" in info.description.lower()
    assert not info.private


def test_a_private_sandbox_keeps_its_data():
    names: dict = {}
    sy.create_sandbox(names, verbose=False, private=True)
    (pointer,) = names["alice"].search("#iris", "#data")
    with pytest.raises(sy.PrivateDataError):
        pointer.copy().get()


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="globals"):
        sy.create_sandbox([])
    with pytest.raises(TypeError, match="workers"):
        sy.PrivateGridNetwork("bob")
