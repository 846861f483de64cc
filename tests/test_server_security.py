"""Attacks on a worker server, each refused: tokens, the interceptor, stalled calls, time
and work limits, quotas, the owner's `load`, all-or-nothing fetch, streams cut off as they
arrive, restarts, TLS flags.

Peers and what crosses between workers are in test_server_peers.py. Everything runs on
loopback; every server started here is stopped, also when a test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import grpc
import pytest
import torch
from torch import nn

import federated as sy
from federated import protocol, server
from federated.access import Caller, Callers, read_token
from federated.process import free_port
from federated.protocol import METHOD, QuotaExceededError
from federated.servicer import Limits, WorkerServicer

TOKEN = "security-token"


def _refused(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        server.main(argv)
    return str(stopped.value)


# ---- tokens and how a server may listen ------------------------------------------------------


@pytest.mark.parametrize("content", ["", "   \n", "\t\n\n"])
def test_an_empty_or_whitespace_token_file_is_refused(tmp_path, content):
    path = tmp_path / "token"
    path.write_text(content)
    path.chmod(0o600)
    message = _refused(["--id", "bob", "--port", str(free_port()), "--token-file", str(path)])
    assert "empty" in message


def test_a_token_file_others_can_read_is_warned_about(tmp_path):
    path = tmp_path / "token"
    path.write_text("a-secret\n")
    path.chmod(0o644)
    warnings: list[str] = []
    assert read_token(path, warnings.append) == "a-secret"
    assert len(warnings) == 1 and "chmod 600" in warnings[0]
    path.chmod(0o600)
    assert read_token(path, warnings.append) == "a-secret" and len(warnings) == 1


def test_serving_off_loopback_needs_a_token_and_tls_or_an_explicit_flag(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o600)
    port = str(free_port())
    assert "without a token" in _refused(["--id", "bob", "--port", port, "--host", "0.0.0.0"])
    message = _refused(
        ["--id", "bob", "--port", port, "--host", "0.0.0.0", "--token-file", str(path)]
    )
    assert "without TLS" in message and "--insecure-off-loopback" in message


def test_two_callers_with_one_token_are_refused():
    with pytest.raises(SystemExit, match="same token"):
        Callers([Caller("client", TOKEN), Caller("alice", TOKEN)])


# ---- the interceptor: no token, no reading --------------------------------------------------


@pytest.fixture(scope="module")
def small_server():
    """A server with a 1 MB message limit, a small quota, a low work limit, an owner."""
    process = sy.WorkerProcess(
        "guarded",
        token=TOKEN,
        max_message_mb=1,
        owner_token="owner-t",
        extra_args=[
            "--quota-objects",
            "20",
            "--quota-mb",
            "2",
            "--max-op-gflops",
            "0.01",
            "--max-calls",
            "16",
        ],
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def guarded(small_server):
    worker = sy.RemoteWorker(
        sy.TorchHook(torch), id="guarded", port=small_server.port, token=TOKEN, timeout=20
    )
    yield worker
    worker.flush()
    worker.close()


def test_an_unauthenticated_message_over_the_size_limit_is_refused_for_its_token(small_server):
    # 4 MB against a 1 MB limit: were the body read first, gRPC would answer
    # RESOURCE_EXHAUSTED; the interceptor answers from the metadata alone.
    with grpc.insecure_channel(
        f"127.0.0.1:{small_server.port}", options=[("grpc.max_send_message_length", 64 * 2**20)]
    ) as channel:
        call = channel.unary_unary(METHOD)
        with pytest.raises(grpc.RpcError) as refused:
            call(bytes(4 * 2**20), timeout=10, metadata=[("authorization", "Bearer wrong")])
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _stalled_call(
    channel: grpc.Channel,
    release: threading.Event,
    metadata: list,
    first: bytes | None = bytes(2**20),
) -> object:
    """A call that sends `first` (if anything) and then never finishes its request."""

    def chunks():
        if first is not None:
            yield first
        release.wait(30)
        return
        yield

    return channel.stream_unary(METHOD).future(chunks(), timeout=30, metadata=metadata)


def test_the_token_is_refused_before_the_message_is_even_complete(small_server):
    release = threading.Event()
    with grpc.insecure_channel(f"127.0.0.1:{small_server.port}") as channel:
        try:
            future = _stalled_call(channel, release, [("authorization", "Bearer wrong")])
            error = future.exception(timeout=20)  # answered while the request is still open
        finally:
            release.set()
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_stalled_unauthenticated_calls_do_not_stop_a_legitimate_caller(small_server, guarded):
    release = threading.Event()
    channels = [grpc.insecure_channel(f"127.0.0.1:{small_server.port}") for _ in range(4)]
    try:
        stalled = []
        for i in range(24):  # more than the server's threads and its call cap, all left open
            stalled.append(
                _stalled_call(channels[i % 4], release, [("authorization", "Bearer no")])
            )
            # One at a time: gRPC checks its cap of calls at once before a refusal has run,
            # so a burst could be turned away as too many (RESOURCE_EXHAUSTED), and so could
            # the legitimate call below, while refusals still wait for a thread.
            assert stalled[-1].exception(timeout=60).code() == grpc.StatusCode.UNAUTHENTICATED
        x = torch.tensor([1.0, 2.0]).send(guarded)
        assert torch.equal((x + 1).get(), torch.tensor([2.0, 3.0]))
    finally:
        release.set()
        for channel in channels:
            channel.close()


# ---- time and work --------------------------------------------------------------------------


class _Context:
    def __init__(self, token: str = TOKEN, remaining: float = 10.0) -> None:
        self.token, self.remaining = token, remaining

    def invocation_metadata(self):
        return (("authorization", f"Bearer {self.token}"),)

    def time_remaining(self):
        return self.remaining


def _servicer(**limits) -> WorkerServicer:
    return WorkerServicer(
        sy.VirtualWorker(None, id="local"),
        Callers([Caller("client", TOKEN)]),
        limits=Limits(**limits),
    )


def _call(
    servicer: WorkerServicer,
    header: dict,
    tensors: dict | None = None,
    context: _Context | None = None,
) -> tuple[dict, dict]:
    return protocol.unpack(servicer.call(protocol.pack(header, tensors), context or _Context()))


def test_a_call_that_cannot_get_the_lock_before_its_deadline_does_nothing():
    servicer = _servicer()
    answer, _ = _call(
        servicer, {"command": "register", "requires_grad": [False]}, {"t0": torch.zeros(3)}
    )
    x = answer["ok"][0]
    add = {"command": "run", "op": "Tensor.add_", "args": {"$tuple": [{"$ref": x["id"]}, 1.0]}}
    with servicer.lock:  # another call holds the worker for longer than this call may wait
        answer, _ = _call(servicer, add, context=_Context(remaining=0.2))
    assert answer["error"]["type"] == "TimeoutError"
    assert "nothing was done" in answer["error"]["message"]
    assert torch.equal(servicer.worker.store.lookup(x["id"] & 0xFFFFFFFF), torch.zeros(3))
    answer, _ = _call(servicer, add)  # and the worker is free again afterwards
    assert "ok" in answer and torch.equal(
        servicer.worker.store.lookup(x["id"] & 0xFFFFFFFF), torch.ones(3)
    )


def test_an_operation_over_the_work_limit_is_refused_before_it_runs(guarded):
    a = torch.ones(300, 300).send(guarded)  # 54 MFLOP for a @ a; the limit is 10
    before = dict(guarded.objects)
    with pytest.raises(QuotaExceededError, match="GFLOP"):
        a @ a
    assert dict(guarded.objects) == before
    small = torch.ones(2, 2).send(guarded)
    assert torch.equal((small @ small).get(), torch.full((2, 2), 2.0))


# ---- quotas and the owner -------------------------------------------------------------------


def test_a_caller_cannot_keep_more_objects_or_bytes_than_its_quota(guarded):
    start = len(guarded.objects)
    kept = [torch.zeros(1).send(guarded) for _ in range(15)]
    with pytest.raises(QuotaExceededError, match="20 objects"):
        for _ in range(10):
            kept.append(torch.zeros(1).send(guarded))
    assert len(guarded.objects) == start + 20
    del kept[:10]  # dropping pointers frees their objects and gives the room back
    guarded.flush()
    more = [torch.zeros(1).send(guarded) for _ in range(10)]
    assert len(guarded.objects) == start + 20
    del kept, more
    guarded.flush()
    halves = [torch.zeros(125_000).send(guarded) for _ in range(4)]  # 4 x 0.5 MB: the quota
    with pytest.raises(QuotaExceededError, match="MB"):
        torch.zeros(125_000).send(guarded)
    assert len(guarded.objects) == start + 4
    del halves


def test_an_operation_whose_result_would_overflow_the_quota_is_refused_before_it_runs(guarded):
    x = torch.ones(2**17).send(guarded)  # 0.5 MB
    before = dict(guarded.objects)
    with pytest.raises(QuotaExceededError, match="would make"):
        x.repeat(8)  # 4 MB
    assert dict(guarded.objects) == before


def test_only_the_owner_may_load_data_and_it_is_not_charged(small_server, guarded):
    with pytest.raises(PermissionError, match="data owner"):
        guarded.load(torch.ones(3), tag="#mine")
    assert guarded.search("#mine") == []
    owner = sy.RemoteWorker(None, id="guarded", port=small_server.port, token="owner-t")
    try:
        loaded = [
            owner.load(torch.ones(200_000), tag="#big", private=True) for _ in range(3)
        ]  # 3 x 0.8 MB: more than a caller's quota of 2 MB
        found = guarded.search("#big")
        assert [p.id_at_location for p in found] == [p.id_at_location for p in loaded]
        found = found[0]
        with pytest.raises(PermissionError):
            found.get()
    finally:
        owner.close()


# ---- fetch is all or nothing ----------------------------------------------------------------


def test_a_model_over_the_message_limit_stays_whole_on_the_worker(guarded):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(400, 400), nn.Linear(400, 400))  # 2 x 640 kB, limit 1 MB
    expected = [p.detach().clone() for p in model.parameters()]
    model.send(guarded)
    before = dict(guarded.objects)
    with pytest.raises(protocol.ProtocolError, match="Nothing was fetched"):
        model.get()
    assert dict(guarded.objects) == before
    for pointer, value in zip(model.parameters(), expected):
        assert torch.equal(pointer.get(), value)  # one at a time, each under the limit


def test_a_fetch_naming_an_object_twice_is_refused_and_changes_nothing(small_server, guarded):
    x = torch.tensor([4.0, 5.0]).send(guarded)
    with grpc.insecure_channel(f"127.0.0.1:{small_server.port}") as channel:
        reply = channel.unary_unary(METHOD)(
            protocol.pack({"command": "fetch", "ids": [x.id_at_location, x.id_at_location]}),
            timeout=10,
            metadata=[("authorization", f"Bearer {TOKEN}")],
        )
    assert protocol.unpack(reply)[0]["error"]["type"] == "ProtocolError"
    assert torch.equal(x.get(), torch.tensor([4.0, 5.0]))


# ---- streams: checked as they arrive, kept only whole ----------------------------------------

MiB = 2**20


class _Chunks:
    """A request stream: a header announcing `announced` float32 values, then `chunks`
    chunks of `size` bytes each; counts how many the server took."""

    def __init__(self, announced: int, chunks: int, size: int = MiB, fail_after: int = -1):
        self.head = protocol.stream_head(
            {"command": "register", "requires_grad": [False]},
            {"t0": torch.empty(announced)},
        )
        self.chunks, self.size, self.fail_after, self.taken = chunks, size, fail_after, 0

    def __iter__(self):
        yield self.head
        for i in range(self.chunks):
            if i == self.fail_after:
                raise grpc.RpcError("the caller went away")  # what gRPC raises on a cancel
            self.taken += 1
            yield bytes(range(256)) * (self.size // 256)


def _stream(servicer: WorkerServicer, requests, context: _Context | None = None):
    replies = iter(servicer.stream(iter(requests), context or _Context()))
    incoming = protocol.Incoming(next(replies), 2**30)
    for chunk in replies:
        incoming.add(chunk)
    return incoming.finish()


def _holds_nothing(servicer: WorkerServicer) -> bool:
    return not servicer.worker.objects and servicer.ledger.used("client") == (0, 0)


def _still_serves(servicer: WorkerServicer) -> None:
    values = torch.arange(MiB, dtype=torch.float32)  # 4 MB: a stream of its own
    answer, _ = _stream(servicer, protocol.stream(*_register(values)))
    (fetched,) = _stream(
        servicer, protocol.stream({"command": "fetch", "ids": [answer["ok"][0]["id"]]})
    )[1].values()
    assert torch.equal(fetched, values)


def _register(tensor: torch.Tensor) -> tuple[dict, dict]:
    return {"command": "register", "requires_grad": [False]}, {"t0": tensor}


def test_a_large_fetch_by_call_is_answered_ask_by_stream_and_changes_nothing():
    servicer = _servicer()
    values = torch.arange(MiB, dtype=torch.float32)  # 4 MB
    answer, _ = _stream(servicer, protocol.stream(*_register(values)))
    fetch = {"command": "fetch", "ids": [answer["ok"][0]["id"]]}
    assert _call(servicer, fetch)[0] == {"ok": {"stream": True}}
    assert len(servicer.worker.objects) == 1
    (fetched,) = _stream(servicer, protocol.stream(fetch))[1].values()
    assert torch.equal(fetched, values) and _holds_nothing(servicer)


def test_a_stream_over_the_message_limit_is_refused_before_any_chunk():
    servicer = _servicer(max_message=8 * MiB)
    chunks = _Chunks(announced=4 * MiB, chunks=16)  # 16 MB announced
    answer, _ = _stream(servicer, chunks)
    assert (
        answer["error"]["type"] == "ProtocolError" and "message limit" in answer["error"]["message"]
    )
    assert chunks.taken == 0 and _holds_nothing(servicer)
    _still_serves(servicer)


def test_a_stream_sending_more_than_it_announced_is_cut_off_at_once():
    servicer = _servicer(max_message=8 * MiB)
    chunks = _Chunks(announced=1000, chunks=64)  # 4 kB announced, 64 MB sent
    answer, _ = _stream(servicer, chunks)
    assert answer["error"]["type"] == "ProtocolError" and "announced" in answer["error"]["message"]
    assert chunks.taken == 1 and _holds_nothing(servicer)
    _still_serves(servicer)


def test_a_stream_over_the_callers_quota_is_refused_before_any_chunk():
    servicer = _servicer(max_bytes=2 * MiB)
    chunks = _Chunks(announced=MiB, chunks=4)  # 4 MB, under the message limit
    answer, _ = _stream(servicer, chunks)
    assert answer["error"]["type"] == "QuotaExceededError"
    assert chunks.taken == 0 and _holds_nothing(servicer)


@pytest.mark.parametrize("fail_after", [None, 2])
def test_an_interrupted_stream_leaves_nothing_behind(fail_after):
    servicer = _servicer()
    if fail_after is None:  # the caller stops sending: 3 of 4 chunks arrive
        chunks = _Chunks(announced=MiB, chunks=3)
    else:  # the caller goes away mid-stream
        chunks = _Chunks(announced=MiB, chunks=4, fail_after=fail_after)
    answer, _ = _stream(servicer, chunks)
    assert "error" in answer and _holds_nothing(servicer)
    _still_serves(servicer)


def test_a_stream_past_its_deadline_is_dropped_and_keeps_nothing():
    servicer = _servicer()
    answer, _ = _stream(servicer, _Chunks(announced=MiB, chunks=4), _Context(remaining=-1.0))
    assert answer["error"]["type"] == "TimeoutError" and _holds_nothing(servicer)


def test_a_stream_of_bytes_that_are_not_booleans_is_refused():
    servicer = _servicer()
    head = protocol.stream_head(*_register(torch.zeros(MiB, dtype=torch.bool)))
    answer, _ = _stream(servicer, [head, bytes([2]) * MiB])
    assert answer["error"]["type"] == "ProtocolError" and _holds_nothing(servicer)


def test_a_stream_without_a_token_is_refused_while_its_first_chunk_is_still_unsent(small_server):
    release = threading.Event()
    sent: list[int] = []

    def requests():
        yield protocol.stream_head(*_register(torch.zeros(MiB)))
        release.wait(30)  # the server answers before this chunk exists
        sent.append(1)
        yield bytes(4 * MiB)

    with grpc.insecure_channel(f"127.0.0.1:{small_server.port}") as channel:
        try:
            replies = channel.stream_stream(protocol.STREAM)(
                requests(), timeout=20, metadata=[("authorization", "Bearer wrong")]
            )
            with pytest.raises(grpc.RpcError) as refused:
                list(replies)
            # Read before releasing: once released, gRPC's sending thread may
            # still pull the chunk from the generator, after the refusal.
            sent_before_refusal = list(sent)
        finally:
            release.set()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert sent_before_refusal == []


def test_a_real_stream_over_the_limit_is_cut_off_and_the_server_serves_on(small_server, guarded):
    before = dict(guarded.objects)
    chunks = _Chunks(announced=1000, chunks=64)  # the server's limit is 1 MB
    with grpc.insecure_channel(f"127.0.0.1:{small_server.port}") as channel:
        replies = channel.stream_stream(protocol.STREAM)(
            iter(chunks), timeout=20, metadata=[("authorization", f"Bearer {TOKEN}")]
        )
        answer = protocol.Incoming(next(replies), MiB).header
    assert answer["error"]["type"] == "ProtocolError"
    assert chunks.taken < 64  # cut off, not read to the end
    assert dict(guarded.objects) == before
    x = torch.tensor([1.0, 2.0]).send(guarded)
    assert torch.equal((x * 3).get(), torch.tensor([3.0, 6.0]))


# ---- ids are new for every run of a server ------------------------------------------------


def test_a_pointer_from_before_a_restart_fails_naming_the_restart():
    hook = sy.TorchHook(torch)
    first = sy.WorkerProcess("henry", token=TOKEN)
    try:
        henry = sy.RemoteWorker(hook, id="henry", port=first.port, token=TOKEN, timeout=10)
        old = torch.tensor([1.0, 2.0]).send(henry)
    finally:
        first.stop()
    second = sy.WorkerProcess("henry", port=first.port, token=TOKEN)
    try:
        other = sy.RemoteWorker(hook, id="henry", port=second.port, token=TOKEN, timeout=10)
        new = torch.tensor([7.0, 8.0]).send(other)  # the first object of this run, too
        with pytest.raises(protocol.WorkerRestartedError, match="restarted"):
            old.get()
        with pytest.raises(protocol.WorkerRestartedError):
            old + 1
        del old  # its free reaches the new run and must not touch the new object
        henry.flush()
        assert torch.equal(new.get(), torch.tensor([7.0, 8.0]))
        henry.close()
        other.close()
    finally:
        second.stop()


# ---- the commands that start a server -------------------------------------------------------


@pytest.mark.parametrize("module", ["federated.server", "federated.worker", None])
def test_each_way_to_start_a_server_works_without_a_warning(module):
    if module is None:  # the console script
        script = shutil.which("federated-worker", path=os.path.dirname(sys.executable))
        assert script is not None, "pip install -e . installs the federated-worker command"
        command = [script]
    else:
        command = [sys.executable, "-m", module]
    process = subprocess.Popen(  # port 0: the server's pick, so no other process took it
        [*command, "--id", "ivy", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        served = process.stdout.readline().strip()
        assert served.startswith("worker ivy serving on 127.0.0.1:"), served
        port = int(served.rsplit(":", 1)[1])
        assert port > 0
        ivy = sy.RemoteWorker(None, id="ivy", port=port, timeout=30)
        assert ivy.ping() == "ivy"
        ivy.close()
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Warning" not in err and "found in sys.modules" not in err, err


def test_stalled_calls_with_a_valid_token_are_cut_off_and_others_served_again():
    process = sy.WorkerProcess(
        "stalled", token=TOKEN, extra_args=["--call-timeout", "1", "--max-calls", "4"]
    )
    release = threading.Event()
    channel = grpc.insecure_channel(f"127.0.0.1:{process.port}")
    try:
        stalled = [
            _stalled_call(channel, release, [("authorization", f"Bearer {TOKEN}")], first=None)
            for _ in range(4)
        ]  # every call the server allows at once, never sent
        worker = sy.RemoteWorker(None, id="stalled", port=process.port, token=TOKEN, timeout=5)
        answered = None
        deadline = time.monotonic() + 120  # the stalled calls end within 2 x --call-timeout
        while answered is None:
            try:
                answered = worker.ping()
            except sy.WorkerUnreachableError:
                if time.monotonic() > deadline:
                    raise
                release.wait(0.5)
        worker.close()
        assert answered == "stalled"
        assert all(f.exception(timeout=60) is not None for f in stalled)
    finally:
        release.set()
        channel.close()
        process.stop()
