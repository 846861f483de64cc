"""A ready-made federation to explore: `sy.create_sandbox(globals())` (PySyft's Part 5).

Six virtual workers, bob, theo, jason, alice, andy and jon, each hold a share of
scikit-learn's bundled datasets (shipped with scikit-learn, so nothing is downloaded),
tagged so that they can be found without looking at them:

    sy.create_sandbox(globals(), verbose=False)
    grid.search("#iris", "#data")     # {"bob": [pointer], "theo": [pointer], ...}

Every dataset is shuffled once (always the same way) and split into six parts, one per
worker, as data arrives at different hospitals or phones. These are published datasets,
so they are loaded as public; pass `private=True` to practise with the privacy rules on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from federated.hook import TorchHook
from federated.language import tr
from federated.pointer import PointerTensor
from federated.virtual_worker import VirtualWorker

WORKERS = ("bob", "theo", "jason", "alice", "andy", "jon")

# tag -> what it is; the data is scikit-learn's `load_<tag>()`. Boston housing, which
# PySyft's sandbox had, is gone from scikit-learn (since 1.2).
DATASETS: dict[str, str] = {
    "iris": "Iris flowers: 4 measurements, 3 species",
    "wine": "Wines: 13 chemical measurements, 3 cultivars",
    "breast_cancer": "Breast tumours: 30 measurements, benign or malignant",
    "diabetes": "Diabetes patients: 10 measurements, disease progression a year later",
    "digits": "Handwritten digits: 8x8 images, labels 0-9",
    "linnerud": "Linnerud: 3 exercises (data) and 3 body measurements (target) of 20 men",
}

__all__ = ["DATASETS", "WORKERS", "PrivateGridNetwork", "create_sandbox"]


class PrivateGridNetwork:
    """Several workers searched as one: `grid.search("#iris", "#data")`."""

    def __init__(self, *workers: Any) -> None:
        if not workers or not all(callable(getattr(w, "search", None)) for w in workers):
            raise TypeError(tr("PrivateGridNetwork(*workers) takes workers, e.g. (bob, alice)"))
        self.workers = list(workers)

    def __repr__(self) -> str:
        return f"<PrivateGridNetwork {[w.id for w in self.workers]}>"

    def search(self, *tags: str | Sequence[str]) -> dict[str, list[PointerTensor]]:
        """Pointers to the data carrying every tag, by worker id; workers with nothing
        matching are left out."""
        found = {}
        for worker in self.workers:
            pointers = worker.search(*tags)
            if pointers:
                found[worker.id] = pointers
        return found


def _tensors(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset's rows in a fixed shuffled order, so each worker's share looks like the
    whole (scikit-learn's files are sorted by class)."""
    from sklearn import datasets  # imported here: `import federated` stays quick

    bunch = getattr(datasets, f"load_{name}")()
    order = np.random.default_rng(0).permutation(len(bunch.data))
    data = torch.tensor(np.asarray(bunch.data)[order], dtype=torch.float32)
    target = np.asarray(bunch.target)[order]
    dtype = torch.int64 if np.issubdtype(target.dtype, np.integer) else torch.float32
    return data, torch.tensor(target, dtype=dtype)


def create_sandbox(
    gbs: dict[str, Any], verbose: bool = True, download_data: bool = True, private: bool = False
) -> list[VirtualWorker]:
    """Put `hook`, the six workers, `workers` and `grid` into `gbs` (your `globals()`),
    with torch's usual names (`torch`, `th`, `nn`, `F`, `optim`); returns the workers.

    `download_data=False` makes empty workers. Nothing is ever downloaded: the data is
    scikit-learn's own copy.
    """
    if not isinstance(gbs, dict):
        raise TypeError(tr("create_sandbox(globals()) takes your notebook's globals()"))
    hook = TorchHook(torch)
    workers = [VirtualWorker(hook, id=name) for name in WORKERS]
    if download_data:
        for name, description in DATASETS.items():
            if verbose:
                print(f"Loading {name} onto {len(workers)} workers")
            data, target = _tensors(name)
            for worker, part, labels in zip(
                workers, data.tensor_split(len(workers)), target.tensor_split(len(workers))
            ):
                worker.load(
                    part,
                    tag=[f"#{name}", "#data"],
                    private=private,
                    description=f"{description} (data)",
                )
                worker.load(
                    labels,
                    tag=[f"#{name}", "#target"],
                    private=private,
                    description=f"{description} (target)",
                )
    from torch import nn, optim
    from torch.nn import functional

    import federated

    gbs.update(
        {
            "hook": hook,
            "workers": workers,
            "grid": PrivateGridNetwork(*workers),
            "torch": torch,
            "th": torch,
            "nn": nn,
            "F": functional,
            "optim": optim,
            "sy": federated,
        }
    )
    gbs.update({w.id: w for w in workers})
    if verbose:
        print(f"Done: {', '.join(WORKERS)}, `workers` and `grid` are ready")
    return workers
