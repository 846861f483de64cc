"""Loopback costs of a worker in another process, next to gRPC on its own.

- the round trip of one small operation through a pointer (median of many);
- the rate at which a 100 MB tensor reaches a worker with `tensor.send(bob)`, next to
  sending the same 100 MB as raw bytes through a bare gRPC method to a server process
  that only acknowledges them.
Run: `make benchmark` (or python benchmarks/remote.py).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap
import time

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
    handler = grpc.method_handlers_generic_handler("bare.Sink", {
        "Put": grpc.unary_unary_rpc_method_handler(lambda request, context: b"ok")})
    options = [("grpc.max_receive_message_length", 512 * 2**20)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=options)
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    server.start()
    print("ready", flush=True)
    threading.Event().wait()
""")


def round_trip(bob: sy.RemoteWorker, n: int = 300) -> float:
    x = torch.ones(4).send(bob)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        x.add_(1)  # one request, one reply, nothing new on the worker
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def send_rate(bob: sy.RemoteWorker, repeats: int = 5) -> float:
    tensor = torch.zeros(SIZE // 4)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pointer = tensor.send(bob)
        times.append(time.perf_counter() - start)
        del pointer
        bob.flush()
    return SIZE / MB / statistics.median(times)


def bare_rate(repeats: int = 5) -> float:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", _BARE_SERVER, str(port)],
                               stdout=subprocess.PIPE)
    try:
        process.stdout.readline()
        options = [("grpc.max_send_message_length", 512 * 2**20)]
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            put = channel.unary_unary("/bare.Sink/Put")
            payload = bytes(SIZE)
            put(b"warm-up", timeout=30)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                put(payload, timeout=60)
                times.append(time.perf_counter() - start)
        return SIZE / MB / statistics.median(times)
    finally:
        process.kill()
        process.wait()


def main() -> None:
    with sy.WorkerProcess("bob") as process:
        bob = sy.RemoteWorker(sy.TorchHook(torch), id="bob", port=process.port)
        trip = round_trip(bob)
        ours = send_rate(bob)
        bob.close()
    bare = bare_rate()
    print(f"round trip of one small op (median): {trip * 1e6:.0f} us")
    print(f"100 MB tensor.send(bob): {ours:.0f} MB/s; bare gRPC bytes: {bare:.0f} MB/s; "
          f"ratio {bare / ours:.2f}")


if __name__ == "__main__":
    main()
