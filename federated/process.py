"""Starting a worker server as a child process, from a notebook or a test.

`WorkerProcess("bob", token=...)` runs `python -m federated.worker --id bob ...` with a
free port and a private token file, waits until the server answers, and `stop()` ends it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from federated.errors import FederatedError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorkerProcess:
    """A worker server in a child process; `stop()` ends it (so does leaving a `with`)."""

    def __init__(self, worker_id: str, port: int | None = None, token: str | None = None,
                 data: Path | None = None, private: bool = False, timeout: float = 30.0,
                 token_dir: Path | None = None, max_message_mb: int | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.id, self.port, self.token = worker_id, port or free_port(), token
        command = [sys.executable, "-m", "federated.worker", "--id", worker_id,
                   "--port", str(self.port)]
        if token is not None:
            folder = token_dir or Path(os.environ.get("TMPDIR", "/tmp"))
            self.token_file = folder / f"federated-{worker_id}-{self.port}.token"
            self.token_file.write_text(token)
            self.token_file.chmod(0o600)
            command += ["--token-file", str(self.token_file)]
        if data is not None:
            command += ["--data", str(data)] + (["--private"] if private else [])
        if max_message_mb is not None:
            command += ["--max-message-mb", str(max_message_mb)]
        if tls is not None:
            command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        self.tls_root = Path(tls[0]).read_bytes() if tls is not None else None
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, env=env)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        from federated.remote import RemoteWorker

        deadline = time.monotonic() + timeout
        probe = RemoteWorker(None, id=self.id, port=self.port, token=self.token, timeout=1.0,
                             tls_root=self.tls_root)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"worker {self.id} exited: "
                                       f"{self.process.stderr.read().decode()[-2000:]}")
                try:
                    probe.ping()
                    return
                except FederatedError:
                    time.sleep(0.1)
            self.stop()
            raise TimeoutError(f"worker {self.id} did not start within {timeout} s")
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
        if self.process.stderr:
            self.process.stderr.close()
        if getattr(self, "token_file", None) is not None and self.token_file.exists():
            self.token_file.unlink()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
