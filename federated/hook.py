"""`TorchHook`: gives `torch.Tensor` and `nn.Module` their federated methods, and takes
them away again.

PySyft 0.2 replaced most of torch to make pointers work. Here pointers are a tensor
subclass, so the hook only *adds* methods (`send`, `get`, ...) and replaces nothing;
`hook.unhook()` (or leaving `with sy.TorchHook(torch) as hook:`) removes every one.
"""

from __future__ import annotations

from types import ModuleType, TracebackType
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.hooks import RemovableHandle

from federated import module as _module
from federated import shared_models
from federated.contract import Worker
from federated.errors import NotRemoteError
from federated.language import tr
from federated.optim import check_state_location
from federated.virtual_worker import VirtualWorker

local_worker = VirtualWorker(None, id="me")
"""The worker that stands for this machine (PySyft's `sy.local_worker`): the owner of
every tensor and pointer here."""


def _send(self: torch.Tensor, worker: Worker) -> torch.Tensor:
    """Send a copy of this tensor to `worker`; returns a pointer to it."""
    if not callable(getattr(worker, "receive", None)):
        raise TypeError(
            tr("send() needs a worker, e.g. x.send(bob), not {value}", value=repr(worker))
        )
    return worker.receive(self)


def _get(self: torch.Tensor) -> torch.Tensor:
    raise NotRemoteError(
        tr("This tensor is already here on your machine (it is not a pointer): nothing to get.")
    )


def _copy(self: torch.Tensor) -> torch.Tensor:
    """A detached copy that keeps `requires_grad`."""
    return self.detach().clone().requires_grad_(self.requires_grad)


def _tag(self: torch.Tensor, *tags: str) -> torch.Tensor:
    """Add search tags (`x.tag("#patients")`), read by `VirtualWorker(..., data=...)`."""
    if not all(isinstance(t, str) for t in tags):
        raise TypeError(tr("tags are strings such as '#patients', got {value}", value=repr(tags)))
    setattr(self, "tags", (*getattr(self, "tags", ()), *tags))  # noqa: B010 - not a Tensor field
    return self


def _describe(self: torch.Tensor, description: str) -> torch.Tensor:
    """Say what this data is, for whoever finds it by `search`."""
    if not isinstance(description, str):
        raise TypeError(tr("describe() takes a string"))
    setattr(self, "description", description)  # noqa: B010 - not a Tensor field
    return self


def _owner(self: torch.Tensor) -> VirtualWorker:
    return local_worker


_ADDED: dict[type, dict[str, Any]] = {
    torch.Tensor: {
        "fix_precision": shared_models.tensor_fix_precision,
        "fix_prec": shared_models.tensor_fix_precision,
        "share": shared_models.tensor_share,
        "send": _send,
        "move": _send,  # moving a local tensor to a worker is sending it
        "get": _get,
        "remote_get": _get,
        "copy": _copy,
        "tag": _tag,
        "describe": _describe,
        "owner": property(_owner),
    },
    nn.Module: {
        "send": _module.send,
        "get": _module.get,
        "move": _module.move,
        "copy": _module.copy_module,
        "location": property(_module.location),
        "fix_precision": shared_models.module_fix_precision,
        "fix_prec": shared_models.module_fix_precision,
        "share": shared_models.module_share,
    },
    torch.optim.Optimizer: {
        "fix_precision": shared_models.optimizer_fix_precision,
        "fix_prec": shared_models.optimizer_fix_precision,
    },
}
_guard: list[RemovableHandle] = []  # the optimizer guard, while hooked


def hooked() -> bool:
    """Whether torch currently has the federated methods."""
    return bool(_guard)


def unhook() -> None:
    """Take every added method and the optimizer check away from torch again."""
    for cls, methods in _ADDED.items():
        for name, method in methods.items():
            if vars(cls).get(name) is method:
                delattr(cls, name)
    while _guard:
        _guard.pop().remove()


class TorchHook:
    """`hook = sy.TorchHook(torch)` once, before making workers; safe to repeat.

    Adds the federated methods to `torch.Tensor` and `nn.Module`, and one read-only
    check before every optimizer step (a stateful optimizer must step where its state
    is: see `federated.optim.check_state_location`). `unhook()` removes all of it.
    """

    def __init__(self, torch_module: ModuleType) -> None:
        if torch_module is not torch:
            raise TypeError(tr("TorchHook expects the torch module itself: sy.TorchHook(torch)"))
        self.torch = torch_module
        self.local_worker = local_worker
        if hooked():
            return
        for cls, methods in _ADDED.items():
            clashes = [name for name in methods if name in vars(cls)]
            if clashes:
                raise RuntimeError(
                    tr(
                        "{cls} already has {names}: not overwriting. Another library "
                        "added them; hook in a fresh Python process (restart the kernel).",
                        cls=cls.__name__,
                        names=clashes,
                    )
                )
        for cls, methods in _ADDED.items():
            for name, method in methods.items():
                setattr(cls, name, method)
        _guard.append(register_optimizer_step_pre_hook(check_state_location))

    def unhook(self) -> None:
        """Take every added method and the optimizer check away again. There is only one
        torch, so this undoes every `TorchHook` made; hooking again puts them back."""
        unhook()

    def __enter__(self) -> TorchHook:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.unhook()

    def __repr__(self) -> str:
        return "<TorchHook>"


__all__ = ["TorchHook", "hooked", "local_worker", "unhook"]
