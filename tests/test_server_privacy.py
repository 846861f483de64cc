"""Issue 12's attacks on private data, played against a real worker server.

`tests/test_attacks.py` plays every attack on a `VirtualWorker` and checks the data and
the worker are unchanged. A worker server runs the same privacy policy behind the wire;
these tests prove that nothing on the wire gets around it: each attack is refused with a
`PermissionError` (a `PrivateDataError` on the server), what the server holds keeps its
shape, and the server goes on serving.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

import federated as sy

TOKEN = secrets.token_hex(16)
RECORDS = torch.tensor([[61.0, 128.0], [44.0, 117.0], [57.0, 141.0], [36.0, 109.0]])


@pytest.fixture(scope="module")
def bob(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sy.RemoteWorker]:
    path = tmp_path_factory.mktemp("owner") / "records.safetensors"
    save_file({"#records": RECORDS}, str(path))
    with sy.WorkerProcess("bob", token=TOKEN, data=path, private=True) as process:
        worker = sy.RemoteWorker(None, id="bob", port=process.port, token=TOKEN)
        yield worker
        worker.close()


def _set_data(x: Any, bob: Any) -> Any:
    y = torch.zeros(4, 2).send(bob)
    y.data = x
    return y


def _set_items(x: Any, bob: Any) -> Any:
    y = torch.zeros(4, 2).send(bob)
    y[:] = x
    return y


def _copy_into(x: Any, bob: Any) -> Any:
    return torch.zeros(4, 2).send(bob).copy_(x)


def _gradient(x: Any, bob: Any) -> Any:
    w = torch.ones(4, 2, requires_grad=True).send(bob)
    (w * x).sum().backward()
    return w.grad


def _split(x: Any, bob: Any) -> Any:
    return x.split_with_sizes([1, 3])[0]


def _bits(x: Any, bob: Any) -> Any:
    return x.view(torch.int32)


def _one_hot_product(x: Any, bob: Any) -> Any:
    return x.t() @ torch.eye(4)[:, :1].send(bob)


ATTACKS: dict[str, Callable[[Any, Any], Any]] = {
    "a sum": lambda x, bob: x.sum(),
    "a setter .data": _set_data,
    "a setter [:]": _set_items,
    "copy_ into a public tensor": _copy_into,
    "a gradient the data flowed into": _gradient,
    "a piece of a split": _split,
    "a re-view of the bits": _bits,
    "a product with a one-hot column": _one_hot_product,
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_attack_through_the_wire_is_refused_and_the_server_serves_on(bob, attack):
    sy.TorchHook(torch)
    (records,) = bob.search("#records")
    held_before = {(o.shape, o.private) for o in bob.objects.values()}
    with pytest.raises(PermissionError, match="(?i)private"):
        ATTACKS[attack](records, bob).get()
    assert (tuple(records.shape), True) in held_before
    assert {(o.shape, o.private) for o in bob.objects.values() if o.private} >= {((4, 2), True)}
    assert torch.equal((torch.ones(2).send(bob) * 3).get(), torch.full((2,), 3.0))


def test_the_owners_data_cannot_be_changed_in_place_through_the_wire(bob):
    sy.TorchHook(torch)
    (records,) = bob.search("#records")
    with pytest.raises(PermissionError, match="(?i)owner|private"):
        records.mul_(0)
    with pytest.raises(PermissionError, match="(?i)owner|private"):
        records.resize_(0)
    (again,) = bob.search("#records")
    assert tuple(again.shape) == (4, 2)
