"""The social graph in Redis: follows, blocks and close friends (sorted sets scored by time).

Other features ask it questions (``is_blocked_between``, ``following``); only the graph
endpoints change it.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from server.store import Keys


class Graph:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.r = redis
        self.k = keys

    def _following(self, user: str) -> str:
        return self.k("g", "following", user)

    def _followers(self, user: str) -> str:
        return self.k("g", "followers", user)

    def _blocks(self, user: str) -> str:
        return self.k("g", "blocks", user)

    def _close(self, user: str) -> str:
        return self.k("g", "close", user)

    async def follow(self, user: str, target: str) -> None:
        now = time.time()
        async with self.r.pipeline(transaction=True) as p:
            p.zadd(self._following(user), {target: now}, nx=True)
            p.zadd(self._followers(target), {user: now}, nx=True)
            await p.execute()

    async def unfollow(self, user: str, target: str) -> None:
        async with self.r.pipeline(transaction=True) as p:
            p.zrem(self._following(user), target)
            p.zrem(self._followers(target), user)
            await p.execute()

    async def block(self, user: str, target: str) -> None:
        """Blocking also breaks the follow in both directions, as users expect."""
        now = time.time()
        async with self.r.pipeline(transaction=True) as p:
            p.zadd(self._blocks(user), {target: now}, nx=True)
            for a, b in ((user, target), (target, user)):
                p.zrem(self._following(a), b)
                p.zrem(self._followers(b), a)
            p.zrem(self._close(user), target)
            await p.execute()

    async def unblock(self, user: str, target: str) -> None:
        await self.r.zrem(self._blocks(user), target)

    async def add_close_friend(self, user: str, target: str) -> None:
        await self.r.zadd(self._close(user), {target: time.time()}, nx=True)

    async def remove_close_friend(self, user: str, target: str) -> None:
        await self.r.zrem(self._close(user), target)

    async def _page(self, key: str, cursor: int, limit: int) -> tuple[list[str], int | None]:
        """Newest first; ``cursor`` is an offset, ``None`` when there is no next page."""
        items = await self.r.zrevrange(key, cursor, cursor + limit)
        more = len(items) > limit
        return [str(i) for i in items[:limit]], (cursor + limit if more else None)

    async def followers_page(
        self, user: str, cursor: int, limit: int
    ) -> tuple[list[str], int | None]:
        return await self._page(self._followers(user), cursor, limit)

    async def following_page(
        self, user: str, cursor: int, limit: int
    ) -> tuple[list[str], int | None]:
        return await self._page(self._following(user), cursor, limit)

    async def blocks_page(self, user: str, cursor: int, limit: int) -> tuple[list[str], int | None]:
        return await self._page(self._blocks(user), cursor, limit)

    async def close_friends_page(
        self, user: str, cursor: int, limit: int
    ) -> tuple[list[str], int | None]:
        return await self._page(self._close(user), cursor, limit)

    async def following(self, user: str) -> list[str]:
        return [str(u) for u in await self.r.zrange(self._following(user), 0, -1)]

    async def has_blocked(self, user: str, target: str) -> bool:
        return await self.r.zscore(self._blocks(user), target) is not None

    async def follows(self, user: str, target: str) -> bool:
        return await self.r.zscore(self._following(user), target) is not None

    async def is_close_friend(self, owner: str, user: str) -> bool:
        return await self.r.zscore(self._close(owner), user) is not None

    async def is_blocked_between(self, a: str, b: str) -> bool:
        """True when either user blocked the other."""
        async with self.r.pipeline(transaction=False) as p:
            p.zscore(self._blocks(a), b)
            p.zscore(self._blocks(b), a)
            first, second = await p.execute()
        return first is not None or second is not None

    async def counts(self, user: str) -> tuple[int, int]:
        async with self.r.pipeline(transaction=False) as p:
            p.zcard(self._followers(user))
            p.zcard(self._following(user))
            followers, following = await p.execute()
        return int(followers), int(following)
