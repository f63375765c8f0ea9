"""A server process SIGKILLed in the middle of a fan-out loses nothing: another process takes
its pending batch over (XAUTOCLAIM) and carries the fan-out on, so every follower gets the
story. (``test_trays.py`` shows the take-over step by step, without processes.)"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from server.clock import SystemClock
from server.graph.store import Graph
from server.settings import Settings
from server.store import Keys
from stories.fanout import GROUP, shard_of
from tests.stories.redis_probe import fanout_streams, wait_fanned_out
from tests.support import ServerProcess, auth, settings_env, wait_for

FOLLOWERS = 5_000


async def test_a_process_killed_mid_fan_out_loses_nothing(
    make_settings: Callable[..., Settings], redis: Redis
) -> None:
    settings = make_settings(stories_fanout_batch=100, stories_fanout_claim_seconds=1.0)
    prefix = settings.key_prefix
    graph = Graph(redis, Keys(prefix), SystemClock())
    fans = [f"fan{i:05d}" for i in range(FOLLOWERS)]
    async with redis.pipeline(transaction=False) as p:
        p.zadd(graph.followers_key("star"), dict.fromkeys(fans, time.time()))
        for fan in fans:
            p.zadd(graph.following_key(fan), {"star": 1})
        await p.execute()
    trays = [f"{prefix}st:tray:{{{fan}}}" for fan in fans]
    key = fanout_streams(prefix)[shard_of("star")]

    async def reached(users: list[str]) -> int:
        async with redis.pipeline(transaction=False) as p:
            for key in users:
                p.exists(key)
            return sum(await p.execute())

    first = ServerProcess(settings_env(settings)).start()
    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as c:
            r = await c.post("/v1/stories", json={"text": "hi"}, headers=auth("star"))
            assert r.status_code == 201, r.text
        sample = trays[::50]

        async def in_a_batch() -> bool:  # some followers have it, a batch is in hand
            pending = (await redis.xpending(key, GROUP))["pending"]
            return bool(pending) and await reached(sample) > 0

        await wait_for(in_a_batch, within=60, interval=0.001)
        assert first.proc is not None
        first.proc.kill()  # SIGKILL: no shutdown, its batch in hand stays pending
        first.proc.wait()
    finally:
        first.stop()
    before = await reached(trays)
    pending = (await redis.xpending(key, GROUP))["pending"]  # 1 unless it had just finished
    second = ServerProcess(settings_env(settings)).start()
    try:
        await wait_fanned_out(redis, prefix, within=120)
    finally:
        second.stop()
    assert 0 < before < FOLLOWERS  # the kill interrupted the fan-out
    assert await reached(trays) == FOLLOWERS, (before, pending)
    assert (await redis.xpending(key, GROUP))["pending"] == 0
