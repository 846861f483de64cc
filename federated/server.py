"""A worker in its own process: `python -m federated.server --id bob --port 8777`.

(Also installed as the `federated-worker` command; `python -m federated.worker` runs the
same.) The server keeps a `VirtualWorker` and answers two gRPC methods, `Call` for one
message and `Stream` for a large one in chunks, whose requests and replies are the messages
of `federated.protocol` (see `servicer.py` for the commands).
What it guarantees to the data owner running it:

- it listens on loopback unless told otherwise, and off loopback it needs a token and
  TLS (or the operator's explicit `--insecure-off-loopback`);
- a call without a known token is refused before its message is read;
- at most `--max-calls` calls run at once, each within a time limit, each operation within
  a work limit, each caller within a quota of objects and bytes;
- it reaches only the peers its operator configured, with their own tokens;
- it runs allow-listed torch operations and nothing else, never unpickles, and its
  worker's privacy policy decides what may leave.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from safetensors.torch import load_file

from federated.access import Caller, Callers, TokenCheck, read_token, stderr
from federated.language import tr
from federated.peers import Peer, Peers, parse_named, peers_from_flags
from federated.protocol import DEFAULT_MAX_MESSAGE
from federated.servicer import Limits, WorkerServicer
from federated.virtual_worker import VirtualWorker

_THREADS = 8


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class RunningServer:
    """A started server: `grpc` is gRPC's server, `servicer` what answers the calls,
    `port` the one it listens on (the system's pick when asked for port 0)."""

    grpc: grpc.Server
    servicer: WorkerServicer
    port: int

    def stop(self, grace: float = 1.0) -> None:
        self.grpc.stop(grace).wait()
        self.servicer.peers.close()


def serve(
    worker_id: str,
    port: int,
    host: str = "127.0.0.1",
    *,
    callers: Sequence[Caller] = (),
    peers: Sequence[Peer] = (),
    data: Path | None = None,
    private: bool = False,
    limits: Limits | None = None,
    tls: tuple[Path, Path] | None = None,
    insecure_off_loopback: bool = False,
) -> RunningServer:
    """Start serving in this process.

    `callers` are the identities allowed in, each with its own token (none: a loopback
    server for its one user). `tls` is (certificate, private key), PEM files: callers then
    check the certificate (`RemoteWorker(..., tls_root=certificate)`).
    """
    limits = limits or Limits()
    if not is_loopback(host):
        if not callers:
            raise SystemExit(
                tr(
                    "refusing to serve on {host} without a token: pass --token-file (and "
                    "TLS: --tls-cert, --tls-key)",
                    host=host,
                )
            )
        if tls is None and not insecure_off_loopback:
            raise SystemExit(
                tr(
                    "refusing to serve on {host} without TLS: the token and the data would "
                    "cross the network in the clear. Pass --tls-cert and --tls-key, or "
                    "--insecure-off-loopback if this network is private and you accept that.",
                    host=host,
                )
            )
    for peer in peers:
        if peer.port == port and is_loopback(peer.host) and is_loopback(host):
            raise SystemExit(tr("--peer {name} is this server's own address", name=peer.name))
    worker = VirtualWorker(None, id=worker_id)
    if data is not None:
        for name, tensor in load_file(str(data)).items():
            worker.load(tensor, tag=name, private=private)
    servicer = WorkerServicer(worker, Callers(list(callers)), limits=limits)
    servicer.peers = Peers(list(peers), worker_id, servicer.boot, limits.call_timeout)
    handler = grpc.method_handlers_generic_handler(
        "federated.Worker",
        {
            "Call": grpc.unary_unary_rpc_method_handler(servicer.call),
            "Stream": grpc.stream_stream_rpc_method_handler(servicer.stream),
        },
    )
    # A connection lives at most one call time limit, and its calls get one more to end:
    # so a caller that never finishes its message (even with a valid token) holds a thread
    # for at most twice --call-timeout. Channels reconnect by themselves.
    age_ms = int(limits.call_timeout * 1000)
    options = [
        ("grpc.max_receive_message_length", limits.max_message),
        ("grpc.max_send_message_length", limits.max_message),
        ("grpc.max_connection_age_ms", age_ms),
        ("grpc.max_connection_age_grace_ms", age_ms),
        # gRPC lets a second server bind a port already served (SO_REUSEPORT), and the
        # kernel then splits the callers between the two: refuse instead.
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=_THREADS),
        interceptors=[TokenCheck(servicer.callers)],
        options=options,
        maximum_concurrent_rpcs=limits.max_calls,
    )
    server.add_generic_rpc_handlers((handler,))
    try:
        if tls is not None:
            certificate, key = (Path(p).read_bytes() for p in tls)
            bound = server.add_secure_port(
                f"{host}:{port}", grpc.ssl_server_credentials([(key, certificate)])
            )
        else:
            bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # what grpcio raises, where older versions returned 0
        bound = 0
    if bound == 0:
        raise SystemExit(
            tr(
                "cannot listen on {host}:{port}: the port may be in use, or the address "
                "may not be this machine's. Choose another `--port`, or check `--host`.",
                host=host,
                port=port,
            )
        )
    server.start()
    return RunningServer(server, servicer, bound)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="federated-worker", description="Serve a federated worker over gRPC."
    )
    p.add_argument("--id", required=True, help="the worker's name, e.g. bob")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    who = p.add_argument_group("who may call")
    who.add_argument("--token-file", type=Path, help="the token of the caller named 'client'")
    who.add_argument(
        "--caller",
        action="append",
        metavar="NAME=FILE",
        help="another caller (e.g. a peer worker) with its own token file",
    )
    who.add_argument(
        "--owner-token-file",
        type=Path,
        help="the data owner's token: the only caller who may `load` data",
    )
    peers = p.add_argument_group("peers: the only workers this one sends to or points to")
    peers.add_argument("--peer", action="append", metavar="NAME=HOST:PORT")
    peers.add_argument(
        "--peer-token-file",
        action="append",
        metavar="NAME=FILE",
        help="the token this worker presents to peer NAME",
    )
    peers.add_argument(
        "--peer-tls-root",
        action="append",
        metavar="NAME=FILE",
        help="the PEM certificate peer NAME serves with",
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--data", type=Path, help="safetensors file: each tensor is loaded, tagged with its name"
    )
    data.add_argument("--private", action="store_true", help="load --data as private")
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-message-mb", type=int, default=DEFAULT_MAX_MESSAGE // 2**20)
    lim.add_argument(
        "--call-timeout",
        type=float,
        default=Limits.call_timeout,
        help="seconds any one call may take (default %(default)s)",
    )
    lim.add_argument(
        "--max-calls",
        type=int,
        default=Limits.max_calls,
        help="calls served at once; more are refused (default %(default)s)",
    )
    lim.add_argument(
        "--quota-objects",
        type=int,
        default=Limits.max_objects,
        help="objects each caller may keep (default %(default)s)",
    )
    lim.add_argument(
        "--quota-mb",
        type=int,
        default=Limits.max_bytes // 2**20,
        help="MB each caller may keep (default %(default)s)",
    )
    lim.add_argument(
        "--max-op-gflops",
        type=float,
        default=Limits.max_op_flops / 1e9,
        help="work of one operation (default %(default)s)",
    )
    net = p.add_argument_group("network")
    net.add_argument("--tls-cert", type=Path, help="PEM certificate: serve over TLS")
    net.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    net.add_argument(
        "--insecure-off-loopback",
        action="store_true",
        help="serve off loopback without TLS (tokens and data in the clear)",
    )
    return p


