"""Small helpers shared by the `federated` unit tests: fresh workers and state snapshots."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch._C import DisableTorchFunctionSubclass

import federated as sy


def workers(*names: str) -> list[sy.VirtualWorker]:
    """New workers (ids count from 1 on each), after the (idempotent) hook."""
    hook = sy.TorchHook(torch)
    return [sy.VirtualWorker(hook, id=name) for name in names]


def _frozen(obj: Any) -> Any:
    if isinstance(obj, sy.PointerTensor):  # a chain: remember where it points, not a value
        with DisableTorchFunctionSubclass():
            shape = tuple(obj.shape)
        return ("pointer", obj.location.id, obj.id_at_location, shape)
    with torch.no_grad():
        grad = obj.grad if obj.is_leaf or obj.retains_grad else None
        grad = grad.detach().clone() if grad is not None else None
        return ("tensor", obj.detach().clone(), obj.requires_grad, grad)


def snapshot(worker: sy.VirtualWorker) -> dict[int, Any]:
    """What `worker` holds: every id with a copy of its value (and gradient)."""
    return {key: _frozen(obj) for key, obj in dict(worker.objects).items()}


def assert_same_state(before: dict[int, Any], worker: sy.VirtualWorker) -> None:
    """`worker` holds exactly the same ids with the same values as in `before`."""
    after = snapshot(worker)
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    assert not added and not removed, (
        f"{worker.id}'s object ids changed: added {added}, removed {removed}"
    )
    for key, old in before.items():
        new = after[key]
        assert old[0] == new[0], f"{worker.id}:{key} changed kind"
        if old[0] == "pointer":
            assert old == new, f"{worker.id}:{key} now points elsewhere"
            continue
        assert torch.equal(old[1], new[1]), f"{worker.id}:{key} changed value"
        assert old[2] == new[2], f"{worker.id}:{key} changed requires_grad"
        if old[3] is None:
            assert new[3] is None, f"{worker.id}:{key} gained a gradient"
        else:
            assert new[3] is not None and torch.equal(old[3], new[3]), (
                f"{worker.id}:{key} changed gradient"
            )


def held(worker: sy.VirtualWorker, pointer: sy.PointerTensor) -> torch.Tensor:
    """The tensor `pointer` names on `worker`, read directly (no pointer call)."""
    return worker.objects[pointer.id_at_location]


def cases(names: str, table: list[tuple]) -> pytest.MarkDecorator:
    """`parametrize` over `names`; each row's first item is its readable test id."""
    values = [row[1:] if "," in names else row[1] for row in table]
    return pytest.mark.parametrize(names, values, ids=[row[0] for row in table])


# The seed's toy data and model, shared by the module and optimizer tests.
X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = torch.tensor([[0.0], [0.0], [1.0], [1.0]])


def linear(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(2, 1)


def values(model: nn.Module) -> list[torch.Tensor]:
    """Local copies of a local model's parameters."""
    return [p.detach().clone() for p in model.parameters()]
