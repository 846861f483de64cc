"""A worker in its own process: `python -m federated.worker --id bob --port 8777`.

The server keeps a `VirtualWorker` (the object table and the rules about private data)
and answers one gRPC method, `/federated.Worker/Call`, whose request and reply are the
messages of `federated.protocol`. It runs only allow-listed torch operations, checks a
token on every call, listens on loopback unless told otherwise, and refuses messages
over a size limit. A bad message gets an error reply; the server keeps serving.
"""

from __future__ import annotations

import argparse
import hmac
import signal
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import torch
from safetensors.torch import load_file

from federated import protocol
from federated.protocol import DEFAULT_MAX_MESSAGE, METHOD, ProtocolError, Ref
from federated.virtual_worker import VirtualWorker

__all__ = ["DEFAULT_MAX_MESSAGE", "METHOD", "WorkerServicer", "main", "serve"]


class WorkerServicer:
    """Decodes a request, runs it on the worker, encodes the reply. One call at a time."""

    def __init__(self, worker: VirtualWorker, token: str | None) -> None:
        self.worker, self.token = worker, token
        self.lock = threading.Lock()

    def call(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        if self.token is not None:
            sent = dict(context.invocation_metadata()).get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {self.token}".encode()):
                return protocol.pack({"error": {"type": "PermissionError",
                                                "message": "wrong or missing token"}})
        try:
            header, tensors = protocol.unpack(request)
            with self.lock:
                reply, out = self.handle(header, tensors)
            return protocol.pack({"ok": reply}, out)
        except Exception as error:  # every failure is reported; the server goes on
            return protocol.pack({"error": {"type": type(error).__name__,
                                            "message": str(error)[:4000]}})

    # ---- commands -------------------------------------------------------------------------

    def handle(self, header: dict, tensors: dict[str, torch.Tensor]) -> tuple[Any, dict]:
        command = header.get("command")
        frees = header.get("free", [])
        if not (isinstance(frees, list) and all(type(i) is int for i in frees)):
            raise ProtocolError("free is a list of ids")
        for obj_id in frees:
            self.worker.free(obj_id)
        handler = getattr(self, f"do_{command}", None) if isinstance(command, str) else None
        if handler is None:
            raise ProtocolError(f"unknown command {command!r}")
        return handler(header, tensors)

    def do_ping(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        return {"id": self.worker.id}, {}

    def do_register(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        """Keep the tensors sent (`t0`, `t1`, ... with gradients `g0`, ...)."""
        flags = header.get("requires_grad", [])
        if not isinstance(flags, list) or len(flags) != sum(k.startswith("t") for k in tensors):
            raise ProtocolError("register needs one requires_grad flag per tensor")
        refs = []
        for i, flag in enumerate(flags):
            if f"t{i}" not in tensors:
                raise ProtocolError(f"tensor t{i} missing")
            tensor = tensors[f"t{i}"]
            if flag and tensor.dtype.is_floating_point:
                tensor.requires_grad_(True)
                if f"g{i}" in tensors:
                    tensor.grad = tensors[f"g{i}"]
            refs.append(protocol.describe(_ref_to(self.worker, tensor)))
        return refs, {}

    def do_run(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        func = protocol.op_func(header.get("op"))
        args = protocol.decode(header.get("args", {"$tuple": []}), self._ref)
        kwargs = protocol.decode(header.get("kwargs", {"$dict": []}), self._ref)
        if not isinstance(args, tuple) or not isinstance(kwargs, dict):
            raise ProtocolError("args is a tuple and kwargs a dict")
        with torch.set_grad_enabled(bool(header.get("grad", True))):
            result = self.worker.executor.run(func, args, kwargs, _new_ref, _refresh_ref)
        return encode_result(result), {}

    def do_fetch(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        ids = _ids(header)
        objs = self.worker.fetch_many(ids)
        out, flags, pointers = {}, [], {}
        for i, obj in enumerate(objs):
            if hasattr(obj, "location"):  # a pointer on to another worker: hand it over
                pointers[i] = {"to": obj.location.address, "target": protocol.describe(
                    Ref(obj.id_at_location, tuple(obj.shape), obj.dtype))}
                obj._retire("handed to the caller")
                flags.append(False)
                continue
            out[f"t{i}"] = obj.detach()
            if obj.grad is not None:
                out[f"g{i}"] = obj.grad.detach()
            flags.append(bool(obj.requires_grad))
        return {"requires_grad": flags, "pointers": {str(k): v for k, v in pointers.items()}}, out

    def do_copy(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        (obj_id,) = _ids(header)
        pointer = self.worker.copy_object(obj_id)
        ref = Ref(pointer.id_at_location, tuple(pointer.shape), pointer.dtype)
        pointer._retire("handed to the caller")  # the caller's pointer owns it now
        return protocol.describe(ref), {}

    def do_move(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        """Send an object straight to another worker server."""
        (obj_id,) = _ids(header)
        destination = self._peer(header.get("to"))
        return {"id": self.worker.move_object(obj_id, destination)}, {}

    def do_remote_get(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        (obj_id,) = _ids(header)
        self.worker.remote_get(obj_id)
        obj = self.worker.store.lookup(obj_id)
        return protocol.describe(Ref(obj_id, tuple(obj.shape), obj.dtype)), {}

    def do_hold_pointer(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        """Keep a pointer to an object on another worker (a chain)."""
        from federated.pointer import PointerTensor

        peer = self._peer(header.get("to"))
        target = protocol.ref_from(header.get("target"))
        pointer = PointerTensor(peer, target.id_at_location, target.shape, target.dtype)
        return protocol.describe(_ref_to(self.worker, pointer)), {}

    def do_objects(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        return [dict(protocol.describe(Ref(i, tuple(o.shape), o.dtype)),
                     private=self.worker.is_private(i), pointer=hasattr(o, "location"))
                for i, o in self.worker.objects.items()], {}

    def do_search(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        tags = header.get("tags", [])
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            raise ProtocolError("tags is a list of strings")
        objs = self.worker.objects
        return [protocol.describe(Ref(i, tuple(objs[i].shape), objs[i].dtype))
                for i in self.worker.search_ids(*tags)], {}

    def do_load(self, header: dict, tensors: dict) -> tuple[Any, dict]:
        if "t0" not in tensors:
            raise ProtocolError("load needs a tensor t0")
        tags = header.get("tags", [])
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            raise ProtocolError("tags is a list of strings")
        pointer = self.worker.load(tensors["t0"], tag=tags,
                                   private=bool(header.get("private", False)),
                                   description=str(header.get("description", "")))
        return protocol.describe(Ref(pointer.id_at_location, tuple(pointer.shape),
                                     pointer.dtype)), {}

    # ---- helpers --------------------------------------------------------------------------

    def _ref(self, obj_id: int) -> Ref:
        obj = self.worker.store.lookup(obj_id)  # the real shape: privacy rules compare sizes
        return Ref(obj_id, tuple(obj.shape), obj.dtype)

    def _peer(self, address: Any) -> Any:
        from federated.remote import peer

        return peer(address)


def _ref_to(worker: VirtualWorker, obj: Any) -> Ref:
    return Ref(worker.store.register(obj), tuple(obj.shape), obj.dtype)


def _new_ref(obj_id: int, obj: torch.Tensor) -> Ref:
    return Ref(obj_id, tuple(obj.shape), obj.dtype)


def _refresh_ref(ref: Ref, real: torch.Tensor) -> Ref:
    return Ref(ref.id_at_location, tuple(real.shape), real.dtype)


def encode_result(value: Any) -> Any:
    """A result for the reply: references with their shape and dtype, plain values."""
    if isinstance(value, Ref):
        return {"$obj": protocol.describe(value)}
    if isinstance(value, tuple) and hasattr(value, "n_fields"):  # torch.return_types
        return {"$return": [type(value).__name__, [encode_result(v) for v in value]]}
    if isinstance(value, (tuple, list)):
        key = "$tuple" if isinstance(value, tuple) else "$list"
        return {key: [encode_result(v) for v in value]}
    return protocol.encode(value, _no_tensor)


def _no_tensor(value: Any) -> Any:
    raise ProtocolError("a tensor result must be a reference")


def _ids(header: dict) -> list[int]:
    ids = header.get("ids")
    if not (isinstance(ids, list) and ids and all(type(i) is int for i in ids)):
        raise ProtocolError("ids is a non-empty list of integers")
    return ids


# ---- running a server ------------------------------------------------------------------------

def serve(worker_id: str, port: int, host: str = "127.0.0.1", token: str | None = None,
          data: Path | None = None, private: bool = False,
          max_message: int = DEFAULT_MAX_MESSAGE,
          tls: tuple[Path, Path] | None = None) -> grpc.Server:
    """Start serving in this process; returns the started gRPC server.

    `tls` is (certificate, private key), PEM files: then the connection is encrypted and
    callers check the certificate (`RemoteWorker(..., tls_root=certificate)`).
    """
    loopback = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
    if not loopback and token is None:
        raise SystemExit(f"refusing to serve on {host} without --token-file")
    worker = VirtualWorker(None, id=worker_id)
    if data is not None:
        for name, tensor in load_file(str(data)).items():
            worker.load(tensor, tag=name, private=private)
    servicer = WorkerServicer(worker, token)
    handler = grpc.method_handlers_generic_handler("federated.Worker", {
        "Call": grpc.unary_unary_rpc_method_handler(servicer.call)})
    options = [("grpc.max_receive_message_length", max_message),
               ("grpc.max_send_message_length", max_message)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=options)
    server.add_generic_rpc_handlers((handler,))
    if tls is not None:
        certificate, key = (Path(p).read_bytes() for p in tls)
        bound = server.add_secure_port(f"{host}:{port}",
                                       grpc.ssl_server_credentials([(key, certificate)]))
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise SystemExit(f"cannot listen on {host}:{port}")
    server.start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m federated.worker",
                                     description="Serve a federated worker over gRPC.")
    parser.add_argument("--id", required=True, help="the worker's name, e.g. bob")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    parser.add_argument("--token-file", type=Path, help="file holding the shared token")
    parser.add_argument("--data", type=Path, help="safetensors file: each tensor is loaded, "
                        "tagged with its name")
    parser.add_argument("--private", action="store_true", help="load --data as private")
    parser.add_argument("--max-message-mb", type=int, default=DEFAULT_MAX_MESSAGE // 2**20)
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate: serve over TLS")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    token = args.token_file.read_text().strip() if args.token_file else None
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    server = serve(args.id, args.port, args.host, token, args.data, args.private,
                   args.max_message_mb * 2**20, tls)
    print(f"worker {args.id} serving on {args.host}:{args.port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()
