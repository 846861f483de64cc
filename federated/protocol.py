"""The messages between a caller and a worker in another process: a closed schema.

A message without tensors is its JSON header alone. A message with tensors is one
safetensors blob, with the JSON header in its metadata (under "header"): a large tensor
is then copied once into the message and once out of it, with no framing around it. The
two cannot be confused: safetensors pads its own header to a multiple of 8 bytes, so its
first byte (the low byte of that length) is never "{".

Nothing is ever unpickled. The header holds only plain JSON values and a few tagged
forms (`{"$ref": 3}` for an object on the worker, `{"$dtype": "float32"}`, ...); an
operation is named by a string from an allow-list of torch's overridable functions, so
a worker runs torch operations and nothing else.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from federated.errors import FederatedError, StalePointerError
from federated.language import tr

METHOD = "/federated.Worker/Call"  # one message in, one out
STREAM = "/federated.Worker/Stream"  # a header and chunks in, the same out
DEFAULT_MAX_MESSAGE = 256 * 2**20  # per call, streamed or not
CHUNK = 2**20  # bytes per streamed message: within the smallest message limit (1 MB)
STREAM_FROM = 2**20  # tensors of this many bytes or more travel as a stream
MAX_TENSORS = 2**16  # in one message
MAX_HEADER = 16 * 2**20  # a header is small; a huge one is an attack or a bug
_LENGTH = struct.Struct("<Q")  # how a safetensors blob starts


class ProtocolError(FederatedError, ValueError):
    """A message that does not follow the schema: refused, and nothing is changed."""


class QuotaExceededError(FederatedError, RuntimeError):
    """A caller asked a worker server to keep more objects or bytes than its quota."""


class WorkerRestartedError(StalePointerError):
    """A pointer made before its worker server restarted: its object is gone."""


@dataclass(frozen=True)
class Ref:
    """An object on a worker, by id, with what is known of it without looking."""

    id_at_location: int
    shape: tuple[int, ...] = ()
    dtype: torch.dtype = torch.float32

    def numel(self) -> int:
        n = 1
        for size in self.shape:
            n *= size
        return n


# ---- framing ---------------------------------------------------------------------------------


def pack(header: dict[str, Any], tensors: dict[str, torch.Tensor] | None = None) -> bytes:
    """One message: the header and, if any, the tensors."""
    head = json.dumps(header, separators=(",", ":"), allow_nan=True)
    if not tensors:
        return head.encode()
    return save_tensors(
        {k: v.detach().contiguous() for k, v in tensors.items()}, metadata={"header": head}
    )


def unpack(message: bytes) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The header and tensors of a message, or ProtocolError. Safe on any bytes."""
    if not isinstance(message, (bytes, bytearray)) or not message:
        raise ProtocolError(tr("empty message"))
    if message[:1] == b"{":
        if len(message) > MAX_HEADER:
            raise ProtocolError(tr("header too long"))
        return _header(message), {}
    if len(message) < _LENGTH.size:
        raise ProtocolError(tr("message too short"))
    (length,) = _LENGTH.unpack_from(message)  # safetensors' own header: length, then JSON
    if length > MAX_HEADER or _LENGTH.size + length > len(message):
        raise ProtocolError(tr("bad header length"))
    try:
        layout = json.loads(bytes(message[_LENGTH.size : _LENGTH.size + length]))
        text = layout["__metadata__"]["header"]
    except (UnicodeDecodeError, ValueError, TypeError, KeyError) as error:
        raise ProtocolError(tr("no header in the message: {error}", error=error)) from None
    header = _header(text)
    try:
        tensors = load_tensors(bytes(message) if isinstance(message, bytearray) else message)
    except Exception as error:  # safetensors raises its own error types
        raise ProtocolError(
            tr("tensor payload is not valid safetensors: {error}", error=error)
        ) from None
    return header, tensors


# ---- streams -----------------------------------------------------------------------------------


def nbytes_of(tensors: dict[str, torch.Tensor] | None) -> int:
    """The bytes of the tensors' values: what a stream of them carries after its header."""
    return sum(t.numel() * t.element_size() for t in (tensors or {}).values())


def stream_head(header: dict[str, Any], tensors: dict[str, torch.Tensor]) -> bytes:
    """The first message of a stream: the header, with the name, dtype and shape of each
    tensor whose bytes follow."""
    layout = [[name, _wire_dtype(t), list(t.shape)] for name, t in tensors.items()]
    return json.dumps(
        dict(header, **{"$tensors": layout}), separators=(",", ":"), allow_nan=True
    ).encode()


