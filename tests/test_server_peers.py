"""Workers that talk to each other: only configured peers, each link with its own token,
and no token ever in a reply or passed from one worker to another.

Recording proxies sit on every connection (caller to each worker, and each worker to the
other), so the test sees every byte and every token that crosses.
"""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest
import torch

import federated as sy
from federated import protocol, server
from federated.peers import Peer, Peers
from federated.process import free_port
from federated.protocol import METHOD, STREAM

TOKENS = {
    "client-bob": "cb-0123456789abcdef",
    "client-alice": "ca-fedcba9876543210",
    "bob-alice": "ba-5555aaaa5555aaaa",
    "alice-bob": "ab-7777bbbb7777bbbb",
}


class RecordingProxy:
    """Forwards every call to the port given to `to` and keeps what passed: the token
    each call carried, each request and each reply. It listens on a port the system
    picks as it binds (none chosen first that another process could take meanwhile), so
    servers can be started knowing it, and then be given to it."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.messages: list[bytes] = []
        self.lock = threading.Lock()
        self.channel: grpc.Channel | None = None

        def call(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = [(k, v) for k, v in context.invocation_metadata() if k == "authorization"]
            reply = self.forward(request, metadata=metadata, timeout=30)
            with self.lock:
                self.tokens += [v.removeprefix("Bearer ") for _, v in metadata]
                self.messages += [request, reply]
            return reply

        def stream(requests, context: grpc.ServicerContext):
            metadata = [(k, v) for k, v in context.invocation_metadata() if k == "authorization"]
            sent = list(requests)
            replies = list(self.forward_stream(iter(sent), metadata=metadata, timeout=30))
            with self.lock:
                self.tokens += [v.removeprefix("Bearer ") for _, v in metadata]
                self.messages += [*sent, *replies]
            yield from replies

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "federated.Worker",
                    {
                        "Call": grpc.unary_unary_rpc_method_handler(call),
                        "Stream": grpc.stream_stream_rpc_method_handler(stream),
                    },
                ),
            )
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def to(self, target_port: int) -> RecordingProxy:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{target_port}")
        self.forward = self.channel.unary_unary(METHOD)
        self.forward_stream = self.channel.stream_stream(STREAM)
        return self

    def close(self) -> None:
        self.server.stop(0).wait()
        if self.channel is not None:
            self.channel.close()


@pytest.fixture(scope="module")
def federation():
    """bob and alice, peers of each other through proxies; the caller reaches each
    through a proxy too."""
    links = ("bob->alice", "alice->bob", "client->bob", "client->alice")
    proxies = {link: RecordingProxy() for link in links}
    processes = []
    try:
        processes.append(
            sy.WorkerProcess(  # its own port, chosen again should another process take it
                "bob",
                token=TOKENS["client-bob"],
                peers={"alice": (proxies["bob->alice"].port, TOKENS["bob-alice"])},
                callers={"alice": TOKENS["alice-bob"]},
            )
        )
        processes.append(
            sy.WorkerProcess(
                "alice",
                token=TOKENS["client-alice"],
                peers={"bob": (proxies["alice->bob"].port, TOKENS["alice-bob"])},
                callers={"bob": TOKENS["bob-alice"]},
            )
        )
        ports = {process.id: process.port for process in processes}
        for link, proxy in proxies.items():  # neither server has called a peer yet
            proxy.to(ports[link.split("->")[1]])
        hook = sy.TorchHook(torch)
        bob = sy.RemoteWorker(
            hook, id="bob", port=proxies["client->bob"].port, token=TOKENS["client-bob"], timeout=20
        )
        alice = sy.RemoteWorker(
            hook,
            id="alice",
            port=proxies["client->alice"].port,
            token=TOKENS["client-alice"],
            timeout=20,
        )
        yield bob, alice, proxies, processes
        bob.close()
        alice.close()
    finally:
        for process in processes:
            process.stop()
        for proxy in proxies.values():
            proxy.close()


def test_moves_chains_and_shares_work_between_configured_peers(federation):
    bob, alice, _, _ = federation
    x = torch.tensor([5.0, 6.0]).send(bob)
    x.move(alice)
    assert x.location is alice and torch.equal(x.get(), torch.tensor([5.0, 6.0]))
    chain = torch.tensor([7.0]).send(bob).send(alice)  # alice points to bob's object
    inner = (chain + 1).get()  # alice runs it on bob, then hands us bob's pointer
    assert inner.location is bob and torch.equal(inner.get(), torch.tensor([8.0]))
    shared = torch.tensor([1.5, -2.0]).fix_precision().share(bob, alice, crypto_provider=bob)
    torch.testing.assert_close((shared + shared).get().float_precision(), torch.tensor([3.0, -4.0]))


def test_no_token_is_ever_in_a_reply_or_passed_between_workers(federation):
    bob, alice, proxies, _ = federation
    test_moves_chains_and_shares_work_between_configured_peers(federation)
    bob.flush()
    alice.flush()
    # Each link carried its own token and no other.
    assert set(proxies["client->bob"].tokens) == {TOKENS["client-bob"]}
    assert set(proxies["client->alice"].tokens) == {TOKENS["client-alice"]}
    assert set(proxies["bob->alice"].tokens) == {TOKENS["bob-alice"]}
    assert set(proxies["alice->bob"].tokens) == {TOKENS["alice-bob"]}
    # No token inside any request or reply, on any link.
    for name, proxy in proxies.items():
        assert proxy.messages, f"nothing crossed {name}: the test would prove nothing"
        for message in proxy.messages:
            for token in TOKENS.values():
                assert token.encode() not in message, (name, token)


def test_a_caller_cannot_name_an_address_or_the_worker_itself(federation):
    bob, alice, _, processes = federation
    x = torch.tensor([1.0, 2.0]).send(bob)
    for destination in (
        {
            "id": "alice",
            "host": "127.0.0.1",
            "port": processes[1].port,
            "token": TOKENS["client-alice"],
        },
        "bob",
        "carol",
    ):
        with pytest.raises(PermissionError, match="no peer named"):
            bob.request({"command": "move", "ids": [x.id_at_location], "to": destination})
    assert torch.equal(x.get(), torch.tensor([1.0, 2.0]))  # still on bob, unchanged


def test_a_worker_cannot_be_configured_as_its_own_peer(tmp_path):
    port = free_port()
    with pytest.raises(SystemExit, match="own peer"):
        server.main(["--id", "bob", "--port", str(port), "--peer", f"bob=127.0.0.1:{port + 1}"])
    with pytest.raises(SystemExit, match="own address"):
        server.main(["--id", "bob", "--port", str(port), "--peer", f"other=127.0.0.1:{port}"])


def test_a_peer_that_turns_out_to_be_this_server_is_refused():
    running = server.serve("judy", 0)  # port 0: the system's pick, bound at once
    proxy = RecordingProxy().to(running.port)  # the same server, reached by another address
    try:
        peers = Peers([Peer("kate", "127.0.0.1", proxy.port)], "judy", running.servicer.boot, 30.0)
        with pytest.raises(protocol.ProtocolError, match="judy itself"):
            peers.client("kate")
        peers.close()
    finally:
        proxy.close()
        running.stop()


def test_a_peer_answering_with_another_name_is_refused(federation):
    _, _, _, processes = federation
    peers = Peers(
        [Peer("carol", "127.0.0.1", processes[1].port, TOKENS["bob-alice"])], "bob", 1, 30.0
    )
    with pytest.raises(protocol.ProtocolError, match="says it is 'alice'"):
        peers.client("carol")
    peers.close()
