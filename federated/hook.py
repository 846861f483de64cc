"""`TorchHook`: gives `torch.Tensor` and `nn.Module` their federated methods.

PySyft 0.2 replaced most of torch to make pointers work. Here pointers are a tensor
subclass, so the hook only *adds* methods (`send`, `get`, ...) and replaces nothing.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from federated import module as _module
from federated import shared_models
from federated.errors import NotRemoteError
from federated.fixed_precision import FixedPrecisionTensor
from federated.optim import check_state_location, restore_foreach, use_foreach
from federated.sharing import AdditiveSharingTensor


def _send(self: torch.Tensor, worker: Any) -> torch.Tensor:
    """Send a copy of this tensor to `worker`; returns a pointer to it."""
    if not hasattr(worker, "receive"):
        raise TypeError(f"send() needs a worker, e.g. x.send(bob), not {worker!r}")
    return worker.receive(self)


def _get(self: torch.Tensor) -> torch.Tensor:
    raise NotRemoteError(
        "This tensor is already here on your machine (it is not a pointer): nothing to get."
    )


def _copy(self: torch.Tensor) -> torch.Tensor:
    """A detached copy that keeps `requires_grad`."""
    return self.detach().clone().requires_grad_(self.requires_grad)


def _fix_precision(self: torch.Tensor, precision: int = 3) -> FixedPrecisionTensor:
    """Encode as integers, value * 10**precision, ready to be secret-shared."""
    return FixedPrecisionTensor.from_float(self, precision)


def _share(self: torch.Tensor, *workers: Any, crypto_provider: Any = None):
    """Secret-share an int64 tensor among `workers` (floats: `.fix_precision()` first)."""
    return AdditiveSharingTensor.share(self, workers, crypto_provider)


_TENSOR_METHODS = {
    "fix_precision": _fix_precision,
    "fix_prec": _fix_precision,
    "share": _share,
    "send": _send,
    "move": _send,  # moving a local tensor to a worker is sending it
    "get": _get,
    "remote_get": _get,
    "copy": _copy,
}
_MODULE_METHODS = {
    "send": _module.send,
    "get": _module.get,
    "move": _module.move,
    "copy": _module.copy_module,
    "location": property(_module.location),
}


_step_hooks: list = []  # the optimizer hooks, installed once


class TorchHook:
    """Call once, `hook = sy.TorchHook(torch)`, before making workers. Safe to repeat."""

    def __init__(self, torch_module: ModuleType) -> None:
        if torch_module is not torch:
            raise TypeError("TorchHook expects the torch module itself: sy.TorchHook(torch)")
        self.torch = torch_module
        for name, method in _TENSOR_METHODS.items():
            setattr(torch.Tensor, name, method)
        for name, method in _MODULE_METHODS.items():
            setattr(nn.Module, name, method)
        shared_models.install()  # fix_precision/share of tensors, models and optimizers
        if not _step_hooks:
            _step_hooks.extend([register_optimizer_step_pre_hook(check_state_location),
                                register_optimizer_step_pre_hook(use_foreach),
                                register_optimizer_step_post_hook(restore_foreach)])

    def __repr__(self) -> str:
        return "<TorchHook>"