def sendable(tensors: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """The tensors as a stream carries them (dense, contiguous, values resolved), or
    ProtocolError for one it cannot carry: checked before anything is sent or handed over."""
    return {k: _plain(v) for k, v in (tensors or {}).items()}


def stream(
    header: dict[str, Any], tensors: dict[str, torch.Tensor] | None = None
) -> Iterator[bytes]:
    """The messages of a stream: `stream_head`, then the tensors' bytes in chunks. A chunk
    may end inside a tensor and hold the start of the next; each is made only when gRPC
    asks for it, so one chunk at a time is copied out of the tensors."""
    ready = sendable(tensors)
    yield stream_head(header, ready)
    pending = bytearray()  # small tensors, gathered into one chunk
    for tensor in ready.values():
        view, start = _bytes(tensor), 0
        if pending:
            start = min(CHUNK - len(pending), len(view))
            pending += view[:start]
            if len(pending) < CHUNK:
                continue
            yield bytes(pending)
            pending = bytearray()
        while len(view) - start >= CHUNK:
            yield bytes(view[start : start + CHUNK])
            start += CHUNK
        pending += view[start:]
    if pending:
        yield bytes(pending)


class Incoming:
    """A stream being received: its header first, then its chunks, each written straight
    into the tensors the header announced. Safe on any bytes: a header over `limit`, more
    bytes than announced, or too few at the end raise ProtocolError, and the tensors made
    so far are dropped with this object, so nothing half-received is ever kept."""

    def __init__(self, head: bytes, limit: int) -> None:
        if not isinstance(head, bytes) or head[:1] != b"{" or len(head) > MAX_HEADER:
            raise ProtocolError(tr("a stream starts with its JSON header"))
        self.header = _header(head)
        layout = self.header.pop("$tensors", [])
        if not isinstance(layout, list) or len(layout) > MAX_TENSORS:
            raise ProtocolError(
                tr("$tensors is a list of at most {count} tensors", count=MAX_TENSORS)
            )
        self.layout: list[tuple[str, torch.dtype, tuple[int, ...]]] = []
        self.total = 0
        for entry in layout:
            if not (
                isinstance(entry, list)
                and len(entry) == 3
                and isinstance(entry[0], str)
                and isinstance(entry[2], list)
                and len(entry[2]) <= 64
                and all(type(s) is int and s >= 0 for s in entry[2])
            ):
                raise ProtocolError(tr("each of $tensors is [name, dtype, shape]"))
            name, dtype, shape = entry[0], dtype_of(entry[1]), tuple(entry[2])
            numel = 1
            for size in shape:
                numel *= size
            self.layout.append((name, dtype, shape))
            self.total += numel * dtype.itemsize
        if len({name for name, _, _ in self.layout}) != len(self.layout):
            raise ProtocolError(tr("two tensors of a stream have one name"))
        if self.total > limit:
            raise ProtocolError(
                tr(
                    "message too large: {size_mb} MB of tensors, over the {limit_mb} MB "
                    "message limit; nothing was kept. Send less at once, or raise the "
                    "limit (`--max-message-mb` on the server, `max_message=` here).",
                    size_mb=format(self.total / 2**20, ".1f"),
                    limit_mb=format(limit / 2**20, ".0f"),
                )
            )
        self.received = 0
        self.tensors: dict[str, torch.Tensor] | None = None
        self._views: list[memoryview] = []

    def _allocate(self) -> None:
        self.tensors = {name: torch.empty(shape, dtype=dtype) for name, dtype, shape in self.layout}
        self._views = [_bytes(t) for t in self.tensors.values()]
        self._views.reverse()  # filled from the end of this list, in order

    def add(self, chunk: bytes) -> None:
        if self.tensors is None:
            self._allocate()
        if not isinstance(chunk, bytes) or self.received + len(chunk) > self.total:
            raise ProtocolError(
                tr(
                    "the stream carries more than the {total} bytes its header announced; "
                    "nothing was kept",
                    total=self.total,
                )
            )
        data = memoryview(chunk)
        while data:
            while not self._views[-1]:
                self._views.pop()
            target = self._views[-1]
            n = min(len(target), len(data))
            target[:n] = data[:n]
            self._views[-1], data = target[n:], data[n:]
        self.received += len(chunk)

    def finish(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The header and the tensors, once every announced byte has arrived."""
        if self.received != self.total:
            raise ProtocolError(
                tr(
                    "the stream ended after {received} of the {total} bytes its header "
                    "announced; nothing was kept",
                    received=self.received,
                    total=self.total,
                )
            )
        if self.tensors is None:
            self._allocate()
        assert self.tensors is not None
        for name, tensor in self.tensors.items():
            if tensor.dtype == torch.bool and tensor.numel() and tensor.view(torch.uint8).max() > 1:
                raise ProtocolError(
                    tr("tensor {name} holds bytes that are not booleans", name=name)
                )
        return self.header, self.tensors


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """A dense, contiguous tensor of a dtype the schema knows, with its values resolved."""
    if tensor.layout != torch.strided:
        raise ProtocolError(
            tr("a {layout} tensor cannot be sent: make it dense first", layout=str(tensor.layout))
        )
    _wire_dtype(tensor)
    return tensor.detach().resolve_conj().resolve_neg().contiguous()


def _wire_dtype(tensor: torch.Tensor) -> str:
    name = dtype_name(tensor.dtype)
    if name not in _DTYPES:
        raise ProtocolError(
            tr(
                "a {dtype} tensor cannot be sent to a remote worker: convert it first, "
                "e.g. `t.float()` or `t.long()`",
                dtype=name,
            )
        )
    return name


def _bytes(tensor: torch.Tensor) -> memoryview:
    """The tensor's memory as bytes, shared, not copied."""
    return tensor.reshape(-1).view(torch.uint8).numpy().data


def _header(text: bytes | bytearray | str) -> dict[str, Any]:
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolError(tr("header is not JSON: {error}", error=error)) from None
    if not isinstance(header, dict):
        raise ProtocolError(tr("header must be a JSON object"))
    return header


# ---- the operations a worker may run ---------------------------------------------------------

_FORBIDDEN = {
    "register_hook",
    "register_post_accumulate_grad_hook",
    "module_load",
    "__reduce_ex__",
    "__setstate__",
    "__deepcopy__",
    "storage",
    "untyped_storage",
    "data_ptr",
    "numpy",
    "tolist",
    "item",
    "__array__",
    "__bool__",
    "__int__",
    "__float__",
    "__index__",
    "__complex__",
    "__contains__",
    "is_nonzero",
    "equal",
    "allclose",
    "__iter__",
    "share_memory_",
    "pin_memory",
    "backward_hook",
    "_typed_storage",
    "__reduce__",
    "__dlpack__",
    "__dlpack_device__",
    "tofile",
    "set_",
}
_SETTERS = ("grad", "data", "requires_grad")


@cache
def _registry() -> tuple[dict[Any, str], dict[str, Any]]:
    """(function → name, name → function) for every torch function a pointer may forward."""
    names: dict[Any, str] = {}
    prefixes = {
        torch: "torch",
        torch.Tensor: "Tensor",
        torch.nn.functional: "F",
        torch.functional: "torch.functional",
        torch.linalg: "linalg",
        torch.fft: "fft",
        torch.special: "special",
    }
    for namespace, funcs in torch.overrides.get_overridable_functions().items():
        for func in funcs:
            base = getattr(func, "__name__", None)
            owner = getattr(func, "__self__", None)
            if base == "__get__" and owner is not None:  # a property getter
                attr = getattr(owner, "__name__", None) or getattr(owner.fget, "__name__", "")
                name = f"Tensor.{attr}.__get__"
            elif namespace in prefixes and base:
                name = f"{prefixes[namespace]}.{base}"
            else:
                continue
            if base not in _FORBIDDEN:
                names.setdefault(func, name)
    for func in (
        torch.randint_like,
        torch.rand_like,
        torch.randn_like,
        torch.zeros_like,
        torch.ones_like,
        torch.full_like,
        torch.empty_like,
    ):  # not listed, but forwarded
        names.setdefault(func, f"torch.{func.__name__}")
    for name in dir(torch):  # list-at-once arithmetic: optimizers step with it (optim.py)
        if name.startswith("_foreach_"):
            names.setdefault(getattr(torch, name), f"torch.{name}")
    for attr in _SETTERS:
        names[getattr(torch.Tensor, attr).__set__] = f"Tensor.{attr}.__set__"
    return names, {name: func for func, name in names.items()}


def op_name(func: Any) -> str:
    """The wire name of a torch function, or ProtocolError if it may not be forwarded."""
    name = _registry()[0].get(func)
    if name is None:
        raise ProtocolError(
            tr("{func} cannot run on a remote worker", func=getattr(func, "__name__", func))
        )
    return name


def op_func(name: Any) -> Any:
    """The torch function a wire name stands for, or ProtocolError."""
    func = _registry()[1].get(name) if isinstance(name, str) else None
    if func is None:
        raise ProtocolError(tr("unknown or forbidden operation {name}", name=repr(name)))
    return func


# ---- values inside a header ------------------------------------------------------------------

_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
        torch.uint8,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.bool,
    )
}
_FORMATS = {
    "preserve_format": torch.preserve_format,
    "contiguous_format": torch.contiguous_format,
    "channels_last": torch.channels_last,
}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def dtype_of(name: Any) -> torch.dtype:
    if name not in _DTYPES:
        raise ProtocolError(tr("unknown dtype {name}", name=repr(name)))
    return _DTYPES[name]


