"""The other worker servers this one may talk to, configured by its operator.

Moves and chains between servers name the destination only by its peer name; the
address and the token this server uses for it come from its own start-up flags
(`--peer alice=HOST:PORT --peer-token-file alice=FILE`). So a caller never sends a
token to be forwarded, and a reply never carries one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federated.access import read_token, stderr
from federated.language import tr
from federated.protocol import ProtocolError
from federated.remote import RemoteWorker


@dataclass(frozen=True)
class Peer:
    """How this server reaches another: its address, and the token it presents there."""

    name: str
    host: str
    port: int
    token: str | None = None
    tls_root: bytes | None = None


def parse_named(values: list[str] | None, flag: str) -> dict[str, str]:
    """`["alice=x", ...]` as `{"alice": "x"}`, or SystemExit naming the bad flag."""
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(
                tr("{flag} takes NAME=VALUE, got {value}", flag=flag, value=repr(value))
            )
        if name in out:
            raise SystemExit(tr("{flag} {name} is given twice", flag=flag, name=name))
        out[name] = rest
    return out


def parse_address(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SystemExit(tr("{flag} takes NAME=HOST:PORT, got {text}", flag=flag, text=repr(text)))
    return host.strip("[]"), int(port)


class Peers:
    """Clients for the configured peers, made on first use.

    `boot` is this server's boot nonce: a peer answering with the same one is this very
    server reached by another address, which would deadlock on its own lock.
    """

    def __init__(self, peers: list[Peer], own_id: str, boot: int, timeout: float) -> None:
        for peer in peers:
            if peer.name == own_id:
                raise SystemExit(
                    tr("--peer {name}: a worker cannot be its own peer", name=peer.name)
                )
        self._config = {p.name: p for p in peers}
        self.own_id, self.boot, self.timeout = own_id, boot, timeout
        self._clients: dict[str, RemoteWorker] = {}
        self._lock = threading.Lock()
        self._deadline: float | None = None

    @property
    def names(self) -> list[str]:
        return list(self._config)

    def client(self, name: Any) -> RemoteWorker:
        """The client for peer `name`, checked once to be that worker and not this one."""
        if not isinstance(name, str) or name not in self._config:
            configured = ", ".join(self._config) or "none"
            raise PermissionError(
                tr(
                    "{own_id} has no peer named {name} (configured: {configured}). Its "
                    "operator adds one with --peer NAME=HOST:PORT --peer-token-file "
                    "NAME=FILE.",
                    own_id=self.own_id,
                    name=repr(name),
                    configured=configured,
                )
            )
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                peer = self._config[name]
                client = RemoteWorker(
                    None,
                    id=name,
                    host=peer.host,
                    port=peer.port,
                    token=peer.token,
                    timeout=self._remaining(),
                    tls_root=peer.tls_root,
                )
                identity = client.identity()
                if identity.get("boot") == self.boot:
                    client.close()
                    raise ProtocolError(
                        tr(
                            "peer {name} at {host}:{port} is {own_id} itself: a worker "
                            "cannot be its own peer",
                            name=name,
                            host=peer.host,
                            port=peer.port,
                            own_id=self.own_id,
                        )
                    )
                if identity.get("id") != name:
                    client.close()
                    raise ProtocolError(
                        tr(
                            "peer {name} at {host}:{port} says it is {value}: check --peer {name}",
                            name=name,
                            host=peer.host,
                            port=peer.port,
                            value=repr(identity.get("id")),
                        )
                    )
                self._clients[name] = client
            return client

    def limit_to(self, deadline: float) -> None:
        """Calls to peers made for the current call end by its deadline (monotonic time),
        so waiting on a peer never holds this server past what its caller waits for."""
        self._deadline = deadline
        for client in self._clients.values():
            client.timeout = self._remaining()

    def _remaining(self) -> float:
        if self._deadline is None:
            return self.timeout
        return max(self._deadline - time.monotonic(), 0.001)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def peers_from_flags(
    addresses: list[str] | None, token_files: list[str] | None, tls_roots: list[str] | None
) -> list[Peer]:
    where = parse_named(addresses, "--peer")
    tokens = parse_named(token_files, "--peer-token-file")
    roots = parse_named(tls_roots, "--peer-tls-root")
    for name in (*tokens, *roots):
        if name not in where:
            raise SystemExit(
                tr("{name} has a token or certificate but no --peer {name}=HOST:PORT", name=name)
            )
    peers = []
    for name, text in where.items():
        host, port = parse_address(text, "--peer")
        token = read_token(Path(tokens[name]), stderr) if name in tokens else None
        root = Path(roots[name]).read_bytes() if name in roots else None
        peers.append(Peer(name, host, port, token, root))
    return peers
