"""Rate limits shared by all server processes: the `limits` library on our Redis pool."""

from __future__ import annotations

import math
import time
from functools import cache

from limits import RateLimitItem, parse
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis, RedisCluster

from server.errors import RateLimited


@cache
def _item(rate: str) -> RateLimitItem:
    return parse(rate)


class RateLimiter:
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        # The URI only selects the implementation; the connection pool is ours, so the
        # limiter shares our timeouts and fails (503) exactly when the rest of the app does.
        # The sliding window's two keys share one hash tag (``{key}``, ``{key}/-1``), so its
        # scripts stay within one slot on a cluster.
        self.strategy = SlidingWindowCounterRateLimiter(_storage(redis, key_prefix + "rl"))

    async def hit(self, rate: str, action: str, *identity: str) -> None:
        """Count one ``action`` by ``identity``; raise RateLimited (429) past ``rate``."""
        item = _item(rate)
        if not await self.strategy.hit(item, action, *identity):
            raise await self._refusal(rate, action, *identity)

    async def check(self, rate: str, action: str, *identity: str) -> None:
        """Raise RateLimited if one more ``action`` would pass ``rate``, counting nothing: an
        early refusal before costly work, whose success ``hit`` then counts (atomically)."""
        if not await self.strategy.test(_item(rate), action, *identity):
            raise await self._refusal(rate, action, *identity)

    async def _refusal(self, rate: str, action: str, *identity: str) -> RateLimited:
        stats = await self.strategy.get_window_stats(_item(rate), action, *identity)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimited(f"rate limit of {rate} for {action} exceeded", retry_after=retry)


def _storage(redis: Redis, key_prefix: str) -> RedisStorage:
    if isinstance(redis, RedisCluster):
        # limits builds a cluster client of its own; ours takes its place (and its scripts
        # are registered on ours) before anything runs.
        storage: RedisStorage = RedisClusterStorage(
            "async+redis+cluster://localhost:6379", implementation="redispy", key_prefix=key_prefix
        )
        storage.bridge.storage = redis
        storage.bridge.register_scripts()
        return storage
    return RedisStorage(
        "async+redis://localhost:6379",
        implementation="redispy",
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        key_prefix=key_prefix,
    )
