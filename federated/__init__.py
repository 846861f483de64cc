"""federated: PySyft 0.2's worker-and-pointer API on today's PyTorch.

import torch, federated as sy
hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
x = torch.tensor([1.0, 2, 3]).send(bob)   # a pointer; bob holds the value
y = (x + x).sum()                          # computed on bob
y.get()                                    # tensor(12.)
"""

from federated import dp  # sy.dp.noisy_count, sy.dp.train, ...
from federated.averaging import federated_avg
from federated.contract import Worker
from federated.dataset import BaseDataset, FederatedDataLoader, FederatedDataset
from federated.errors import (
    BudgetExceededError,
    FederatedError,
    LocalTensorError,
    NotRemoteError,
    ObjectNotFoundError,
    PrivateDataError,
    RevealError,
    StalePointerError,
    WorkerMismatchError,
    WorkerUnreachableError,
)
from federated.fixed_precision import FixedPrecisionTensor
from federated.hook import TorchHook, local_worker
from federated.optim import Optims
from federated.plan import Plan, PlanError, PlanPointer, func2plan
from federated.pointer import PointerTensor
from federated.process import WorkerProcess
from federated.remote import RemoteWorker
from federated.sandbox import PrivateGridNetwork, create_sandbox
from federated.sharing import AdditiveSharingTensor
from federated.virtual_worker import VirtualWorker

__all__ = [
    "dp",
    "BudgetExceededError",
    "Worker",
    "local_worker",
    "BaseDataset",
    "FederatedDataLoader",
    "FederatedDataset",
    "FederatedError",
    "LocalTensorError",
    "NotRemoteError",
    "ObjectNotFoundError",
    "PrivateDataError",
    "AdditiveSharingTensor",
    "FixedPrecisionTensor",
    "Optims",
    "PointerTensor",
    "RevealError",
    "StalePointerError",
    "TorchHook",
    "VirtualWorker",
    "WorkerMismatchError",
    "WorkerUnreachableError",
    "RemoteWorker",
    "WorkerProcess",
    "federated_avg",
    "Plan",
    "PlanError",
    "PlanPointer",
    "PrivateGridNetwork",
    "create_sandbox",
    "func2plan",
]
