"""BaseDataset, federate and FederatedDataLoader: batches stay with their owners."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

import federated as sy


@pytest.fixture
def workers():
    hook = sy.TorchHook(torch)
    return [sy.VirtualWorker(hook, id=name) for name in ("bob", "alice", "carol")]


def dataset(n: int = 50) -> sy.BaseDataset:
    data = torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, 3)
    return sy.BaseDataset(data, torch.arange(n))


def test_federate_splits_consecutively_and_sends_each_part(workers):
    fed = dataset(50).federate(workers)
    assert fed.workers == ["bob", "alice", "carol"]
    assert [len(fed[w]) for w in fed.workers] == [17, 17, 16]
    assert len(fed) == 50
    bob_part = fed["bob"]
    assert bob_part.location is workers[0]
    assert torch.equal(bob_part.targets.copy().get(), torch.arange(17))
    assert len(workers[0].objects) == 2  # data and targets, nothing else


def test_loader_covers_every_sample_once_per_epoch_and_never_mixes_workers(workers):
    fed = dataset(50).federate(workers)
    loader = sy.FederatedDataLoader(fed, batch_size=4, shuffle=True, seed=3)
    assert len(loader) == 5 + 5 + 4
    for _ in range(2):  # two epochs, each complete
        seen, per_worker = [], Counter()
        for data, target in loader:
            assert data.location is target.location
            per_worker[data.location.id] += len(target)
            values, labels = data.get(), target.get()
            assert torch.equal(values[:, 0].long(), labels)  # rows stay with their labels
            seen.extend(labels.tolist())
        assert sorted(seen) == list(range(50))
        assert per_worker == {"bob": 17, "alice": 17, "carol": 16}


def test_shuffle_is_deterministic_for_a_seed_and_differs_between_epochs(workers):
    def epoch_orders(seed: int) -> list[list[int]]:
        fed = dataset(20).federate(workers[:1])
        loader = sy.FederatedDataLoader(fed, batch_size=20, shuffle=True, seed=seed)
        return [next(iter(loader))[1].get().tolist() for _ in range(2)]

    first, again = epoch_orders(0), epoch_orders(0)
    assert first == again
    assert first[0] != first[1]


def test_unshuffled_loader_keeps_order_and_drop_last(workers):
    fed = dataset(10).federate(workers[:1])
    loader = sy.FederatedDataLoader(fed, batch_size=4, drop_last=True)
    assert [t.get().tolist() for _, t in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(loader) == 2


def test_bad_input_is_refused(workers):
    with pytest.raises(ValueError, match="targets"):
        sy.BaseDataset(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="distinct"):
        dataset().federate([workers[0], workers[0]])
    with pytest.raises(ValueError, match="at least one"):
        dataset().federate([])
    with pytest.raises(ValueError, match="batch_size"):
        sy.FederatedDataLoader(dataset().federate(workers), batch_size=0)
    remote = dataset(6).send(workers[0])
    before = len(workers[0].objects)
    with pytest.raises(ValueError, match="already on a worker"):
        remote.federate(workers)
    assert len(workers[0].objects) == before and len(workers[1].objects) == 0


def test_a_federated_dataset_of_local_data_says_to_send_it_first():
    local = dataset(4)
    with pytest.raises(ValueError, match="send each one first"):
        sy.FederatedDataset([local])
    assert local.location is None  # nothing was sent on the learner's behalf
