"""What a worker server does with each request: decode it, run it on its worker, reply.

The server wraps a `VirtualWorker` and uses only its public interface, so the worker's
privacy policy decides for remote callers exactly as for local ones. Everything about
the wire stays here: objects are named by wire ids that carry this run's boot nonce, so
a pointer from before a restart fails with an error naming the restart instead of
reaching another caller's object; each call has a time limit; each caller has a quota.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import torch
from torch.utils.flop_counter import FlopCounterMode

from federated import plan, protocol
from federated.access import Caller, Callers
from federated.language import to_wire, tr
from federated.ledger import Ledger, nbytes
from federated.peers import Peers
from federated.pointer import PointerTensor
from federated.protocol import ProtocolError, QuotaExceededError, Ref, WorkerRestartedError

_LOCAL_BITS = 32  # wire id = boot nonce << 32 | the worker's own id


@dataclass(frozen=True)
class Limits:
    """What one server grants: per call, per caller, per message."""

    max_message: int = protocol.DEFAULT_MAX_MESSAGE
    call_timeout: float = 60.0  # seconds; a caller's shorter deadline wins
    max_objects: int = 100_000  # per caller
    max_bytes: int = 2**30  # per caller
    max_op_flops: float = 50e9  # one operation; about ten seconds of one core
    max_calls: int = 16  # at once; more are refused at once, not queued


@dataclass(frozen=True)
class Call:
    caller: Caller
    deadline: float  # time.monotonic()
    stream: bool = False  # came by `/federated.Worker/Stream`: the reply goes back that way


# An operation on inputs smaller than this is cheap whatever it is; larger ones are first
# tried on shapes alone (torch's "meta" tensors) to count their work before it is done.
_CHECK_COST_FROM = 1 << 16


class WorkerServicer:
    """Handles `/federated.Worker/Call` and `/Stream`: a request in, a reply out, one
    request at a time on the worker (receiving and sending happen outside that turn)."""

    def __init__(
        self,
        worker: Any,
        callers: Callers | None = None,
        peers: Peers | None = None,
        limits: Limits | None = None,
        boot: int | None = None,
    ) -> None:
        self.worker = worker
        self.callers = callers or Callers([])
        self.limits = limits or Limits()
        self.boot = boot if boot is not None else secrets.randbelow(2**30) + 1
        self.peers = peers or Peers([], worker.id, self.boot, self.limits.call_timeout)
        self.ledger = Ledger(self.limits.max_objects, self.limits.max_bytes)
        self.lock = threading.Lock()

    # ---- one call -------------------------------------------------------------------------

    def call(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """`/federated.Worker/Call`: one message in, one out."""
        call = self._begin(context, stream=False)
        if call is None:  # the interceptor refuses these first; this is the second check
            return _error("PermissionError", "wrong or missing token")
        try:
            header, tensors = protocol.unpack(request)
            reply = self._serve(header, tensors, call)
            return reply if isinstance(reply, bytes) else protocol.pack({"ok": reply[0]}, reply[1])
        except Exception as error:  # every failure is reported; the server goes on
            return _error(type(error).__name__, str(error)[:4000], to_wire(error))

    def stream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        """`/federated.Worker/Stream`: a large message in chunks, and the reply the same way.

        The header comes first and is checked against the message limit and the caller's
        quota before any chunk is taken; each chunk is checked against the sizes the header
        announced and the call's deadline. Nothing is kept unless every byte arrived.
        """
        call = self._begin(context, stream=True)
        if call is None:
            yield _error("PermissionError", "wrong or missing token")
            return
        try:
            header, tensors = self._receive(requests, call)
            reply = self._serve(header, tensors, call)
        except Exception as error:  # every failure is reported; the server goes on
            yield _error(type(error).__name__, str(error)[:4000], to_wire(error))
            return
        yield from protocol.stream({"ok": reply[0]}, reply[1])

    def _begin(self, context: grpc.ServicerContext, stream: bool) -> Call | None:
        caller = self.callers.identify(context.invocation_metadata())
        if caller is None:
            return None
        remaining = context.time_remaining()
        limit = (
            self.limits.call_timeout
            if remaining is None
            else min(remaining, self.limits.call_timeout)
        )
        return Call(caller, time.monotonic() + limit, stream)

    def _receive(self, requests: Iterator[bytes], call: Call) -> tuple[dict, dict]:
        incoming = protocol.Incoming(next(requests, b""), self.limits.max_message)
        if not call.caller.owner and incoming.total > self.ledger.room(call.caller.name):
            raise QuotaExceededError(
                tr(
                    "this message carries {size_mb} MB, more than your quota on {worker} has "
                    "room for; nothing was received or kept. Free or fetch what you no longer "
                    "need (drop its pointers) and try again.",
                    size_mb=format(incoming.total / 2**20, ".1f"),
                    worker=self.worker.id,
                )
            )
        for chunk in requests:
            if time.monotonic() > call.deadline:
                raise TimeoutError(
                    tr(
                        "the message did not arrive within this call's time limit; {worker} "
                        "kept nothing of it. Send it again, or start the server with a "
                        "longer `--call-timeout`.",
                        worker=self.worker.id,
                    )
                )
            incoming.add(chunk)
        return incoming.finish()

    def _serve(self, header: dict, tensors: dict, call: Call) -> Any:
        """Handle one request, alone on the worker, or fail at the call's deadline."""
        if not self.lock.acquire(timeout=max(call.deadline - time.monotonic(), 0)):
            raise TimeoutError(
                tr(
                    "{worker} was busy with other calls until this call's deadline; nothing "
                    "was done. Try again, or give the RemoteWorker a longer timeout.",
                    worker=self.worker.id,
                )
            )
        try:
            return self.handle(header, tensors, call)
        finally:
            self.lock.release()

    def handle(self, header: dict, tensors: dict[str, torch.Tensor], call: Call) -> Any:
        """(reply, tensors), or a packed reply. Frees sent along go first."""
        command = header.get("command")
        frees = header.get("free", [])
        if not (isinstance(frees, list) and all(type(i) is int for i in frees)):
            raise ProtocolError(tr("free is a list of ids"))
        for wire_id in frees:
            if wire_id >> _LOCAL_BITS == self.boot:  # from an earlier run: long gone
                self._free(wire_id & _LOCAL_MASK)
        if time.monotonic() > call.deadline:
            raise TimeoutError(
                tr(
                    "this call's deadline passed before {worker} could start it; nothing was done",
                    worker=self.worker.id,
                )
            )
        self.peers.limit_to(call.deadline)
        handler = getattr(self, f"do_{command}", None) if isinstance(command, str) else None
        if handler is None:
            raise ProtocolError(tr("unknown command {command}", command=repr(command)))
        return handler(header, tensors, call)

    # ---- commands -------------------------------------------------------------------------

    def do_ping(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        return {"id": self.worker.id, "boot": self.boot}, {}

    def do_register(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        """Keep the tensors sent (`t0`, `t1`, ... with gradients `g0`, ...)."""
        flags = header.get("requires_grad", [])
        if not isinstance(flags, list) or len(flags) != sum(k.startswith("t") for k in tensors):
            raise ProtocolError(tr("register needs one requires_grad flag per tensor"))
        kept = []
        for i, flag in enumerate(flags):
            if f"t{i}" not in tensors:
                raise ProtocolError(tr("tensor t{i} missing", i=i))
            tensor = tensors[f"t{i}"]
            if flag and tensor.dtype.is_floating_point:
                tensor.requires_grad_(True)
                if f"g{i}" in tensors:
                    tensor.grad = tensors[f"g{i}"]
            kept.append(tensor)
        ids = [self.worker.register(t) for t in kept]
        self._charge(call, ids)
        return [self._describe(i) for i in ids], {}

    def do_run(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        func = protocol.op_func(header.get("op"))
        refs: list[Ref] = []

        def resolve(wire_id: int) -> Ref:
            ref = self._ref(wire_id)
            refs.append(ref)
            return ref

        args = protocol.decode(header.get("args", {"$tuple": []}), resolve)
        kwargs = protocol.decode(header.get("kwargs", {"$dict": []}), resolve)
        if not isinstance(args, tuple) or not isinstance(kwargs, dict):
            raise ProtocolError(tr("args is a tuple and kwargs a dict"))
        if refs and max(r.numel() for r in refs) >= _CHECK_COST_FROM:
            self._check_cost(func, args, kwargs, refs, call)
        with torch.set_grad_enabled(bool(header.get("grad", True))):
            result, made = self._execute(func, args, kwargs)
        self._charge(call, made)
        return self._encode_result(result), {}

    def do_plan(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        """Keep, run or forget a plan (`federated.plan`): a checked graph of allow-listed
        ops. Each op of a run goes through `_execute` like a `run` call, with the same cost
        check, so the privacy policy, the work limit and the quota apply to every step."""
        action = header.get("action")
        if action == "send":
            made: list[int] = []

            def hold(tensor: torch.Tensor) -> Ref:
                made.append(self.worker.register(tensor))
                return Ref(made[-1], tuple(tensor.shape), tensor.dtype)

            kept = plan.keep(self.worker, header.get("plan"), tensors, hold)
            self._charge(call, made)
            return {"plan": kept}, {}
        plan_id = header.get("plan")
        if type(plan_id) is not int:
            raise ProtocolError(tr("plan is the integer id `send` replied with"))
        if action == "free":
            plan.forget(self.worker, plan_id)
            return None, {}
        if action != "run":
            raise ProtocolError(tr("unknown plan action {action}", action=repr(action)))
        wire_ids = header.get("args")
        if not (isinstance(wire_ids, list) and all(type(i) is int for i in wire_ids)):
            raise ProtocolError(tr("a plan's arguments are a list of object ids"))
        made = []

        def run_op(func: Any, args: tuple, kwargs: dict) -> Any:
            refs = [a for a in (*args, *kwargs.values()) if isinstance(a, Ref)]
            if refs and max(r.numel() for r in refs) >= _CHECK_COST_FROM:
                self._check_cost(func, args, kwargs, refs, call)
            result, new = self._execute(func, args, kwargs)
            made.extend(new)
            return result

        with torch.set_grad_enabled(bool(header.get("grad", True))):
            output = plan.run_kept(
                self.worker, plan_id, [self._ref(i) for i in wire_ids], run_op, self.worker.free
            )
        self._charge(call, [i for i in made if i in self.worker.objects])
        return self._encode_result(output), {}

    def do_fetch(self, header: dict, tensors: dict, call: Call) -> Any:
        """All or nothing: the reply is built and its size checked before anything goes.
        A megabyte or more goes back only as a stream: by `Call`, the answer is to ask
        again by `Stream`, and nothing has changed (small fetches stay one quick message)."""
        ids = self._local_ids(header)
        if len(set(ids)) != len(ids):
            raise ProtocolError(tr("fetch names an object twice"))
        objs = [self.worker.store.lookup(i) for i in ids]
        out, flags, pointers = {}, [], {}
        for i, obj in enumerate(objs):
            if isinstance(obj, PointerTensor):  # a pointer on to a peer: hand it over
                pointers[str(i)] = {
                    "to": obj.location.id,
                    "target": protocol.describe(
                        Ref(obj.id_at_location, tuple(obj.shape), obj.dtype)
                    ),
                }
                flags.append(False)
                continue
            out[f"t{i}"] = obj.detach()
            if obj.grad is not None:
                out[f"g{i}"] = obj.grad.detach()
            flags.append(bool(obj.requires_grad))
        limit = self.limits.max_message
        asked = header.get("max_reply")
        if type(asked) is int and asked > 0:
            limit = min(limit, asked)
        reply = {"requires_grad": flags, "pointers": pointers}
        if not call.stream and protocol.nbytes_of(out) >= protocol.STREAM_FROM:
            return {"stream": True}, {}  # nothing fetched: ask again by `Stream`
        if call.stream:  # checked as the caller will count it: its tensors' bytes
            out = protocol.sendable(out)
            answer: Any = (reply, out)
            size = protocol.nbytes_of(out)
        else:
            answer = protocol.pack({"ok": reply}, out)
            size = len(answer)
        if size > limit:
            raise ProtocolError(
                tr(
                    "these {ids_count} objects make a reply of {size_mb} MB, over the "
                    "{limit_mb} MB message limit. Nothing was fetched: fetch fewer at a time, "
                    "or raise the limit (--max-message-mb and max_message=).",
                    ids_count=len(ids),
                    size_mb=format(size / 2**20, ".1f"),
                    limit_mb=format(limit / 2**20, ".0f"),
                )
            )
        self.worker.fetch_many(ids)  # the privacy policy's check, then the objects go
        for i, obj in zip(ids, objs):
            self.ledger.release(i)
            if isinstance(obj, PointerTensor):
                obj._retire("handed to the caller")  # the caller's pointer owns it now
        return answer

    def do_copy(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        (obj_id,) = self._local_ids(header)
        pointer = self.worker.copy_object(obj_id)
        pointer._retire("handed to the caller")  # the caller's own pointer frees the copy
        self._charge(call, [pointer.id_at_location])
        return self._describe(pointer.id_at_location), {}

    def do_move(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        """Send an object straight to a configured peer."""
        (obj_id,) = self._local_ids(header)
        destination = self.peers.client(header.get("to"))
        new_id = self.worker.move_object(obj_id, destination)
        self.ledger.release(obj_id)
        return {"id": new_id}, {}

    def do_remote_get(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        (obj_id,) = self._local_ids(header)
        self.worker.remote_get(obj_id)
        self.ledger.release(obj_id)
        self._charge(call, [obj_id])
        return self._describe(obj_id), {}

    def do_hold_pointer(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        """Keep a pointer to an object on a configured peer (a chain)."""
        peer = self.peers.client(header.get("to"))
        target = protocol.ref_from(header.get("target"))
        pointer = PointerTensor(peer, target.id_at_location, target.shape, target.dtype)
        obj_id = self.worker.register(pointer)
        self._charge(call, [obj_id])
        return self._describe(obj_id), {}

    def do_objects(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        return [
            dict(
                self._describe(i),
                private=self.worker.is_private(i),
                pointer=isinstance(o, PointerTensor),
            )
            for i, o in self.worker.objects.items()
        ], {}

    def do_search(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        return [self._describe(i) for i in self.worker.search_ids(*_tags(header))], {}

    def do_load(self, header: dict, tensors: dict, call: Call) -> tuple[Any, dict]:
        """The data owner places data (never charged to a quota)."""
        if not call.caller.owner:
            raise PermissionError(
                tr(
                    "only {worker}'s data owner may load data: at start-up with --data, or "
                    "with the token of --owner-token-file",
                    worker=self.worker.id,
                )
            )
        if set(tensors) != {"t0"}:
            raise ProtocolError(tr("load takes one tensor, t0"))
        epsilon = header.get("epsilon")
        if epsilon is not None and type(epsilon) not in (int, float):
            raise ProtocolError(tr("epsilon is a number"))
        pointer = self.worker.load(
            tensors["t0"],
            tag=_tags(header),
            private=bool(header.get("private", False)),
            description=str(header.get("description", "")),
            epsilon=epsilon,
            model_exit=bool(header.get("model_exit", True)),
        )
        return self._describe(pointer.id_at_location), {}

    # ---- the worker, through its public interface ------------------------------------------

    def _execute(self, func: Any, args: tuple, kwargs: dict | None) -> tuple[Any, list[int]]:
        """Run through the worker's executor, which resolves `Ref`s and asks its privacy
        policy: the result (with `Ref`s for tensors) and the ids of the objects it made."""
        made: list[int] = []

        def wrap(obj_id: int, tensor: torch.Tensor) -> Ref:
            made.append(obj_id)
            return Ref(obj_id, tuple(tensor.shape), tensor.dtype)

        result = self.worker.executor.run(func, args, kwargs, wrap, _refresh)
        return result, made

    def _free(self, obj_id: int) -> None:
        self.worker.free(obj_id)
        if obj_id not in self.worker.objects:
            self.ledger.release(obj_id)

    def _charge(self, call: Call, ids: list[int]) -> None:
        if call.caller.owner or not ids:
            return
        objects = self.worker.objects
        try:
            self.ledger.charge(
                call.caller.name,
                [(i, nbytes(objects[i])) for i in ids],
                objects.__contains__,
                self.worker.id,
            )
        except QuotaExceededError:
            for i in ids:
                self.worker.free(i)
            raise

    def _check_cost(
        self, func: Any, args: tuple, kwargs: dict, refs: list[Ref], call: Call
    ) -> None:
        """Refuse, before it runs, an operation whose work or result is too large.

        A torch operation cannot be stopped once started, so its cost is bounded instead:
        operations on large inputs are first run on shapes alone (meta tensors) to count
        their floating-point work and the size of what they make.
        """
        real = {r.id_at_location: self.worker.store.lookup(r.id_at_location) for r in refs}
        if any(type(t) not in (torch.Tensor, torch.nn.Parameter) for t in real.values()):
            return  # a pointer on to a peer: the peer checks
        meta = {
            i: torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
            for i, t in real.items()
        }
        try:
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                out = func(*_swap(args, meta), **_swap(kwargs, meta))
        except Exception:  # data-dependent operations cannot run on shapes alone
            return
        flops = counter.get_total_flops()
        if flops > self.limits.max_op_flops:
            raise QuotaExceededError(
                tr(
                    "`{func}` would take about {gflop} GFLOP, over {worker}'s limit of "
                    "{limit} GFLOP for one operation; nothing was run. Split it into "
                    "smaller operations.",
                    func=getattr(func, "__name__", func),
                    gflop=format(flops / 1e9, ".0f"),
                    worker=self.worker.id,
                    limit=format(self.limits.max_op_flops / 1e9, ".0f"),
                )
            )
        made = sum(
            t.numel() * t.element_size()
            for t in _tensors(out)
            if not any(t is m for m in meta.values())
        )
        if made > self.ledger.room(call.caller.name) and not call.caller.owner:
            raise QuotaExceededError(
                tr(
                    "`{func}` would make {size_mb} MB, more than your quota on {worker} has "
                    "room for; nothing was run.",
                    func=getattr(func, "__name__", func),
                    size_mb=format(made / 2**20, ".0f"),
                    worker=self.worker.id,
                )
            )

    # ---- wire ids ---------------------------------------------------------------------------

    def _local(self, wire_id: int) -> int:
        if wire_id >> _LOCAL_BITS != self.boot:
            raise WorkerRestartedError(
                tr(
                    "object {wire_id} was made by an earlier run of worker {worker}: the "
                    "server has restarted since, and what it held then is gone. Send the "
                    "data again (or search for the owner's data) and use the new pointers.",
                    wire_id=wire_id,
                    worker=self.worker.id,
                )
            )
        return wire_id & _LOCAL_MASK

    def _local_ids(self, header: dict) -> list[int]:
        ids = header.get("ids")
        if not (isinstance(ids, list) and ids and all(type(i) is int for i in ids)):
            raise ProtocolError(tr("ids is a non-empty list of integers"))
        return [self._local(i) for i in ids]

    def _ref(self, wire_id: int) -> Ref:
        return self._ref_local(self._local(wire_id))

    def _ref_local(self, obj_id: int) -> Ref:
        obj = self.worker.store.lookup(obj_id)  # the real shape: privacy rules compare sizes
        return Ref(obj_id, tuple(obj.shape), obj.dtype)

    def _describe(self, obj_id: int) -> dict[str, Any]:
        obj = self.worker.objects[obj_id]
        return protocol.describe(
            Ref(self.boot << _LOCAL_BITS | obj_id, tuple(obj.shape), obj.dtype)
        )

    def _encode_result(self, value: Any) -> Any:
        """A result for the reply: references with their shape and dtype, plain values."""
        if isinstance(value, Ref):
            return {
                "$obj": protocol.describe(
                    Ref(self.boot << _LOCAL_BITS | value.id_at_location, value.shape, value.dtype)
                )
            }
        if isinstance(value, tuple) and hasattr(value, "n_fields"):  # torch.return_types
            return {"$return": [type(value).__name__, [self._encode_result(v) for v in value]]}
        if isinstance(value, (tuple, list)):
            key = "$tuple" if isinstance(value, tuple) else "$list"
            return {key: [self._encode_result(v) for v in value]}
        return protocol.encode(value, _no_tensor)


_LOCAL_MASK = (1 << _LOCAL_BITS) - 1


def _error(kind: str, message: str, template: dict[str, Any] | None = None) -> bytes:
    """An error reply: its text, and its template for the caller to translate (to_wire)."""
    return protocol.pack({"error": {"type": kind, "message": message, **(template or {})}})


def _refresh(ref: Ref, real: torch.Tensor) -> Ref:
    return Ref(ref.id_at_location, tuple(real.shape), real.dtype)


def _no_tensor(value: Any) -> Any:
    raise ProtocolError(tr("a tensor result must be a reference"))


def _tags(header: dict) -> list[str]:
    tags = header.get("tags", [])
    if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise ProtocolError(tr("tags is a list of strings"))
    return tags


def _tensors(value: Any) -> list[torch.Tensor]:
    found, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, torch.Tensor):
            found.append(v)
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return found


def _swap(value: Any, meta: dict[int, torch.Tensor]) -> Any:
    """`value` with each `Ref` replaced by its meta tensor."""
    if isinstance(value, Ref):
        return meta[value.id_at_location]
    if type(value) in (list, tuple):
        return type(value)(_swap(v, meta) for v in value)
    if type(value) is dict:
        return {k: _swap(v, meta) for k, v in value.items()}
    return value