def encode(value: Any, ref_of: Any) -> Any:
    """A value as JSON; `ref_of(tensor)` names a tensor (a pointer to this worker)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return {"$ref": ref_of(value)}
    if isinstance(value, Ref):
        return {"$ref": value.id_at_location}
    if isinstance(value, torch.Size):
        return {"$size": list(value)}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, ref_of) for v in value]}
    if isinstance(value, list):
        return {"$list": [encode(v, ref_of) for v in value]}
    if isinstance(value, dict):
        return {"$dict": [[str(k), encode(v, ref_of)] for k, v in value.items()]}
    if isinstance(value, torch.dtype):
        return {"$dtype": dtype_name(value)}
    if isinstance(value, slice):
        return {
            "$slice": [
                encode(value.start, ref_of),
                encode(value.stop, ref_of),
                encode(value.step, ref_of),
            ]
        }
    if value is Ellipsis:
        return {"$ellipsis": True}
    if isinstance(value, torch.device):
        return {"$device": str(value)}
    if isinstance(value, torch.memory_format):
        return {"$format": str(value).removeprefix("torch.")}
    raise ProtocolError(tr("a {kind} cannot be sent to a remote worker", kind=type(value).__name__))


def decode(value: Any, resolve: Any, depth: int = 0) -> Any:
    """The inverse of `encode`; `resolve(id)` turns a reference into the object."""
    if depth > 32:
        raise ProtocolError(tr("value nested too deeply"))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        raise ProtocolError(tr("bare lists are not part of the schema"))
    if not isinstance(value, dict) or len(value) != 1:
        raise ProtocolError(tr("not a value of the schema: {value}", value=str(value)[:80]))
    ((tag, inner),) = value.items()
    if tag == "$ref" and type(inner) is int:
        return resolve(inner)
    if tag in ("$tuple", "$list", "$size") and isinstance(inner, list):
        items = [decode(v, resolve, depth + 1) for v in inner]
        if tag == "$size":
            if not all(type(i) is int for i in items):
                raise ProtocolError(tr("a size holds integers"))
            return torch.Size(items)
        return tuple(items) if tag == "$tuple" else items
    if tag == "$dict" and isinstance(inner, list):
        out = {}
        for pair in inner:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ProtocolError(tr("a dict is a list of [key, value] pairs"))
            out[pair[0]] = decode(pair[1], resolve, depth + 1)
        return out
    if tag == "$dtype":
        return dtype_of(inner)
    if tag == "$slice" and isinstance(inner, list) and len(inner) == 3:
        parts = [decode(v, resolve, depth + 1) for v in inner]
        if not all(p is None or type(p) is int for p in parts):
            raise ProtocolError(tr("slice bounds are integers"))
        return slice(*parts)
    if tag == "$ellipsis" and inner is True:
        return Ellipsis
    if tag == "$device" and inner == "cpu":
        return torch.device("cpu")
    if tag == "$format" and inner in _FORMATS:
        return _FORMATS[inner]
    raise ProtocolError(tr("not a value of the schema: {tag}", tag=tag))


def describe(ref: Ref) -> dict[str, Any]:
    return {"id": ref.id_at_location, "shape": list(ref.shape), "dtype": dtype_name(ref.dtype)}


def ref_from(info: Any) -> Ref:
    if not (
        isinstance(info, dict)
        and type(info.get("id")) is int
        and isinstance(info.get("shape"), list)
        and all(type(s) is int and s >= 0 for s in info["shape"])
    ):
        raise ProtocolError(tr("bad object description"))
    return Ref(info["id"], tuple(info["shape"]), dtype_of(info.get("dtype")))
