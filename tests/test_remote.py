"""Workers in real child processes on loopback: same results, bad input refused, faults."""

from __future__ import annotations

import json
import struct

import grpc
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn, optim

import federated as sy
from federated import protocol
from federated.access import Caller, Callers
from federated.protocol import METHOD
from federated.servicer import WorkerServicer

TOKEN = "test-token"


@pytest.fixture(scope="module")
def servers():
    bob, alice = sy.WorkerProcess.group(["bob", "alice"], token=TOKEN)
    try:
        yield bob, alice
    finally:
        bob.stop()
        alice.stop()


@pytest.fixture
def remote(servers):
    hook = sy.TorchHook(torch)
    workers = [
        sy.RemoteWorker(hook, id=p.id, port=p.port, token=TOKEN, timeout=20) for p in servers
    ]
    yield workers
    for w in workers:
        w.flush()
        w.close()


def seed_losses(bob, alice) -> list[float]:
    """The seed's federated loop; returns the printed losses."""
    data = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]], requires_grad=True)
    target = torch.tensor([[0], [0], [1], [1.0]], requires_grad=True)
    datasets = [
        (data[:2].send(bob), target[:2].send(bob)),
        (data[2:].send(alice), target[2:].send(alice)),
    ]
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    opt = optim.SGD(params=model.parameters(), lr=0.1)
    losses = []
    for _ in range(10):
        for x, y in datasets:
            model.send(x.location)
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).sum()
            loss.backward()
            opt.step()
            model.get()
            losses.append(loss.get().item())
    return losses


def test_seed_loop_gives_the_same_losses_as_virtual_workers(remote):
    hook = sy.TorchHook(torch)
    virtual = seed_losses(sy.VirtualWorker(hook, id="bob"), sy.VirtualWorker(hook, id="alice"))
    assert seed_losses(*remote) == pytest.approx(virtual, abs=1e-6)
    for worker in remote:
        worker.flush()
        leftovers = [o for o in worker.objects.values() if o.shape in ((2, 2), (2, 1))]
        assert len(leftovers) <= 2  # this test's data and target at most, nothing else


def test_a_remote_group_steps_with_foreach_in_one_message_for_all_parameters(remote):
    bob, _ = remote
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, foreach=True)  # the learner's choice
    data, target = torch.ones(3, 2).send(bob), torch.zeros(3, 1).send(bob)
    model.send(bob)
    opt.zero_grad()
    ((model(data) - target) ** 2).sum().backward()
    ops = []
    execute = bob.execute

    def spy(func, args, kwargs):
        ops.append(getattr(func, "__name__", str(func)))
        return execute(func, args, kwargs)

    bob.execute = spy
    try:
        opt.step()
    finally:
        del bob.execute
    assert ops.count("_foreach_add_") == 1 and "add_" not in ops
    model.get()


def test_move_and_remote_get_between_remote_workers(remote):
    bob, alice = remote
    x = torch.tensor([5.0, 6.0]).send(bob)
    old_id = x.id_at_location
    x.move(alice)
    assert x.location is alice and old_id not in bob.objects
    assert alice.objects[x.id_at_location].shape == (2,)
    chain = torch.tensor([7.0]).send(bob).send(alice)
    assert alice.objects[chain.id_at_location].pointer
    assert torch.equal((chain + 1).get().get(), torch.tensor([8.0]))  # alice asks bob
    chain = torch.tensor([9.0]).send(bob).send(alice)
    chain.remote_get()
    assert not alice.objects[chain.id_at_location].pointer
    assert torch.equal(chain.get(), torch.tensor([9.0]))


def test_secret_sharing_across_remote_workers(remote):
    bob, alice = remote
    a = torch.tensor([1.5, -2.0, 3.25]).fix_precision().share(bob, alice, crypto_provider=bob)
    b = torch.tensor([2.0, 0.5, -1.0]).fix_precision().share(bob, alice, crypto_provider=bob)
    torch.testing.assert_close((a + b).get().float_precision(), torch.tensor([3.5, -1.5, 2.25]))
    torch.testing.assert_close(
        (a * b).get().float_precision(), torch.tensor([3.0, -1.0, -3.25]), atol=2e-3, rtol=0
    )


