"""Real servers for tests: an embedded Valkey and uvicorn on free loopback ports."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from server import wsframes
from server.app import create_app
from server.auth import mint_token
from server.feature import Feature
from server.settings import Settings

SECRET = "test-secret-key-for-ephemera-tests-0123456789-padding-to-64-bytes!!"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token(user: str, ttl: int = 3600, secret: str = SECRET, room: str | None = None) -> str:
    return mint_token(secret, user, ttl, room=room)


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


@dataclass
class LiveServer:
    """A uvicorn server on its own thread and event loop, like a separate process would be."""

    settings: Settings
    port: int = field(default_factory=free_port)
    # Builds this server's features (fresh ones per app); None: the default features.
    features: Callable[[], list[Feature]] | None = None
    app: Starlette | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        feats = self.features() if self.features is not None else None
        self.app = create_app(self.settings, feats)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            ws_max_size=self.settings.ws_max_message_bytes,
            ws=wsframes.PROTOCOL,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)

    def state(self) -> Any:
        """The app instance's state (same process, another thread: read-only use)."""
        assert self.app is not None
        return self.app.state  # the per-instance state object holds openapi only

    def client(self, user: str | None = None, **kw: Any) -> httpx.AsyncClient:
        headers = auth(user) if user else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10, **kw)


@dataclass
class ServerProcess:
    """``uvicorn server.app:create_app`` in a child process (for multi-process tests)."""

    env: Mapping[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    ws: str = wsframes.PROTOCOL  # uvicorn's WebSocket protocol (benchmarks compare "auto")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = {**os.environ, **self.env, "EPHEMERA_PUBLIC_BASE_URL": self.url}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "server.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--ws-max-size",
                env.get("EPHEMERA_WS_MAX_MESSAGE_BYTES", "65536"),
                "--ws",
                self.ws,
            ],
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server process did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a child process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        # Every process is its own node: it draws its own id.
        if value is None or name == "node_id":
            continue
        key = "REDIS_URL" if name == "redis_url" else f"EPHEMERA_{name.upper()}"
        env[key] = value if isinstance(value, str) else json.dumps(value)
    return env


async def wait_for(predicate: Any, within: float = 5.0, interval: float = 0.02) -> None:
    """Poll ``predicate`` (sync or async) until true; fail the test if it never is."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
