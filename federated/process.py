"""Starting worker servers as child processes, from a notebook or a test.

`WorkerProcess("bob", token=...)` runs `python -m federated.server --id bob ...` with a
free port and private token files, waits until the server answers, and `stop()` ends it.
`WorkerProcess.group(["bob", "alice"])` starts servers that know each other as peers,
each pair with tokens of its own, so objects can move between them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from federated.errors import FederatedError
from federated.language import tr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _taken(port: int) -> bool:
    """Whether something else listens on `port` now (it was free when chosen)."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True


class _PortTaken(RuntimeError):
    """The port chosen was bound by another process before our server could bind it."""


#: Attempts with a newly chosen port: between `free_port()` and the server's bind, any
#: other process (another test run, say) may take the port.
_PORT_TRIES = 5


class WorkerProcess:
    """A worker server in a child process; `stop()` ends it (so does leaving a `with`).

    `peers` maps a peer's name to (port, token this server presents there); `callers`
    maps extra callers' names to their tokens; `owner_token` may `load` data.
    """

    def __init__(
        self,
        worker_id: str,
        port: int | None = None,
        token: str | None = None,
        data: Path | None = None,
        private: bool = False,
        timeout: float = 120.0,
        max_message_mb: int | None = None,
        tls: tuple[Path, Path] | None = None,
        peers: dict[str, tuple[int, str]] | None = None,
        callers: dict[str, str] | None = None,
        owner_token: str | None = None,
        extra_args: Sequence[str] = (),
        module: str = "federated.server",
    ) -> None:
        self.id, self.port, self.token = worker_id, port or free_port(), token
        self.folder = Path(tempfile.mkdtemp(prefix=f"federated-{worker_id}-"))  # mode 700
        command = [sys.executable, "-m", module, "--id", worker_id, "--port", str(self.port)]
        if token is not None:
            command += ["--token-file", self._secret("client", token)]
        for name, secret in (callers or {}).items():
            command += ["--caller", f"{name}={self._secret(f'caller-{name}', secret)}"]
        if owner_token is not None:
            command += ["--owner-token-file", self._secret("owner", owner_token)]
        for name, (peer_port, secret) in (peers or {}).items():
            command += [
                "--peer",
                f"{name}=127.0.0.1:{peer_port}",
                "--peer-token-file",
                f"{name}={self._secret(f'peer-{name}', secret)}",
            ]
        if data is not None:
            command += ["--data", str(data)] + (["--private"] if private else [])
        if max_message_mb is not None:
            command += ["--max-message-mb", str(max_message_mb)]
        if tls is not None:
            command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        command += list(extra_args)
        self.tls_root = Path(tls[0]).read_bytes() if tls is not None else None
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        self._stderr_path = self.folder / "stderr.txt"
        for tries_left in reversed(range(_PORT_TRIES if port is None else 1)):
            with open(self._stderr_path, "wb") as log:  # a file, not a pipe nobody empties
                self.process = subprocess.Popen(
                    command, stdout=subprocess.DEVNULL, stderr=log, env=env
                )
            try:
                self._wait_ready(timeout)
                return
            except _PortTaken:
                if not tries_left:
                    self.stop()
                    raise
                self.port = free_port()  # ours to choose again: the server has exited
                command[command.index("--port") + 1] = str(self.port)
            except BaseException:
                self.stop()
                raise

    @classmethod
    def group(
        cls, worker_ids: Sequence[str], token: str | None = None, **kwargs: Any
    ) -> list[WorkerProcess]:
        """One server per id, each with every other as a peer, each link with its own
        token (the caller's `token`, made up if not given, is never passed between them)."""
        token = token or secrets.token_hex(16)
        link = {(a, b): secrets.token_hex(16) for a in worker_ids for b in worker_ids if a != b}
        tries_left = _PORT_TRIES
        while True:
            tries_left -= 1
            ports = {w: free_port() for w in worker_ids}  # each server knows the others'
            started: list[WorkerProcess] = []
            try:
                for w in worker_ids:
                    others = [o for o in worker_ids if o != w]
                    started.append(
                        cls(
                            w,
                            port=ports[w],
                            token=token,
                            peers={o: (ports[o], link[(w, o)]) for o in others},
                            callers={o: link[(o, w)] for o in others},
                            **kwargs,
                        )
                    )
                return started
            except BaseException as error:
                for process in started:
                    process.stop()
                if not (isinstance(error, _PortTaken) and tries_left):
                    raise

    def _secret(self, name: str, value: str) -> str:
        path = self.folder / f"{name}.token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        return str(path)

    def stderr(self) -> str:
        """What the server wrote to its standard error so far."""
        try:
            return self._stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        from federated.remote import RemoteWorker

        deadline = time.monotonic() + timeout
        probe = RemoteWorker(
            None, id=self.id, port=self.port, token=self.token, timeout=1.0, tls_root=self.tls_root
        )
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    kind = _PortTaken if _taken(self.port) else RuntimeError
                    raise kind(
                        tr(
                            "worker {worker} exited: {value}",
                            worker=self.id,
                            value=self.stderr()[-2000:],
                        )
                    )
                try:  # whoever answers must be our server, not one that took the port
                    if probe.ping() == self.id:
                        return
                except (FederatedError, PermissionError):
                    pass
                time.sleep(0.1)
            raise TimeoutError(
                tr(
                    "worker {worker} did not start within {timeout} s",
                    worker=self.id,
                    timeout=timeout,
                )
            )
        finally:
            probe.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