def test_lesson_five_round_matches_virtual_workers(remote):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images[:240], dtype=torch.float32).unsqueeze(1) / 16
    labels = torch.tensor(digits.target[:240])

    def one_round(workers) -> nn.Module:
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64, 10),
        )
        fed = sy.BaseDataset(images, labels).federate(workers)
        loader = sy.FederatedDataLoader(fed, batch_size=40, shuffle=True)
        copies = []
        for worker_id in fed.workers:
            copy = model.copy().send(fed[worker_id].location)
            opt = optim.SGD(copy.parameters(), lr=0.1, momentum=0.9)
            for data, target in loader.batches(worker_id):
                opt.zero_grad()
                nn.functional.cross_entropy(copy(data), target).backward()
                opt.step()
            copies.append(copy.get())
        return sy.federated_avg(copies, weights=[len(fed[w]) for w in fed.workers])

    hook = sy.TorchHook(torch)
    virtual = one_round([sy.VirtualWorker(hook, id="bob"), sy.VirtualWorker(hook, id="alice")])
    through_processes = one_round(remote)
    for a, b in zip(virtual.state_dict().values(), through_processes.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_large_tensors_go_and_come_back_bit_for_bit_as_streams(remote):
    bob, alice = remote
    torch.manual_seed(7)
    bits = torch.randint(-(2**31), 2**31 - 1, (3 * 2**20 + 5,), dtype=torch.int32)
    tensors = [
        bits.view(torch.float32),  # every bit pattern: NaNs of all kinds, -0.0, infinities
        torch.randn(1500, 1100, dtype=torch.float64).t(),  # not contiguous
        torch.randn(2**20 + 3, dtype=torch.complex64).conj(),  # a lazy conjugate
        torch.randn(2**20, dtype=torch.bfloat16),
        torch.rand(3 * 2**20) > 0.5,
        torch.arange(2**18, dtype=torch.int64)[::2],
    ]
    for value in tensors:
        assert protocol.nbytes_of({"t": value}) >= protocol.STREAM_FROM or value.stride() != (1,)
        back = value.send(bob).get()
        assert back.dtype == value.dtype and back.shape == value.shape
        expected = value.resolve_conj().contiguous()
        assert back.reshape(-1).view(torch.uint8).equal(expected.reshape(-1).view(torch.uint8))
    # between servers, straight from bob to alice, the same
    moved = bits.view(torch.float32).send(bob).move(alice)
    assert moved.location is alice
    assert moved.get().view(torch.int32).equal(bits)


def test_a_large_tensor_with_its_gradient_comes_back_whole(remote):
    bob, _ = remote
    weights = torch.randn(512, 1024, requires_grad=True)  # 2 MB, and 2 MB of gradient
    weights.grad = torch.randn(512, 1024)
    expected, grad = weights.detach().clone(), weights.grad.clone()
    back = weights.send(bob).get()
    assert back.requires_grad and torch.equal(back.detach(), expected)
    assert torch.equal(back.grad, grad)


# ---- bad input: refused, and the server goes on serving ----------------------------------


def raw_call(port: int, payload: bytes, token: str | None = TOKEN) -> dict:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        metadata = [("authorization", f"Bearer {token}")] if token else None
        reply = channel.unary_unary(METHOD)(payload, timeout=10, metadata=metadata)
    return protocol.unpack(reply)[0]


@pytest.mark.parametrize(
    "payload, kind",
    [
        (b"\x00\x01garbage", "ProtocolError"),
        (struct.pack(">I", 5) + b"nope!", "ProtocolError"),
        (
            protocol.pack({"command": "run", "op": "os.system", "args": {"$tuple": ["ls"]}}),
            "ProtocolError",
        ),
        (
            protocol.pack(
                {"command": "run", "op": "Tensor.item", "args": {"$tuple": [{"$ref": 1}]}}
            ),
            "ProtocolError",
        ),
        (protocol.pack({"command": "exec", "code": "print(1)"}), "ProtocolError"),
        (protocol.pack({"command": "fetch", "ids": [10**9]}), "WorkerRestartedError"),
    ],
)
def test_bad_messages_get_an_error_and_the_server_keeps_serving(remote, servers, payload, kind):
    bob, _ = remote
    x = torch.tensor([1.0, 2.0]).send(bob)
    before = dict(bob.objects)
    answer = raw_call(servers[0].port, payload)
    assert answer["error"]["type"] == kind
    assert dict(bob.objects) == before
    assert torch.equal((x * 2).get(), torch.tensor([2.0, 4.0]))


def test_wrong_or_missing_token_is_refused(servers):
    for token in ("wrong", None):
        with pytest.raises(grpc.RpcError) as refused:
            raw_call(servers[0].port, protocol.pack({"command": "ping"}), token=token)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    intruder = sy.RemoteWorker(sy.TorchHook(torch), id="bob", port=servers[0].port, token="wrong")
    with pytest.raises(PermissionError, match="token"):
        torch.ones(2).send(intruder)
    intruder.close()


def test_oversized_payload_is_refused_and_the_server_keeps_serving(tmp_path):
    with sy.WorkerProcess("carol", token=TOKEN, max_message_mb=1) as carol_process:
        carol = sy.RemoteWorker(
            sy.TorchHook(torch), id="carol", port=carol_process.port, token=TOKEN
        )
        with pytest.raises(protocol.ProtocolError, match="too large"):
            torch.zeros(600_000).send(carol)  # 2.4 MB
        assert len(carol.objects) == 0
        small = torch.ones(3).send(carol)
        assert torch.equal(small.get(), torch.ones(3))
        carol.close()


# ---- faults --------------------------------------------------------------------------------


def test_freeing_never_raises_and_keeps_the_frees_while_the_server_is_down():
    """`free` runs from a pointer's `__del__`; a server that is down must not make it fail."""
    from federated.process import free_port

    worker = sy.RemoteWorker(None, id="nobody-home", port=free_port(), timeout=2)
    tries: list[int] = []
    real_flush = worker.flush
    worker.flush = lambda: (tries.append(len(worker._frees)), real_flush())  # type: ignore[method-assign]
    try:
        for obj_id in range(1, 600):
            worker.free(obj_id)  # the 256th and 512th try to send them and cannot
        assert worker._frees == list(range(1, 600))
        assert tries == [256, 512]  # not a network call for every free after the first failure
    finally:
        worker.close()


def test_a_killed_worker_fails_the_next_call_naming_it_and_a_round_carries_on():
    hook = sy.TorchHook(torch)
    with (
        sy.WorkerProcess("dave", token=TOKEN) as dave_process,
        sy.WorkerProcess("erin", token=TOKEN) as erin_process,
    ):
        # A time limit only for calls that are answered: the killed worker's connection is
        # refused at once, so a short one would only fail erin's calls on a busy machine.
        dave = sy.RemoteWorker(hook, id="dave", port=dave_process.port, token=TOKEN, timeout=60)
        erin = sy.RemoteWorker(hook, id="erin", port=erin_process.port, token=TOKEN, timeout=60)
        data = {w.id: (torch.randn(8, 2).send(w), torch.randn(8, 1).send(w)) for w in (dave, erin)}
        dave_process.process.kill()
        dave_process.process.wait()
        with pytest.raises(sy.WorkerUnreachableError, match="dave"):
            (data["dave"][0] + 1).get()
        model, trained = nn.Linear(2, 1), []
        for worker in (dave, erin):  # one federated-averaging round that skips the missing
            try:
                copy = model.copy().send(worker)
                x, y = data[worker.id]
                ((copy(x) - y) ** 2).mean().backward()
                trained.append(copy.get())
            except sy.WorkerUnreachableError:
                continue
        assert len(trained) == 1
        average = sy.federated_avg(trained)
        assert torch.equal(average.weight, trained[0].weight)
        dave.close()
        erin.close()


def test_a_worker_restarted_with_data_has_it_again(tmp_path):
    path = tmp_path / "digits.safetensors"
    save_file({"#digits": torch.arange(12.0).reshape(3, 4)}, str(path))
    for _ in range(2):  # start, stop, start again
        with sy.WorkerProcess("frank", token=TOKEN, data=path, private=True) as process:
            frank = sy.RemoteWorker(None, id="frank", port=process.port, token=TOKEN)
            (digits,) = frank.search("#digits")
            assert digits.shape == (3, 4) and frank.objects[digits.id_at_location].private
            with pytest.raises(PermissionError):  # a sum of private data is private too
                digits.sum().get()
            with pytest.raises(PermissionError):
                digits.get()
            frank.close()


# ---- the decoder never crashes on random bytes -------------------------------------------


class _Context:
    def invocation_metadata(self):
        return (("authorization", f"Bearer {TOKEN}"),)

    def time_remaining(self):
        return 10.0


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(st.binary(max_size=512))
def test_random_bytes_never_crash_the_decoder(payload):
    servicer = WorkerServicer(sy.VirtualWorker(None, id="fuzz"), Callers([Caller("client", TOKEN)]))
    answer, _ = protocol.unpack(servicer.call(payload, _Context()))
    assert "error" in answer or "ok" in answer
    assert len(servicer.worker.objects) == 0


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=3),
            st.sampled_from(["float32", "bool", "int64", "uint16", 7, None]),
            st.lists(st.integers(-2, 40), max_size=3) | st.integers(),
        ),
        max_size=3,
    ),
    st.lists(st.binary(max_size=300), max_size=4),
)
def test_random_streams_never_crash_the_server_or_leave_anything(layout, chunks):
    servicer = WorkerServicer(sy.VirtualWorker(None, id="fuzz"), Callers([Caller("client", TOKEN)]))
    head = json.dumps({"command": "register", "requires_grad": [False], "$tensors": layout})
    replies = list(servicer.stream(iter([head.encode(), *chunks]), _Context()))
    answer = protocol.Incoming(replies[0], 2**20).header
    assert "error" in answer or "ok" in answer
    if "error" in answer:
        assert len(servicer.worker.objects) == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(st.text(max_size=12), json_values, json_values)
def test_random_headers_never_crash_the_server(command, args, extra):
    servicer = WorkerServicer(sy.VirtualWorker(None, id="fuzz"), Callers([Caller("client", TOKEN)]))
    header = {"command": command, "op": "Tensor.add", "args": args, "ids": extra, "free": extra}
    answer, _ = protocol.unpack(servicer.call(protocol.pack(header), _Context()))
    assert "error" in answer or "ok" in answer


# ---- TLS -------------------------------------------------------------------------------------


def test_a_worker_served_over_tls_needs_its_certificate(tmp_path):
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    with sy.WorkerProcess("grace", token=TOKEN, tls=(cert, key)) as process:
        grace = sy.RemoteWorker(
            sy.TorchHook(torch), id="grace", port=process.port, token=TOKEN, tls_root=cert
        )
        x = torch.tensor([1.0, 2.0]).send(grace)
        assert torch.equal((x * 3).get(), torch.tensor([3.0, 6.0]))
        plain = sy.RemoteWorker(None, id="grace", port=process.port, token=TOKEN, timeout=3)
        with pytest.raises(sy.WorkerUnreachableError, match="grace"):
            plain.ping()  # an unencrypted caller cannot talk to it
        grace.close()
        plain.close()
