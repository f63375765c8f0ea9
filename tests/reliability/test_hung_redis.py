"""A hung Redis (SIGSTOP: connections open, nothing answers) is a fast failure: every request
gets 503 with Retry-After within a second, and the server recovers by itself on SIGCONT."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.settings import Settings
from server.valkey import EmbeddedValkey
from tests.rooms.helpers import join, refused
from tests.support import ServerProcess, auth, settings_env, wait_for

LIMIT = 1.0  # seconds: the goal for any answer while Redis does not answer


@pytest.fixture
def hung(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Any]:
    own = EmbeddedValkey(tmp_path / "valkey")  # never the session's Valkey: this one stops
    own.start()
    server = ServerProcess(settings_env(make_settings(redis_url=own.url))).start()
    try:
        yield own, server
    finally:
        assert own.proc is not None
        os.kill(own.proc.pid, signal.SIGCONT)
        server.stop()
        own.stop()


async def timed(call: Any) -> tuple[float, Any]:
    start = time.monotonic()
    result = await call
    return time.monotonic() - start, result


async def test_requests_fail_fast_while_redis_hangs_and_recover(hung: Any) -> None:
    own, server = hung
    alice = auth("alice")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        room = (await c.post("/v1/rooms", json={"title": "hang"}, headers=alice)).json()["id"]
        story = {"text": "during the hang"}
        requests: list[Callable[[], Any]] = [
            lambda: c.get("/readyz"),
            lambda: c.get("/v1/me", headers=alice),
            lambda: c.get("/v1/stories/tray", headers=alice),
            lambda: c.post("/v1/stories", json=story, headers=alice),
            lambda: c.get("/v1/rooms", headers=alice),
            lambda: c.get(f"/v1/rooms/{room}", headers=alice),
            lambda: c.get(f"/v1/rooms/{room}/preview"),
            lambda: c.post("/v1/rooms", json={"title": "x"}, headers=alice),
        ]
        os.kill(own.proc.pid, signal.SIGSTOP)
        answers: list[tuple[float, httpx.Response]] = []
        # At once, before the watchdog has noticed, then one after another for 4 seconds.
        answers += await asyncio.gather(*(timed(request()) for request in requests))
        ws_times: list[float] = []
        later: list[float] = []  # once the watchdog has opened the circuit
        stopped_at = time.monotonic()
        while time.monotonic() < stopped_at + 4:
            for request in requests:
                answers.append(await timed(request()))
                if time.monotonic() > stopped_at + 3:
                    later.append(answers[-1][0])
            took, (status, body) = await timed(refused(server.ws_url, room, "bob"))
            assert status == 503 and body["error"]["code"] == "store_unavailable", body
            ws_times.append(took)

        for took, answer in answers:
            assert answer.status_code == 503, (answer.request.url, answer.text)
            assert answer.json()["error"]["code"] == "store_unavailable"
            assert int(answer.headers["retry-after"]) >= 1
            assert took < LIMIT, (answer.request.url, took)
        assert max(ws_times) < LIMIT, ws_times
        assert sorted(later)[len(later) // 2] < 0.1, later  # failing at once, not waiting
        assert (await c.get("/healthz")).status_code == 200  # the process itself is fine
        assert "ephemera_redis_up 0.0" in (await c.get("/metrics")).text

        os.kill(own.proc.pid, signal.SIGCONT)

        async def ready() -> bool:
            return (await c.get("/readyz")).status_code == 200

        await wait_for(ready, within=15)
        r = await c.post("/v1/stories", json=story, headers=alice)
        assert r.status_code == 201, r.text
        assert (await c.get(f"/v1/rooms/{room}", headers=alice)).status_code == 200
    host = await join(server.ws_url, room, "alice")
    await host.close()