def callers_from_flags(args: argparse.Namespace) -> list[Caller]:
    callers = []
    if args.token_file:
        callers.append(Caller("client", read_token(args.token_file, stderr)))
    for name, path in parse_named(args.caller, "--caller").items():
        if name in ("client", "owner"):
            raise SystemExit(tr("--caller {name}: that name is taken, choose another", name=name))
        callers.append(Caller(name, read_token(Path(path), stderr)))
    if args.owner_token_file:
        callers.append(Caller("owner", read_token(args.owner_token_file, stderr), owner=True))
    return callers


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser().error("--tls-cert and --tls-key go together")
    limits = Limits(
        max_message=args.max_message_mb * 2**20,
        call_timeout=args.call_timeout,
        max_objects=args.quota_objects,
        max_bytes=args.quota_mb * 2**20,
        max_op_flops=args.max_op_gflops * 1e9,
        max_calls=args.max_calls,
    )
    running = serve(
        args.id,
        args.port,
        args.host,
        callers=callers_from_flags(args),
        peers=peers_from_flags(args.peer, args.peer_token_file, args.peer_tls_root),
        data=args.data,
        private=args.private,
        limits=limits,
        tls=(args.tls_cert, args.tls_key) if args.tls_cert else None,
        insecure_off_loopback=args.insecure_off_loopback,
    )
    print(f"worker {args.id} serving on {args.host}:{running.port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    running.stop()


if __name__ == "__main__":
    main()
