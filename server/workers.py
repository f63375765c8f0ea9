"""``ephemera serve --workers N``: N server processes sharing one HTTP port.

Each worker is a whole server and its own media node (docs/relay.md): its own node id, its
own UDP ports for WebRTC and the trunk, its own registry entry (its URL is the public URL
plus ``#worker-<n>``, so a replaced worker retires its dead predecessor at once). Every
worker listens on the same port with ``SO_REUSEPORT``: the kernel spreads new connections
over them; any worker takes any room socket, and the media router sends each participant's
media to the node serving it. So one machine puts every core to work for one big room.

The supervisor (this process) holds the port (bound, not listening), starts the embedded
Valkey when ``REDIS_URL`` is unset (one for all workers), keeps Prometheus metrics in a
shared folder so ``/metrics`` on any worker counts them all, replaces a worker that dies,
and on Ctrl-C (SIGINT) or SIGTERM stops every worker gracefully. A worker that fails to
start stops them all: the reason is returned, as for a single process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import structlog

from server.settings import Settings

log = structlog.get_logger(__name__)

READY, FAILED = "ready", "failed"
STOP_WITHIN = 30.0  # seconds a worker has to shut down gracefully before it is killed
REPLACE_PAUSE = 1.0  # between a worker's death and its replacement (no restart storms)


def default_workers() -> int:
    """One per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def shared_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` that other processes of ours may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


@dataclass
class Worker:
    index: int
    process: BaseProcess
    conn: Connection
    ready: bool = False


class Supervisor:
    def __init__(self, settings: Settings, host: str, port: int, count: int) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.count = count
        self.workers: dict[int, Worker] = {}
        self.stopping = False
        self.announced = False
        self._context = multiprocessing.get_context("spawn")

    def run(self) -> str | None:
        """Serve until stopped; the reason it could not start, or None."""
        try:
            holder = shared_port_socket(self.host, self.port)
        except OSError as exc:
            return f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
        self.port = holder.getsockname()[1]
        with holder, contextlib.ExitStack() as stack:
            self._share_redis(stack)
            self._share_metrics(stack)
            previous = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
            stack.callback(lambda: [signal.signal(s, h) for s, h in previous.items()])
            for index in range(self.count):
                self._spawn(index)
            return self._supervise()

    def _share_redis(self, stack: contextlib.ExitStack) -> None:
        if self.settings.redis_url is not None:
            return
        from server.valkey import EmbeddedValkey

        embedded = EmbeddedValkey(self.settings.data_dir / "valkey")
        embedded.start()
        stack.callback(embedded.stop)
        os.environ["REDIS_URL"] = embedded.url

    def _share_metrics(self, stack: contextlib.ExitStack) -> None:
        folder = tempfile.mkdtemp(prefix="ephemera-metrics-")
        stack.callback(shutil.rmtree, folder, True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _spawn(self, index: int) -> None:
        ours, theirs = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=worker_main, args=(index, self.host, self.port, theirs), name=f"worker-{index}"
        )
        process.start()
        theirs.close()
        self.workers[index] = Worker(index, process, ours)

    def _supervise(self) -> str | None:
        failure: str | None = None
        while not self.stopping and failure is None:
            objects: list[Any] = [w.conn for w in self.workers.values()]
            objects += [w.process.sentinel for w in self.workers.values()]
            for ready in wait(objects, timeout=0.5):
                failure = failure or self._handle(ready)
        self._stop_all()
        return failure

    def _handle(self, ready: Any) -> str | None:
        for worker in list(self.workers.values()):
            if ready is worker.conn:
                return self._message(worker)
            if ready == worker.process.sentinel:
                return self._died(worker)
        return None

    def _message(self, worker: Worker) -> str | None:
        try:
            kind, detail = worker.conn.recv()
        except (EOFError, OSError):  # its end closed: the sentinel tells the rest
            return None
        if kind == FAILED:
            return str(detail)
        worker.ready = True
        if not self.announced and all(w.ready for w in self.workers.values()):
            self.announced = True
            where = f"[{self.host}]" if ":" in self.host else self.host
            print(f"Ephemera running on http://{where}:{self.port} (Ctrl-C to stop)", flush=True)
        return None

    def _died(self, worker: Worker) -> str | None:
        worker.process.join()
        worker.conn.close()
        del self.workers[worker.index]
        _forget_metrics(worker.process.pid)
        if self.stopping:
            return None
        if not worker.ready:
            return f"worker {worker.index} exited with code {worker.process.exitcode}"
        log.error("serve.worker_died", worker=worker.index, code=worker.process.exitcode)
        time.sleep(REPLACE_PAUSE)
        self._spawn(worker.index)
        return None

    def _stop_all(self) -> None:
        self.stopping = True
        for worker in self.workers.values():
            if worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WITHIN
        for worker in self.workers.values():
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()


def _stop_with_parent() -> None:
    """Linux: this process gets SIGTERM when the supervisor dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # it died before that took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _forget_metrics(pid: int | None) -> None:
    """A dead worker's live gauges (connections, rooms) no longer count."""
    if pid is None:
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid)


def worker_main(index: int, host: str, port: int, conn: Connection) -> None:
    """One worker: a whole server on the shared port, its own node."""
    settings = Settings()
    base = (settings.media_node_url or settings.public_base_url).rstrip("/")
    os.environ["EPHEMERA_MEDIA_NODE_URL"] = f"{base}#worker-{index}"
    # Ctrl-C in a terminal reaches its whole process group: only the supervisor gets it,
    # and stops each worker once (a second signal would make uvicorn skip the clean-up).
    os.setpgrp()
    _stop_with_parent()
    from server import serving
    from server.logs import configure_logging

    configure_logging(settings.log_level, settings.log_json, stdlib=True)

    reason = serving.run_worker(Settings(), shared_port_socket(host, port), conn)
    if reason is not None:
        with contextlib.suppress(OSError):
            conn.send((FAILED, reason))
