"""Faults: Redis killed under a running server, and server restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from server.settings import Settings
from server.valkey import EmbeddedValkey
from tests.support import ServerProcess, auth, settings_env, wait_for


async def _live_story_ids(client: httpx.AsyncClient, author: str) -> set[str]:
    r = await client.get(f"/v1/users/{author}/stories", headers=auth(author))
    assert r.status_code == 200, r.text
    return {s["id"] for s in r.json()["stories"]}


async def test_redis_sigkill_mid_run_loses_no_acknowledged_story(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    own = EmbeddedValkey(tmp_path / "valkey")
    own.start()
    settings = make_settings(redis_url=own.url, rate_publish="100000/hour", max_active_stories=1000)
    server = ServerProcess(settings_env(settings)).start()
    acknowledged: list[str] = []
    during_outage: list[httpx.Response] = []
    hangs: list[str] = []
    try:
        # A timeout on every request: a hang during the outage fails the test.
        async with httpx.AsyncClient(base_url=server.url, timeout=5, headers=auth("alice")) as c:
            killed = asyncio.Event()

            async def publisher() -> None:
                n = 0
                while True:
                    n += 1
                    try:
                        r = await c.post("/v1/stories", json={"text": f"story {n}"})
                    except httpx.HTTPError as exc:  # e.g. a hang past the client timeout
                        hangs.append(f"{type(exc).__name__} after {len(acknowledged)} acks")
                        continue
                    if r.status_code == 201:
                        acknowledged.append(r.json()["id"])
                        if killed.is_set() and (during_outage or hangs):
                            return  # first success after the outage: recovered
                    else:
                        during_outage.append(r)
                        await asyncio.sleep(0.05)

            task = asyncio.create_task(publisher())
            await wait_for(lambda: len(acknowledged) >= 30, within=30)
            own.kill()  # SIGKILL: no shutdown, no final fsync
            killed.set()
            await wait_for(lambda: len(during_outage) + len(hangs) >= 10, within=30)
            assert not hangs, hangs
            assert not task.done()
            ready = await c.get("/readyz")
            assert ready.status_code == 503
            own.start()
            await asyncio.wait_for(task, timeout=60)

            assert during_outage, "the outage was never observed"
            for r in during_outage:
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "store_unavailable"
                assert int(r.headers["retry-after"]) >= 1
            # Every story the server acknowledged is still there (the append-only file was
            # written before the reply; only a machine crash can lose the fsync window).
            assert set(acknowledged) <= await _live_story_ids(c, "alice")
            assert (await c.get("/readyz")).status_code == 200
    finally:
        server.stop()
        own.stop()


async def test_stories_survive_a_server_restart(
    make_settings: Callable[..., Settings],
) -> None:
    env = settings_env(make_settings())
    first = ServerProcess(env).start()
    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=10, headers=auth("alice")) as c:
            r = await c.post("/v1/stories", json={"text": "still here after a restart"})
            assert r.status_code == 201
            story_id = r.json()["id"]
    finally:
        first.stop()
    second = ServerProcess(env).start()
    try:
        async with httpx.AsyncClient(base_url=second.url, timeout=10) as c:
            assert story_id in await _live_story_ids(c, "alice")
    finally:
        second.stop()
