"""Who may call a worker server: tokens, read from files, checked before a message is read.

Each caller the operator allows has a name and a token of its own (the data owner, a
client, a peer worker). The token travels in the call's metadata; `TokenCheck`, a gRPC
server interceptor, compares it before gRPC reads the request body, so an unauthenticated
caller can neither make the server read a large message nor hold one of its threads.
"""

from __future__ import annotations

import hmac
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from federated.language import tr
from federated.protocol import METHOD, STREAM


@dataclass(frozen=True)
class Caller:
    """One identity a server accepts. `owner` may place data with `load`."""

    name: str
    token: str = ""
    owner: bool = False


ANONYMOUS = Caller("anonymous")  # every caller of a loopback server started without tokens


def check_token(token: str, where: str) -> str:
    """The token itself, or SystemExit if it is empty or all whitespace."""
    if not token.strip():
        raise SystemExit(
            tr(
                "{where} is empty: a token must be a secret string, e.g. `python -c "
                "'import secrets; print(secrets.token_hex(16))' > FILE`",
                where=where,
            )
        )
    if token != token.strip() or any(c in token for c in "\r\n"):
        raise SystemExit(tr("{where}: a token may not contain spaces or line breaks", where=where))
    return token


def read_token(path: Path, warn: Callable[[str], Any] = print) -> str:
    """The token in `path` (its one line), refusing an empty file and warning when other
    users of this machine may read it."""
    path = Path(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        warn(
            f"warning: {path} can be read by other users of this machine; anyone who "
            f"reads it can call this worker. Run `chmod 600 {path}`."
        )
    return check_token(path.read_text().strip(), f"token file {path}")


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Callers:
    """The configured identities, looked up by the token a call carries."""

    def __init__(self, callers: Sequence[Caller]) -> None:
        names = [c.name for c in callers]
        if len(set(names)) != len(names):
            raise SystemExit(tr("caller names must differ: {names}", names=names))
        tokens = [c.token for c in callers]
        if len(set(tokens)) != len(tokens):
            raise SystemExit(tr("two callers were given the same token: give each its own"))
        for caller in callers:
            check_token(caller.token, f"the token of caller {caller.name!r}")
        self._callers = list(callers)
        self._bearers = [(f"Bearer {c.token}".encode(), c) for c in callers]

    @property
    def open(self) -> bool:
        """No tokens configured: a loopback server for one trusted user."""
        return not self._callers

    def __iter__(self):  # noqa: ANN204 - an iterator of Caller
        return iter(self._callers)

    def identify(self, metadata: Any) -> Caller | None:
        """The caller whose token the metadata carries, or None. Compares every token in
        constant time, so the answer's timing says nothing about the tokens."""
        if self.open:
            return ANONYMOUS
        sent = b""
        for key, value in metadata or ():
            if key == "authorization":
                sent = value.encode() if isinstance(value, str) else bytes(value)
        found = None
        for bearer, caller in self._bearers:
            if hmac.compare_digest(sent, bearer):
                found = caller
        return found


def _refuse(request_iterator: Any, context: grpc.ServicerContext) -> None:
    # Never iterates the request: its body is not read, whatever its size.
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong or missing token")


_REFUSAL = grpc.stream_unary_rpc_method_handler(_refuse)


class TokenCheck(grpc.ServerInterceptor):
    """Refuses a call without a known token as soon as its metadata arrives.

    The refusal is a stream handler that never reads its request stream: for a unary
    method gRPC would first receive and size-check the whole message, and for `Stream`
    not one chunk is taken.
    """

    def __init__(self, callers: Callers) -> None:
        self.callers = callers

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        known = details.method in (METHOD, STREAM)
        if not known or self.callers.identify(details.invocation_metadata) is None:
            return _REFUSAL
        return continuation(details)
