"""`RemoteWorker`: the same worker interface, for a worker server in another process.

    bob = sy.RemoteWorker(hook, id="bob", host="127.0.0.1", port=8777, token=...)

Pointers cannot tell the difference: everything they ask of a `VirtualWorker` (run an
operation, fetch, free, move, copy) becomes one gRPC call with a deadline; a megabyte of
tensors or more goes, and comes back, as a stream of chunks. A worker that does not
answer in time raises `WorkerUnreachableError` naming it; nothing hangs.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import torch

from federated import errors, protocol
from federated.errors import FederatedError
from federated.language import from_wire, tr
from federated.pointer import GET_GRAD, PointerTensor
from federated.protocol import (
    DEFAULT_MAX_MESSAGE,
    METHOD,
    STREAM,
    STREAM_FROM,
    ProtocolError,
    QuotaExceededError,
    Ref,
    WorkerRestartedError,
)

_ERRORS = {name: getattr(errors, name) for name in errors.__all__} | {
    "ProtocolError": ProtocolError,
    "PermissionError": PermissionError,
    "ValueError": ValueError,
    "TypeError": TypeError,
    "RuntimeError": RuntimeError,
    "IndexError": IndexError,
    "KeyError": LookupError,
    "NotImplementedError": NotImplementedError,
    "OverflowError": OverflowError,
    "ZeroDivisionError": ZeroDivisionError,
    "QuotaExceededError": QuotaExceededError,
    "WorkerRestartedError": WorkerRestartedError,
    "TimeoutError": TimeoutError,
}
# The remote workers made in this process, by id: a worker may hand back a pointer to
# another one (a chain), named only by its id.
_KNOWN: weakref.WeakValueDictionary[str, RemoteWorker] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class RemoteObject:
    """What a caller may know of an object on a remote worker: never its values."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    private: bool
    pointer: bool


