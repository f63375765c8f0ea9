"""`ephemera serve` as users run it: the line that says where it listens, readable or JSON
logs, and deadlines for clients that send their requests too slowly (slowloris)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from server.serving import timeouts
from server.settings import Settings
from tests.support import token

EPHEMERA = Path(sys.executable).with_name("ephemera")
STARTED = re.compile(r"Ephemera running on (http://127\.0\.0\.1:(\d+)) \(Ctrl-C to stop\)")


class Serve:
    """``ephemera serve --port 0`` in a child process, its output read as it comes."""

    def __init__(self, env: dict[str, str], tty: bool) -> None:
        self.tty = tty
        if tty:  # stdout and stderr on a pseudo-terminal, as in a user's shell
            self.master, slave = pty.openpty()
            out: int = slave
        else:
            self.master, out = os.pipe()
        self.proc = subprocess.Popen(
            [str(EPHEMERA), "serve", "--port", "0"],
            env={**os.environ, **env},
            stdout=out,
            stderr=out if tty else subprocess.PIPE,
        )
        os.close(out)
        self.output = ""
        match = self.wait_for(STARTED)
        self.url, self.port = match.group(1), int(match.group(2))

    def read(self, seconds: float) -> None:
        ready, _, _ = select.select([self.master], [], [], seconds)
        if ready:
            with contextlib.suppress(OSError):  # the pty is closed when the child exits
                self.output += os.read(self.master, 65536).decode(errors="replace")

    def wait_for(self, pattern: re.Pattern[str], within: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + within
        while not (match := pattern.search(self.output)):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {pattern.pattern!r} in {self.output!r}")
            self.read(0.1)
        return match

    def stop(self) -> str:
        """Stop with Ctrl-C as a user would; the process's stderr when it was a pipe."""
        self.proc.send_signal(signal.SIGINT)
        err = ""
        if self.proc.stderr is not None:
            with self.proc.stderr:
                err = self.proc.stderr.read().decode()
        assert self.proc.wait(timeout=30) == 0
        self.read(0.2)
        os.close(self.master)
        return err


@pytest.fixture
def serve(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Serve]]:
    started: list[Serve] = []

    def start(tty: bool = False, **env: str) -> Serve:
        s = make_settings()
        base = {
            "REDIS_URL": s.redis_url or "",
            "EPHEMERA_KEY_PREFIX": s.key_prefix,
            "EPHEMERA_DATA_DIR": str(s.data_dir),
            "EPHEMERA_SECRET_KEY": s.secret_key,
        }
        os.environ.pop("EPHEMERA_LOG_JSON", None)
        server = Serve({**base, **env}, tty)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def test_serve_says_where_and_logs_json_when_not_on_a_terminal(
    serve: Callable[..., Serve],
) -> None:
    server = serve()
    assert server.output.strip() == f"Ephemera running on {server.url} (Ctrl-C to stop)"
    assert httpx.get(server.url + "/healthz").status_code == 200
    with socket.create_connection(("127.0.0.1", server.port)) as raw:  # uvicorn warns
        raw.sendall(b"\x00 not http\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400 ")
    err = server.stop()
    lines = [json.loads(line) for line in err.splitlines()]  # every line is JSON
    access = {"event": "http", "path": "/healthz", "status": 200}.items()
    assert [line for line in lines if access <= line.items()]
    warning = {"logger": "uvicorn.error", "level": "warning"}.items()
    assert [line for line in lines if warning <= line.items()]


def test_serve_logs_readable_lines_on_a_terminal(serve: Callable[..., Serve]) -> None:
    server = serve(tty=True)
    assert httpx.get(server.url + "/healthz").status_code == 200
    server.wait_for(re.compile(r"/healthz"))
    [line] = [x for x in server.output.splitlines() if "/healthz" in x]
    assert "\x1b[" in line  # coloured, for a terminal
    words = re.sub(r"\x1b\[[0-9;]*m", "", line).split()
    assert {"[info", "http", "method=GET", "path=/healthz", "status=200"} <= set(words)
    server.stop()
    forced = serve(tty=True, EPHEMERA_LOG_JSON="true")
    assert httpx.get(forced.url + "/healthz").status_code == 200
    line = forced.wait_for(re.compile(r"^\{.*/healthz.*$", re.M)).group(0)
    assert json.loads(line)["status"] == 200
    forced.stop()


