"""A real Flower deployment on this machine: one SuperLink and some SuperNodes as separate
processes on loopback, talking TLS, with a Flower App run on them by `flwr run`.

Across machines the same three commands run unchanged except for the addresses: the
SuperLink on the server, one SuperNode on each data owner's machine, `flwr run` anywhere.
Here the certificates come from a throwaway certificate authority made at run time, and
every process is started in its own process group and stopped when the `with` ends,
whatever happened inside it.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import ipaddress
import json
import linecache
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from federated.language import tr

LOOPBACK = "127.0.0.1"


def make_certificates(directory: Path, host: str = LOOPBACK) -> dict[str, Path]:
    """A new CA and a server certificate for `host` signed by it, valid for one day.

    Returns the paths `ca` (what clients trust), `cert` and `key` (what the server shows).
    The CA's private key is never written: nothing else can ever be signed with it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "federated lesson CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {
        "ca": directory / "ca.crt",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
    }
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths["key"].chmod(0o600)
    return paths


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _tool(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    if found.exists():
        return str(found)
    located = shutil.which(name)
    if located is None:
        raise FileNotFoundError(
            tr("{name} not found; install Flower: pip install 'federated[flower]'", name=name)
        )
    return located


_APP_PY = '''\
"""The Flower App of a lesson: the learner's code in task.py, wrapped by federated.flower."""

import json
import linecache
import logging

import task
from federated import flower

flower.quiet()
clientapp = flower.client_app(task.{model}, task.{train}, task.{partition}, secure={secure})


def _save(model, history):
    with open({result!r}, "w") as out:
        json.dump({{"accuracies": history.accuracies}}, out)


serverapp = flower.server_app(task.{model}, task.{evaluate}, rounds={rounds},
                              clients={clients}, secure={secure}, on_finish=_save)
'''

_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "lessonapp"
version = "1.0.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "federated"

[tool.flwr.app.components]
serverapp = "app:serverapp"
clientapp = "app:clientapp"

[tool.flwr.app.config]
"""


def write_app(
    directory: Path,
    *,
    imports: str,
    model: Callable[..., Any],
    train: Callable[..., Any],
    partition: Callable[..., Any],
    evaluate: Callable[..., Any],
    helpers: Sequence[Any] = (),
    rounds: int,
    clients: int,
    secure: bool = False,
) -> Path:
    """Write a Flower App whose task.py holds the source of the given functions and classes,
    exactly as the learner wrote them (`imports` first), so that SuperNodes, which are other
    processes, can run them. Returns the path of the result file the ServerApp will write.
    """
    directory.mkdir(parents=True, exist_ok=True)
    parts = [textwrap.dedent(imports).strip()]
    for obj in [*helpers, model, train, partition, evaluate]:
        parts.append(textwrap.dedent(source_of(obj)).strip())
    (directory / "task.py").write_text("\n\n\n".join(parts) + "\n", encoding="utf-8")
    result = directory / "result.json"
    (directory / "app.py").write_text(
        _APP_PY.format(
            model=model.__name__,
            train=train.__name__,
            partition=partition.__name__,
            evaluate=evaluate.__name__,
            rounds=rounds,
            clients=clients,
            secure=secure,
            result=str(result),
        ),
        encoding="utf-8",
    )
    (directory / "pyproject.toml").write_text(_PYPROJECT, encoding="utf-8")
    return result


def source_of(obj: Any) -> str:
    """`inspect.getsource`, also for a class defined in a notebook cell, which Python 3.11
    cannot find by itself (the notebook's module has no file): found through a method."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        if not inspect.isclass(obj):
            raise
    for member in vars(obj).values():
        code = getattr(member, "__code__", None)
        if code is None:
            continue
        lines = linecache.getlines(code.co_filename)
        pattern = re.compile(rf"^\s*class\s+{re.escape(obj.__name__)}\b")
        for start in range(code.co_firstlineno - 1, -1, -1):
            if start < len(lines) and pattern.match(lines[start]):
                return "".join(inspect.getblock(lines[start:]))
    raise OSError(
        tr(
            "cannot find the source of class {obj}: define it in a .py file or in a "
            "notebook cell, so that its code can be written into the app",
            obj=obj.__name__,
        )
    )


class _Processes:
    """What a local deployment and a local Ray node share: `start` launches processes,
    `stop` ends every one of them, and a `with` block calls `stop` however it ends, also
    when starting fails half-way."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


class LocalDeployment(_Processes):
    """`with LocalDeployment(3) as flower: flower.run(app_dir)` starts a SuperLink and three
    SuperNodes (node i holds partition i of 3) and stops all of them on leaving."""

    def __init__(
        self, supernodes: int, *, timeout: float = 300.0, workdir: Path | None = None
    ) -> None:
        if supernodes < 1:
            raise ValueError(tr("a deployment needs at least one SuperNode"))
        self.supernodes, self.timeout = supernodes, timeout
        self._owned_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="flower-"))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.port = 0

    # -- lifetime ---------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            FLWR_HOME=str(self.workdir / "home"), FLWR_TELEMETRY_ENABLED="0", PYTHONUNBUFFERED="1"
        )
        # Flower starts its helpers (flower-superexec, flwr-serverapp...) by name.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed by the child
        try:
            process = subprocess.Popen(
                [_tool(args[0]), *args[1:]],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.workdir,
                start_new_session=True,
            )
        finally:
            log.close()
        self.processes.append(process)

    def start(self) -> None:
        """Certificates, the Flower CLI's connection file, the SuperLink, the SuperNodes."""
        self.certs = make_certificates(self.workdir / "certs")
        self.port = free_port()
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            '[superlink]\ndefault = "lesson"\n\n[superlink.lesson]\n'
            f'address = "{LOOPBACK}:{self.port}"\n'
            f'root-certificates = "{self.certs["ca"]}"\n',
            encoding="utf-8",
        )
        self._spawn(
            "superlink",
            [
                "flower-superlink",
                "--host",
                LOOPBACK,
                "--port",
                str(self.port),
                "--ssl-ca-certfile",
                str(self.certs["ca"]),
                "--ssl-certfile",
                str(self.certs["cert"]),
                "--ssl-keyfile",
                str(self.certs["key"]),
                "--disable-runtime-dependency-installation",
            ],
        )
        self._wait_for_port(self.port)
        for i in range(self.supernodes):
            self._spawn(
                f"supernode-{i}",
                [
                    "flower-supernode",
                    "--superlink",
                    f"{LOOPBACK}:{self.port}",
                    "--root-certificates",
                    str(self.certs["ca"]),
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(free_port()),
                    "--node-config",
                    f"partition-id={i} num-partitions={self.supernodes}",
                ],
            )

    def _wait_for_port(self, port: int) -> None:
        deadline = time.monotonic() + min(self.timeout, 120.0)
        while time.monotonic() < deadline:
            self._check_alive()
            with socket.socket() as s:
                if s.connect_ex((LOOPBACK, port)) == 0:
                    return
            time.sleep(0.2)
        raise TimeoutError(
            tr(
                "the SuperLink did not listen on port {port} in time; see {value}",
                port=port,
                value=self.workdir / "superlink.log",
            )
        )

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                command = cast(list[str], process.args)  # `_start` gives a list of strings
                raise RuntimeError(
                    tr(
                        "{value} exited with {returncode}; see the logs in {workdir}",
                        value=command[0],
                        returncode=process.returncode,
                        workdir=self.workdir,
                    )
                )

    def stop(self) -> None:
        """Stop every process started here and everything they started (Flower detaches
        its SuperExec into a session of its own): SIGTERM, then SIGKILL after 10 s."""
        stop_processes(self.processes)
        if self._owned_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def running(self) -> int:
        """How many of the started processes are still alive."""
        return sum(p.poll() is None for p in self.processes)

    # -- runs -------------------------------------------------------------------------
    def run(
        self, app_dir: Path, result: Path, watch: Callable[[], Any] | None = None
    ) -> dict[str, Any]:
        """Submit the app with `flwr run`, wait (at most `timeout` s) for the ServerApp's
        result file, and return what it wrote. `watch()` is called while waiting."""
        result.unlink(missing_ok=True)
        submitted = subprocess.run(
            [_tool("flwr"), "run", str(app_dir), "lesson", "--format", "json"],
            env=self._env(),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=self.timeout,
        )
        if submitted.returncode != 0:
            raise RuntimeError(
                tr(
                    "flwr run failed: {value}{value_2}",
                    value=submitted.stdout[-2000:],
                    value_2=submitted.stderr[-2000:],
                )
            )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if watch is not None:
                watch()
            if result.exists() and result.stat().st_size > 0:
                time.sleep(0.2)  # let the writer close it
                return json.loads(result.read_text(encoding="utf-8"))
            time.sleep(0.5)
        raise TimeoutError(
            tr(
                "no result after {timeout} s; see the logs in {workdir}",
                timeout=format(self.timeout, ".0f"),
                workdir=self.workdir,
            )
        )


# Ray's own start-up limits, raised for a crowded machine (Ray reads `RAY_<name>` variables
# for its settings): how long the raylet waits for its agents to register, and for a new
# worker process to register.
_RAY_SETTINGS = {
    "RAY_agent_register_timeout_ms": "300000",
    "RAY_worker_register_timeout_seconds": "300",
    "RAY_USAGE_STATS_ENABLED": "0",
    # no GPU here: keep Ray's notice about a future change of its GPU handling quiet
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
}


def _set_group_priority(pid: int, nice: int) -> None:
    """The scheduling priority of `pid`'s session (Linux autogroup), where allowed."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))


class LocalRay(_Processes):
    """`with LocalRay() as ray_cluster:` one Ray node on loopback for Flower's simulation
    engine: `ray start --head --block` in a session of its own, no dashboard, logs in a
    temporary folder, every port chosen here. `connect()` makes this process its driver.
    Leaving the `with` disconnects and stops every process of the cluster, whatever
    happened inside it; starting takes at most `timeout` seconds."""

    def __init__(self, cpus: int = 1, *, timeout: float = 300.0) -> None:
        if cpus < 1:
            raise ValueError(tr("a Ray cluster needs at least one CPU"))
        self.cpus, self.timeout = cpus, timeout
        self.workdir: Path | None = None  # made by `start`
        self.processes: list[subprocess.Popen[bytes]] = []
        self.port = 0

    def start(self) -> None:
        """Start the node and wait until `ray start` reports it ready."""
        self.workdir = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray puts sockets here
        self.port = free_port()
        agent, listen, metrics, runtime_env = (free_port() for _ in range(4))
        env = dict(os.environ, **_RAY_SETTINGS)
        # Ray's workers import what the driver imports (a test's own modules too)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        log_path = self.workdir / "ray-start.log"
        with open(log_path, "wb") as log:
            self.processes.append(
                subprocess.Popen(
                    [
                        _tool("ray"),
                        "start",
                        "--head",
                        "--block",
                        f"--node-ip-address={LOOPBACK}",
                        f"--port={self.port}",
                        f"--num-cpus={self.cpus}",
                        "--num-gpus=0",
                        "--include-dashboard=false",
                        "--include-log-monitor=false",
                        "--disable-usage-stats",
                        f"--temp-dir={self.workdir}",
                        f"--dashboard-agent-grpc-port={agent}",
                        f"--dashboard-agent-listen-port={listen}",
                        f"--metrics-export-port={metrics}",
                        f"--runtime-env-agent-port={runtime_env}",
                        "--object-store-memory=100000000",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.workdir,
                    start_new_session=True,
                )
            )
        process = self.processes[0]
        # Its new session is its own scheduling group (Linux autogroup). The raylet gives
        # its dashboard agent a fixed 15 s to start (ray-project/ray#65983), which a
        # crowded machine misses, so the group goes first until the node is up (root
        # only; elsewhere this changes nothing).
        _set_group_priority(process.pid, -10)
        deadline = time.monotonic() + self.timeout
        while b"block forever" not in log_path.read_bytes():
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
                raise RuntimeError(
                    tr(
                        "Ray did not start ({last_line}); its logs are in {folder}",
                        last_line=" ".join(tail),
                        folder=self.workdir,
                    )
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    tr(
                        "Ray did not start in {seconds} s. The machine may be busy: try "
                        "again, or allow longer with `timeout=`.",
                        seconds=format(self.timeout, ".0f"),
                    )
                )
            time.sleep(0.2)
        _set_group_priority(process.pid, 0)

    def connect(self) -> None:
        """Make this process the cluster's driver (Flower's engine then uses this cluster)."""
        import ray

        if not ray.is_initialized():
            for name, value in _RAY_SETTINGS.items():
                os.environ.setdefault(name, value)
            ray.init(
                address=f"{LOOPBACK}:{self.port}",
                _node_ip_address=LOOPBACK,
                logging_level=logging.ERROR,
                log_to_driver=False,
            )

    def started(self) -> set[int]:
        """Every process of the cluster now alive."""
        return {pid for p in self.processes for pid in process_tree(p.pid)}

    def stop(self) -> None:
        """Disconnect this process, stop every process of the cluster, delete its folder."""
        import ray

        if ray.is_initialized():
            ray.shutdown()
        stop_processes(self.processes)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop `processes` and all their descendants, found before and after asking them to
    stop: SIGTERM to each process group, SIGKILL to whatever is left after 10 s. Empties
    the list."""
    tree = {pid for p in processes for pid in process_tree(p.pid)}
    for process in processes:
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    tree |= {pid for p in processes for pid in process_tree(p.pid)}
    for pid in tree | {p.pid for p in processes}:
        _signal_group(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for process in processes:
        process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(is_running(pid) for pid in tree):
        time.sleep(0.1)
    processes.clear()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # state, ppid, pgrp, ...


def process_tree(root: int) -> set[int]:
    """`root` and all its descendants now alive (from /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def is_running(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for its parent to collect it."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"
