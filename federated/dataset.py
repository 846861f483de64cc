"""Datasets split among workers, and a loader whose batches stay with their owners.

`BaseDataset(data, targets)` is an ordinary dataset. `dataset.federate((bob, alice))`
splits it into consecutive, nearly equal parts and sends part i to worker i; shuffle (or
sort, for a skewed split) before federating to choose who gets what.
`FederatedDataLoader` then yields batches as pointers, each batch from one worker only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset

from federated.language import tr

if TYPE_CHECKING:
    from federated.contract import Worker


class BaseDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Samples `data[i]` with labels `targets[i]`; both may be pointers on one worker."""

    def __init__(self, data: torch.Tensor, targets: torch.Tensor) -> None:
        if len(data) != len(targets):
            raise ValueError(
                tr(
                    "{data_count} samples but {targets_count} targets",
                    data_count=len(data),
                    targets_count=len(targets),
                )
            )
        if getattr(data, "location", None) is not getattr(targets, "location", None):
            raise ValueError(
                tr("data and targets must be in one place (both here or both on one worker)")
            )
        self.data, self.targets = data, targets

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data[index], self.targets[index]

    @property
    def location(self) -> Worker | None:
        """The worker holding this dataset, or None if it is here."""
        return getattr(self.data, "location", None)

    def send(self, worker: Worker) -> BaseDataset:
        """A copy of this dataset on `worker`."""
        return BaseDataset(worker.receive(self.data), worker.receive(self.targets))

    def federate(self, workers: Sequence[Worker]) -> FederatedDataset:
        """Split into len(workers) consecutive parts; part i goes to workers[i]."""
        if len(workers) == 0:
            raise ValueError(tr("federate needs at least one worker"))
        if len({w.id for w in workers}) != len(workers):
            raise ValueError(tr("federate needs distinct workers"))
        if self.location is not None:
            raise ValueError(tr("this dataset is already on a worker; federate a local one"))
        if len(self) < len(workers):
            raise ValueError(
                tr(
                    "{self_count} samples cannot be split among {workers_count} workers: each "
                    "worker needs at least one. Use fewer workers or more data.",
                    self_count=len(self),
                    workers_count=len(workers),
                )
            )
        parts = zip(
            torch.tensor_split(self.data, len(workers)),
            torch.tensor_split(self.targets, len(workers)),
        )
        return FederatedDataset([BaseDataset(d, t).send(w) for (d, t), w in zip(parts, workers)])


class FederatedDataset:
    """One `BaseDataset` per worker, found by worker id: `fed["bob"]`."""

    def __init__(self, datasets: Sequence[BaseDataset]) -> None:
        self.datasets: dict[str, BaseDataset] = {}
        for d in datasets:
            where = d.location
            if where is None:
                raise ValueError(
                    tr(
                        "a FederatedDataset holds datasets on workers: send each one first, e.g. "
                        "dataset.send(bob)"
                    )
                )
            self.datasets[where.id] = d
        if len(self.datasets) != len(datasets):
            raise ValueError(tr("a FederatedDataset holds one dataset per worker"))

    @property
    def workers(self) -> list[str]:
        return list(self.datasets)

    def __getitem__(self, worker_id: str) -> BaseDataset:
        return self.datasets[worker_id]

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets.values())

    def __repr__(self) -> str:
        parts = ", ".join(f"{w}: {len(d)}" for w, d in self.datasets.items())
        return f"FederatedDataset({parts})"


class FederatedDataLoader:
    """Batches of `(data, target)` pointers; every batch comes from one worker.

    Each epoch visits the workers in order and, within each, every sample exactly once
    (in a fresh random order when `shuffle`). The order comes from a generator seeded with
    `seed`, so a notebook prints the same numbers on every run. The permutation is sent to
    the worker, which indexes its own data: samples never leave it.
    """

    def __init__(
        self,
        federated_dataset: FederatedDataset,
        batch_size: int = 8,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(tr("batch_size must be at least 1"))
        self.federated_dataset = federated_dataset
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def batches(self, worker_id: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of batches from one worker."""
        dataset = self.federated_dataset[worker_id]
        n = len(dataset)
        if self.shuffle:
            where = dataset.location
            assert where is not None  # FederatedDataset refuses datasets that are here
            order = where.receive(torch.randperm(n, generator=self.generator))
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.drop_last and stop - start < self.batch_size:
                break
            if not self.shuffle:
                yield dataset[start:stop]
            else:  # a batch of the whole part needs no slice of the order: one op fewer
                yield dataset[order if stop - start == n else order[start:stop]]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for worker_id in self.federated_dataset.workers:
            yield from self.batches(worker_id)

    def __len__(self) -> int:
        sizes = (len(d) for d in self.federated_dataset.datasets.values())
        if self.drop_last:
            return sum(n // self.batch_size for n in sizes)
        return sum(-(-n // self.batch_size) for n in sizes)
