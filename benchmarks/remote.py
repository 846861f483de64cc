"""Loopback costs of a worker in another process, next to bare gRPC in the same run.

- the round trip of one small operation through a pointer (`x.add_(1)`), against a bare
  gRPC call of a few bytes to a server process that only acknowledges it;
- the rate at which a 100 MB tensor reaches a worker with `tensor.send(bob)`, and comes
  back with `pointer.get()`, against the same 100 MB as raw bytes through a bare gRPC
  method, both as one message (what a worker server did before) and as a stream of
  1 MiB chunks (what it does now). The bare server keeps nothing and hands back bytes it
  made in advance, so it does the least work any server could; bare bytes in chunks are
  the fastest gRPC's Python API moves them, and the honest mark to compare with.

The two are measured interleaved, round by round, and each ratio is the median of the
per-round ratios: on a shared machine the load changes from second to second, and it
changes both sides of a round alike. The worker server runs as deployed: with a token,
so each call passes the token check, the quota and the time limit.
Run: `python benchmarks/remote.py`.
"""

from __future__ import annotations

import secrets
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import grpc
import torch

import federated as sy
from federated.process import free_port

MB = 2**20
SIZE = 100 * MB
_BARE_SERVER = textwrap.dedent("""
    import sys, threading
    from concurrent import futures
    import grpc
    payload = bytes(int(sys.argv[2]))
    handler = grpc.method_handlers_generic_handler("bare.Sink", {
        "Put": grpc.unary_unary_rpc_method_handler(lambda request, context: b"ok"),
        "Get": grpc.unary_unary_rpc_method_handler(lambda request, context: payload),
        "PutStream": grpc.stream_unary_rpc_method_handler(
            lambda requests, context: b"ok" if sum(map(len, requests)) else b""),
        "GetStream": grpc.unary_stream_rpc_method_handler(
            lambda request, context: iter(chunks))})
    chunks = [payload[i : i + 2**20] for i in range(0, len(payload), 2**20)]
    options = [("grpc.max_receive_message_length", 512 * 2**20),
               ("grpc.max_send_message_length", 512 * 2**20)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=options)
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    server.start()
    print("ready", flush=True)
    threading.Event().wait()
""")


def timed(run: Callable[[], object], n: int) -> float:
    """Median seconds of `n` runs."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(rounds: int = 7) -> None:
    token = secrets.token_hex(16)
    port = free_port()
    bare = subprocess.Popen(
        [sys.executable, "-c", _BARE_SERVER, str(port), str(SIZE)], stdout=subprocess.PIPE
    )
    try:
        bare.stdout.readline()
        with (
            sy.WorkerProcess("bob", token=token, extra_args=["--quota-mb", "1024"]) as process,
            grpc.insecure_channel(
                f"127.0.0.1:{port}",
                options=[
                    ("grpc.max_send_message_length", 512 * MB),
                    ("grpc.max_receive_message_length", 512 * MB),
                ],
            ) as channel,
        ):
            bob = sy.RemoteWorker(sy.TorchHook(torch), id="bob", port=process.port, token=token)
            put = channel.unary_unary("/bare.Sink/Put")
            get = channel.unary_unary("/bare.Sink/Get")
            put_stream = channel.stream_unary("/bare.Sink/PutStream")
            get_stream = channel.unary_stream("/bare.Sink/GetStream")
            x = torch.ones(4).send(bob)
            tensor, payload = torch.zeros(SIZE // 4), bytes(SIZE)
            chunks = [payload[i : i + MB] for i in range(0, SIZE, MB)]

            def send() -> None:
                pointer = tensor.send(bob)
                del pointer
                bob.flush()

            def fetch() -> None:
                pointer = tensor.send(bob)
                start = time.perf_counter()
                pointer.get()
                fetches.append(time.perf_counter() - start)

            put(b"warm-up", timeout=30)
            trips, bare_trips, sends, bare_sends, fetches, bare_fetches = [], [], [], [], [], []
            streamed_sends: list[float] = []
            streamed_fetches: list[float] = []
            for _ in range(rounds):
                trips.append(timed(lambda: x.add_(1), 200))
                bare_trips.append(timed(lambda: put(b"0123456789abcdef", timeout=30), 200))
                sends.append(timed(send, 1))
                bare_sends.append(timed(lambda: put(payload, timeout=60), 1))
                fetch()
                bare_fetches.append(timed(lambda: get(b"", timeout=60), 1))
                streamed_sends.append(timed(lambda: put_stream(iter(chunks), timeout=60), 1))
                streamed_fetches.append(
                    timed(lambda: sum(map(len, get_stream(b"", timeout=60))), 1)
                )
            bob.close()
    finally:
        bare.kill()
        bare.wait()
    trip, bare_trip = statistics.median(trips), statistics.median(bare_trips)
    trip_ratio = statistics.median(a / b for a, b in zip(trips, bare_trips))
    print(
        f"round trip of one small op (median): {trip * 1e6:.0f} us; bare gRPC call: "
        f"{bare_trip * 1e6:.0f} us; ratio {trip_ratio:.2f}"
    )
    for what, ours, one, chunked in (
        ("tensor.send(bob)", sends, bare_sends, streamed_sends),
        ("pointer.get()", fetches, bare_fetches, streamed_fetches),
    ):
        print(
            f"100 MB {what}: {SIZE / MB / statistics.median(ours):.0f} MB/s; bare gRPC bytes "
            f"as one message {SIZE / MB / statistics.median(one):.0f} MB/s, in 1 MiB chunks "
            f"{SIZE / MB / statistics.median(chunked):.0f} MB/s; ours reaches "
            f"{statistics.median(b / a for a, b in zip(ours, one)):.0%} and "
            f"{statistics.median(b / a for a, b in zip(ours, chunked)):.0%} of their rates"
        )


if __name__ == "__main__":
    main()