class RemoteWorker:
    """A worker served by `python -m federated.server` on `host:port`."""

    def __init__(
        self,
        hook: Any,
        id: str,
        host: str = "127.0.0.1",  # noqa: A002
        port: int = 8777,
        token: str | None = None,
        timeout: float = 30.0,
        max_message: int = DEFAULT_MAX_MESSAGE,
        tls_root: str | bytes | Path | None = None,
    ) -> None:
        self.hook, self.id, self.host, self.port = hook, id, host, port
        self.token, self.timeout, self.max_message = token, timeout, max_message
        options = [
            ("grpc.max_receive_message_length", max_message),
            ("grpc.max_send_message_length", max_message),
            ("grpc.keepalive_time_ms", 30_000),
        ]
        if isinstance(tls_root, (str, Path)) and not str(tls_root).startswith("-----BEGIN"):
            tls_root = Path(tls_root).read_bytes()
        elif isinstance(tls_root, str):
            tls_root = tls_root.encode()
        self.tls_root = tls_root  # the certificate (PEM) the server must present, if any
        if tls_root is None:
            self._channel = grpc.insecure_channel(f"{host}:{port}", options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=tls_root)
            self._channel = grpc.secure_channel(f"{host}:{port}", credentials, options=options)
        self._call = self._channel.unary_unary(METHOD)
        self._stream = self._channel.stream_stream(STREAM)
        self._frees: list[int] = []  # freed ids, sent along with the next call
        self._metadata = [("authorization", f"Bearer {token}")] if token else None
        self._peers: dict[str, RemoteWorker] = {}  # workers we told this one about
        _KNOWN[id] = self

    def __repr__(self) -> str:
        return f"<RemoteWorker id:{self.id} {self.host}:{self.port}>"

    def __deepcopy__(self, memo: dict) -> RemoteWorker:
        return self

    def close(self) -> None:
        self._channel.close()

    # ---- one call ------------------------------------------------------------------------

    def request(
        self,
        header: dict[str, Any],
        tensors: dict[str, torch.Tensor] | None = None,
        stream: bool = False,
    ) -> tuple[Any, dict[str, torch.Tensor]]:
        if self._frees:
            header = dict(header, free=self._frees)
            self._frees = []
        try:
            if stream or protocol.nbytes_of(tensors) >= STREAM_FROM:
                answer, out = self._streamed(header, tensors)
            else:
                answer, out = protocol.unpack(
                    self._call(
                        protocol.pack(header, tensors),
                        timeout=self.timeout,
                        metadata=self._metadata,
                    )
                )
        except grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else None
            details = error.details() if hasattr(error, "details") else ""
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise PermissionError(
                    tr("{worker} refused the call: wrong or missing token", worker=self.id)
                ) from None
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "Concurrent" in str(details):
                raise errors.WorkerUnreachableError(
                    tr(
                        "worker {worker} is serving as many calls as it allows; try again",
                        worker=self.id,
                    )
                ) from None
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise ProtocolError(
                    tr("message to {worker} too large: {details}", worker=self.id, details=details)
                ) from None
            raise errors.WorkerUnreachableError(
                tr(
                    "worker {worker} at {host}:{port} did not answer ({code} within "
                    "{timeout} s). Is its server running? Start it with `python -m "
                    "federated.server --id {worker} --port {port}`.",
                    worker=self.id,
                    host=self.host,
                    port=self.port,
                    code=getattr(code, "name", code),
                    timeout=self.timeout,
                )
            ) from None
        if "error" in answer:
            problem = answer["error"]
            kind = _ERRORS.get(problem.get("type"), FederatedError)
            raise kind(tr("on {worker}: {message}", worker=self.id, message=from_wire(problem)))
        return answer.get("ok"), out

    def _streamed(
        self, header: dict[str, Any], tensors: dict[str, torch.Tensor] | None
    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """One call by `/federated.Worker/Stream`: large tensors go, and come back, in
        chunks (`protocol.stream`); a reply over `max_message` is cut off."""
        replies = self._stream(
            protocol.stream(header, tensors), timeout=self.timeout, metadata=self._metadata
        )
        try:
            incoming = protocol.Incoming(next(replies, b""), self.max_message)
            for chunk in replies:
                incoming.add(chunk)
            return incoming.finish()
        finally:
            replies.cancel()  # a no-op once the call is over; ends it if not

    def ping(self) -> str:
        return self.identity()["id"]

    def identity(self) -> dict[str, Any]:
        """The server's `id` and `boot` (a number new each time it starts)."""
        return self.request({"command": "ping"})[0]

    # ---- the worker interface pointers use ---------------------------------------------

    def _pointer(self, info: Any) -> PointerTensor:
        ref = protocol.ref_from(info)
        return PointerTensor(self, ref.id_at_location, ref.shape, ref.dtype)

    def register(self, tensor: torch.Tensor) -> int:
        """Send a tensor to be kept as it is (with its gradient); returns its id."""
        payload = {"t0": tensor.detach()}
        if tensor.is_leaf and tensor.grad is not None:
            payload["g0"] = tensor.grad.detach()
        refs, _ = self.request(
            {"command": "register", "requires_grad": [bool(tensor.requires_grad)]}, payload
        )
        return refs[0]["id"]

    def receive(self, tensor: torch.Tensor) -> PointerTensor:
        """A copy of a local tensor, or (for a pointer) a chain: this worker points on."""
        if isinstance(tensor, PointerTensor):
            return self._hold(tensor)
        with torch.no_grad():
            obj_id = self.register(tensor)
        return PointerTensor(self, obj_id, tensor.shape, tensor.dtype)

    def _hold(self, pointer: PointerTensor) -> PointerTensor:
        where = pointer.location
        if not isinstance(where, RemoteWorker):
            raise ProtocolError(tr("a remote worker can only point to other remote workers"))
        target = protocol.describe(Ref(pointer.id_at_location, tuple(pointer.shape), pointer.dtype))
        self._peers[where.id] = where
        info, _ = self.request({"command": "hold_pointer", "to": where.id, "target": target})
        pointer._retire(f"sent to {self.id}")
        return self._pointer(info)

    def grad_of(self, pointer: PointerTensor) -> PointerTensor | None:
        """`pointer.grad`: a pointer to the gradient on this worker, or None."""
        return self.execute(GET_GRAD, (pointer,), None)

    def execute(self, func: Any, args: tuple, kwargs: dict | None) -> Any:
        inputs: dict[int, PointerTensor] = {}

        def ref_of(tensor: torch.Tensor) -> int:
            if not isinstance(tensor, PointerTensor) or tensor.location is not self:
                raise ProtocolError(tr("only pointers to this worker can be sent as arguments"))
            inputs[tensor.id_at_location] = tensor
            return tensor.id_at_location

        header = {
            "command": "run",
            "op": protocol.op_name(func),
            "args": protocol.encode(tuple(args), ref_of),
            "kwargs": protocol.encode(dict(kwargs or {}), ref_of),
            "grad": torch.is_grad_enabled(),
        }
        result, _ = self.request(header)
        return self._decode_result(result, inputs)

    def _decode_result(self, value: Any, inputs: dict[int, PointerTensor]) -> Any:
        if isinstance(value, dict) and "$obj" in value:
            ref = protocol.ref_from(value["$obj"])
            same = inputs.get(ref.id_at_location)
            if same is None:
                return PointerTensor(self, ref.id_at_location, ref.shape, ref.dtype)
            return same._refresh(ref.shape, ref.dtype)
        if isinstance(value, dict) and "$return" in value:
            name, items = value["$return"]
            kind = getattr(torch.return_types, str(name), None)
            if kind is None:
                raise ProtocolError(tr("unknown result type {name}", name=repr(name)))
            return kind([self._decode_result(v, inputs) for v in items])
        if isinstance(value, dict) and ("$tuple" in value or "$list" in value):
            items = [self._decode_result(v, inputs) for v in next(iter(value.values()))]
            return tuple(items) if "$tuple" in value else items
        return protocol.decode(value, _no_reference)

    def fetch(self, obj_id: int) -> torch.Tensor:
        return self.fetch_many([obj_id])[0]

    def fetch_many(self, obj_ids: list[int]) -> list[torch.Tensor]:
        header = {"command": "fetch", "ids": list(obj_ids), "max_reply": self.max_message}
        info, tensors = self.request(header)
        if info.get("stream"):  # a megabyte or more: nothing was fetched, ask for a stream
            info, tensors = self.request(header, stream=True)
        values: list[torch.Tensor] = []
        for i, flag in enumerate(info["requires_grad"]):
            handed = info.get("pointers", {}).get(str(i))
            if handed is not None:  # the object was itself a pointer: we now hold it
                ref = protocol.ref_from(handed["target"])
                values.append(
                    PointerTensor(
                        self._known(handed["to"]), ref.id_at_location, ref.shape, ref.dtype
                    )
                )
                continue
            value = tensors[f"t{i}"]
            if flag:
                value.requires_grad_(True)
                value.grad = tensors.get(f"g{i}")
            values.append(value)
        return values

    def _known(self, worker_id: Any) -> RemoteWorker:
        """The RemoteWorker for a worker this one handed us a pointer to."""
        found = self._peers.get(worker_id) if isinstance(worker_id, str) else None
        found = found or (_KNOWN.get(worker_id) if isinstance(worker_id, str) else None)
        if found is None:
            raise ProtocolError(
                tr(
                    "{worker} handed over a pointer to worker {worker_id}, which this "
                    "process has no RemoteWorker for: make a RemoteWorker for it first",
                    worker=self.id,
                    worker_id=repr(worker_id),
                )
            )
        return found

    def free(self, obj_id: int) -> None:
        """Queue `obj_id` to be freed with the next call; every 256, send them now. Never
        raises (the contract): if the server cannot be reached, they wait for a later call."""
        self._frees.append(obj_id)
        if len(self._frees) % 256 == 0:  # not on every free while the server is down
            pending = list(self._frees)
            try:
                self.flush()
            except (FederatedError, PermissionError):
                self._frees = pending + self._frees  # freeing an id twice does no harm

    def flush(self) -> None:
        """Send pending frees now (they normally ride along with the next call)."""
        if self._frees:
            self.ping()

    def move_object(self, obj_id: int, destination: Any) -> int:
        if isinstance(destination, RemoteWorker):  # straight from server to server
            self._peers[destination.id] = destination
            info, _ = self.request({"command": "move", "ids": [obj_id], "to": destination.id})
            return info["id"]
        return destination.register(self.fetch(obj_id))  # a local worker: through here

    def copy_object(self, obj_id: int) -> PointerTensor:
        info, _ = self.request({"command": "copy", "ids": [obj_id]})
        return self._pointer(info)

    def remote_get(self, obj_id: int) -> None:
        self.request({"command": "remote_get", "ids": [obj_id]})

    # ---- data owners and inspection ----------------------------------------------------

    def load(
        self,
        tensor: torch.Tensor,
        tag: str | Sequence[str] = (),
        private: bool = False,
        description: str = "",
        epsilon: float | None = None,
        model_exit: bool = True,
    ) -> PointerTensor:
        """The data owner places data (needs the server's owner token)."""
        tags = [tag] if isinstance(tag, str) else list(tag)
        info, _ = self.request(
            {
                "command": "load",
                "tags": tags,
                "private": private,
                "description": description,
                "epsilon": epsilon,
                "model_exit": model_exit,
            },
            {"t0": tensor.detach()},
        )
        return self._pointer(info)

    def search(self, *tags: str) -> list[PointerTensor]:
        found, _ = self.request({"command": "search", "tags": list(tags)})
        return [self._pointer(info) for info in found]

    @property
    def objects(self) -> Mapping[int, RemoteObject]:
        """What the worker holds: shapes and dtypes, never values."""
        listing, _ = self.request({"command": "objects"})
        return {
            o["id"]: RemoteObject(
                tuple(o["shape"]),
                protocol.dtype_of(o["dtype"]),
                bool(o["private"]),
                bool(o["pointer"]),
            )
            for o in listing
        }

    def is_private(self, obj_id: int) -> bool:
        return self.objects[obj_id].private


def _no_reference(obj_id: int) -> Any:
    raise ProtocolError(tr("a reply may not name objects without describing them"))
