"""Sending whole models: `model.send(worker)`, `model.get()`, `.move()`, `.copy()`.

Each parameter is turned into a pointer *in place* with `torch.utils.swap_tensors`: the
Python object stays the same, so an optimizer built before `send` still holds the right
parameters, and after `get` they are plain `nn.Parameter`s again. The data itself is
handed to the worker without a copy.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, cast

import torch
from torch import nn
from torch._C import DisableTorchFunctionSubclass

from federated.errors import NotRemoteError, StalePointerError, WorkerMismatchError
from federated.language import tr
from federated.pointer import PointerTensor

if TYPE_CHECKING:
    from federated.contract import Worker


def tensors(module: nn.Module) -> list[tuple[torch.Tensor, bool]]:
    """Every parameter and buffer once (tied weights too), with whether it's a parameter,
    module by module. Read from each module's own tables: `module.parameters()` would
    also do, but it hashes every tensor, and a pointer's hash is a Python call."""
    seen: set[int] = set()
    found = []
    for sub in module.modules():
        for table, is_param in ((sub._parameters, True), (sub._buffers, False)):
            for t in table.values():
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    found.append((t, is_param))
    return found


def _swap(a: torch.Tensor, b: torch.Tensor) -> None:
    with DisableTorchFunctionSubclass():
        torch.utils.swap_tensors(a, b)


def location(module: nn.Module) -> Worker | None:
    """The worker a model is on, or None if it is here."""
    return location_of(tensors(module))


def location_of(pairs: list[tuple[torch.Tensor, bool]]) -> Worker | None:
    """The worker of a model given its `tensors`, or None if it is here."""
    if pairs and isinstance(pairs[0][0], PointerTensor):
        return pairs[0][0].location
    return None


def send(module: nn.Module, worker: Worker) -> nn.Module:
    """Move every parameter and buffer to `worker`; returns the same model."""
    if not hasattr(worker, "register"):
        raise TypeError(
            tr("send() needs a worker, e.g. model.send(bob), not {value}", value=repr(worker))
        )
    pairs = tensors(module)
    where = location_of(pairs)
    if where is worker:
        return module
    if where is not None:
        raise WorkerMismatchError(
            tr(
                "This model is on {where}, not here. To take it to {worker} use "
                "`model.move({worker})`, or `model.get()` it first.",
                where=where.id,
                worker=worker.id,
            )
        )
    swapped: list[tuple[PointerTensor, torch.Tensor]] = []
    try:
        with DisableTorchFunctionSubclass():  # swap_tensors asks the pointers questions
            for t, is_param in pairs:
                held = PointerTensor._unbound(t.shape, t.dtype)
                torch.utils.swap_tensors(t, held)  # now `t` is the pointer, `held` the data
                pointer = cast(PointerTensor, t)
                pointer._mark_parameter(is_param)
                swapped.append((pointer, held))
        for t, data in swapped:
            t._bind(worker, worker.register(data))
    except Exception:
        for t, data in reversed(swapped):  # put every tensor back as it was
            if t._gone is None:
                worker.free(t.id_at_location)
            t._retire("not sent")
            _swap(t, data)
        raise
    return module


def _pointers(module: nn.Module) -> list[tuple[PointerTensor, bool]]:
    pairs = tensors(module)
    pointers = [(t, p) for t, p in pairs if isinstance(t, PointerTensor)]
    if not pointers:
        raise NotRemoteError(tr("This model is already here on your machine: nothing to get."))
    if len(pointers) != len(pairs):
        raise WorkerMismatchError(
            tr(
                "Part of this model is here and part on a worker. Bring that part back "
                "first (`.get()` on the submodule you sent), then send or get the whole model."
            )
        )
    where = pointers[0][0].location
    for t, _ in pointers:
        t._check_live()
        if t.location is not where:
            raise WorkerMismatchError(
                tr(
                    "This model's parameters are on different workers. Move every part to "
                    "one worker first (`part.move(worker)` for each submodule), then "
                    "`model.get()`."
                )
            )
    return pointers


def get(module: nn.Module) -> nn.Module:
    """Bring every parameter (with its gradient) and buffer back; the worker forgets them."""
    pairs = _pointers(module)
    where = pairs[0][0].location
    values = where.fetch_many([t.id_at_location for t, _ in pairs])  # all or nothing
    with DisableTorchFunctionSubclass():  # swap_tensors asks the pointers questions
        for (t, is_param), value in zip(pairs, values):
            if isinstance(value, PointerTensor):
                raise StalePointerError(
                    tr("model.get() on a chain of pointers: remote_get() first")
                )
            if is_param:  # a new Parameter detaches: the worker's graph stays the worker's
                local = nn.Parameter(value, requires_grad=value.requires_grad)
                local.grad = value.grad
            else:
                local = value.detach()
            local.__dict__.update(value.__dict__)  # what the tensor carried before sending
            t._retire("fetched")  # the wrapper that `local` becomes must not free anything
            torch.utils.swap_tensors(t, local)
    return module


def move(module: nn.Module, worker: Worker) -> nn.Module:
    """Send a model's tensors straight from their worker to `worker`."""
    pairs = _pointers(module)
    if pairs[0][0].location is worker:
        return module
    for t, _ in pairs:
        t.move(worker)
    return module


def copy_module(module: nn.Module) -> nn.Module:
    """An independent copy; a sent model's copy is made on the same worker."""
    return copy.deepcopy(module)