async def open_trickling(port: int, head: bytes) -> tuple[asyncio.StreamReader, Callable[[], None]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)

    async def trickle() -> None:
        with_errors = (ConnectionError, RuntimeError)
        try:
            while not writer.is_closing():
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.2)
        except with_errors:
            pass

    task = asyncio.create_task(trickle())

    def close() -> None:
        task.cancel()
        writer.close()

    return reader, close


async def test_slow_headers_and_bodies_are_cut_off(serve: Callable[..., Serve]) -> None:
    server = serve(EPHEMERA_HEADER_TIMEOUT_SECONDS="1", EPHEMERA_BODY_TIMEOUT_SECONDS="1")
    # 200 clients sending their headers a byte every 0.2 s, for ever.
    slow = [
        await open_trickling(server.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        for _ in range(200)
    ]
    # One client whose JSON body stops half-way (the app is waiting for the rest).
    stalled_reader, stalled_writer = await asyncio.open_connection("127.0.0.1", server.port)
    stalled_writer.write(
        b"POST /v1/stories HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token('ann')}\r\nContent-Length: 100\r\n\r\n".encode()
        + b'{"text": "hal'
    )
    async with httpx.AsyncClient(base_url=server.url) as c:
        # Meanwhile everyone else is served.
        assert (await c.get("/healthz")).status_code == 200
        for reader, close in slow:
            try:  # until the server closes the connection
                answer = await asyncio.wait_for(reader.read(), timeout=60)
                assert answer.startswith(b"HTTP/1.1 408 "), answer
            except ConnectionResetError:
                pass  # closed while our bytes were in flight: the 408 may be lost, not the close
            finally:
                close()
        answer = await asyncio.wait_for(stalled_reader.read(), timeout=60)
        stalled_writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ") and b'"request_timeout"' in answer
        metrics = (await c.get("/metrics")).text
    assert 'route="/v1/stories",status="400"' in metrics  # the app saw its client leave
    assert not re.search(r'status="5\d\d"', metrics)
    err = server.stop()
    events = [json.loads(line) for line in err.splitlines()]
    phases = [e["phase"] for e in events if e["event"] == "http.slow_client"]
    assert phases.count("headers") == 200 and phases.count("body") == 1
    assert not [e for e in events if e["level"] in ("error", "critical")]


async def test_a_kept_alive_connection_has_the_same_deadline(serve: Callable[..., Serve]) -> None:
    server = serve(EPHEMERA_HEADER_TIMEOUT_SECONDS="1")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), timeout=30)
    assert first.startswith(b"HTTP/1.1 200 ")
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # the next request starts, and stalls
    rest = await asyncio.wait_for(reader.read(), timeout=60)
    assert rest.startswith(b"HTTP/1.1 408 ")
    writer.close()
    server.stop()


async def test_room_sockets_outlive_the_deadlines(serve: Callable[..., Serve]) -> None:
    """The deadlines are for requests being received; an upgraded WebSocket is not one."""
    server = serve(EPHEMERA_HEADER_TIMEOUT_SECONDS="0.5", EPHEMERA_BODY_TIMEOUT_SECONDS="0.5")
    headers = {"Authorization": f"Bearer {token('host')}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as c:
        room = (await c.post("/v1/rooms", json={"title": "late night"})).json()
    url = server.url.replace("http", "ws") + f"/v1/rooms/{room['id']}/ws?token={token('host')}"
    async with connect(url, open_timeout=10) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        await asyncio.sleep(1.5)  # three times either deadline
        await ws.send(json.dumps({"type": "ping"}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "pong":
            pass
    server.stop()


def test_the_deadlines_come_from_the_apps_settings(make_settings: Callable[..., Settings]) -> None:
    """The protocol reads the settings the app's lifespan put in its state (the platform)."""
    settings = make_settings(header_timeout_seconds=1.5, body_timeout_seconds=2.5)
    platform = type("Platform", (), {"settings": settings})()
    assert timeouts({"platform": platform}) == (1.5, 2.5)
    assert timeouts({}) == (
        Settings.model_fields["header_timeout_seconds"].default,
        Settings.model_fields["body_timeout_seconds"].default,
    )
