"""The social graph in Redis: follows, blocks and close friends (sorted sets scored by time).

Other features ask it questions (``is_blocked_between``, ``following``) and hear of its
changes (``listen``: e.g. the stories tray index backfills a new follow); only the graph
endpoints change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from redis.asyncio import Redis

from server.clock import Clock
from server.store import Keys


async def user_page(
    redis: Redis, key: str, cursor: int, limit: int
) -> tuple[list[str], int | None]:
    """One page of a user list (a zset scored by time), newest first; ``cursor`` is an
    offset, ``None`` when there is no next page. Other features' user lists page alike."""
    items = await redis.zrevrange(key, cursor, cursor + limit)
    more = len(items) > limit
    return [str(i) for i in items[:limit]], (cursor + limit if more else None)


ChangeKind = Literal["follow", "unfollow", "block", "unblock", "close_friend", "not_close_friend"]


@dataclass(frozen=True)
class GraphChange:
    """``user`` did ``kind`` to ``target`` (follows, blocks, adds to their close friends)."""

    kind: ChangeKind
    user: str
    target: str


class GraphListener(Protocol):
    async def graph_changed(self, change: GraphChange) -> None:
        """Called after the change is written, within the request that made it."""


class Graph:
    def __init__(self, redis: Redis, keys: Keys, clock: Clock) -> None:
        self.r = redis
        self.k = keys
        self.clock = clock
        self._listeners: list[GraphListener] = []

    def listen(self, listener: GraphListener) -> None:
        self._listeners.append(listener)

    def unlisten(self, listener: GraphListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def _changed(self, kind: ChangeKind, user: str, target: str) -> None:
        for listener in list(self._listeners):
            await listener.graph_changed(GraphChange(kind, user, target))

    # Key names are public so other stores can read the graph inside their own pipelines.
    def following_key(self, user: str) -> str:
        return self.k("g", "following", user)

    def followers_key(self, user: str) -> str:
        return self.k("g", "followers", user)

    def blocks_key(self, user: str) -> str:
        return self.k("g", "blocks", user)

    def blocked_by_key(self, user: str) -> str:
        """Who blocked ``user``: the blocks read the other way, so that hiding everything
        both ways needs no look-up in every other user's list."""
        return self.k("g", "blocked_by", user)

    def close_friends_key(self, user: str) -> str:
        return self.k("g", "close", user)

    def close_friend_of_key(self, user: str) -> str:
        """Whose close friend ``user`` is: the lists read the other way, so a tray checks
        every author's list with one command (in ``user``'s hash slot)."""
        return self.k("g", "close_of", "{" + user + "}")

    # Each change below writes two users' lists, which a cluster keeps on different nodes,
    # so it is one plain pipeline of idempotent commands rather than a transaction: the
    # acting user's side first, and repeating the request completes a half-written change.
    # A block's guarantee rests on the blocker's own list (``is_blocked_between`` reads both
    # users' ``blocks``), which is written first.

    async def follow(self, user: str, target: str) -> None:
        now = self.clock.now()
        async with self.r.pipeline(transaction=False) as p:
            p.zadd(self.following_key(user), {target: now}, nx=True)
            p.zadd(self.followers_key(target), {user: now}, nx=True)
            await p.execute()
        await self._changed("follow", user, target)

    async def unfollow(self, user: str, target: str) -> None:
        async with self.r.pipeline(transaction=False) as p:
            p.zrem(self.following_key(user), target)
            p.zrem(self.followers_key(target), user)
            await p.execute()
        await self._changed("unfollow", user, target)

    async def block(self, user: str, target: str) -> None:
        """Blocking also breaks the follow in both directions, as users expect."""
        now = self.clock.now()
        async with self.r.pipeline(transaction=False) as p:
            p.zadd(self.blocks_key(user), {target: now}, nx=True)
            p.zadd(self.blocked_by_key(target), {user: now}, nx=True)
            for a, b in ((user, target), (target, user)):
                p.zrem(self.following_key(a), b)
                p.zrem(self.followers_key(b), a)
            p.zrem(self.close_friends_key(user), target)
            p.zrem(self.close_friend_of_key(target), user)
            await p.execute()
        await self._changed("block", user, target)

    async def unblock(self, user: str, target: str) -> None:
        async with self.r.pipeline(transaction=False) as p:
            p.zrem(self.blocks_key(user), target)
            p.zrem(self.blocked_by_key(target), user)
            await p.execute()
        await self._changed("unblock", user, target)

    async def add_close_friend(self, user: str, target: str) -> None:
        # Two slots: the list first, so a failure in between leaves the tray the stricter.
        now = self.clock.now()
        await self.r.zadd(self.close_friends_key(user), {target: now}, nx=True)
        await self.r.zadd(self.close_friend_of_key(target), {user: now}, nx=True)
        await self._changed("close_friend", user, target)

    async def remove_close_friend(self, user: str, target: str) -> None:
        await self.r.zrem(self.close_friend_of_key(target), user)
        await self.r.zrem(self.close_friends_key(user), target)
        await self._changed("not_close_friend", user, target)

    async def _page(self, key: str, cursor: int, limit: int) -> tuple[list[str], int | None]:
        return await user_page(self.r, key, cursor, limit)

    async def followers_page(
        self, user: str, cursor: int, limit: int
    ) -> tuple[list[str], int | None]:
        return await self._page(self.followers_key(user), cursor, limit)

    async def following_page(
        self, user: str, cursor: int, limit: int
    ) -> tuple[list[str], int | None]:
        return await self._page(self.following_key(user), cursor, limit)

    async def blocks_page(self, user: str, cursor: int, limit: int) -> tuple[list[str], int | None]:
        return await self._page(self.blocks_key(user), cursor, limit)

    async def close_friends_page(
        self, user: str, cursor: int, limit: int
    ) -> tuple[list[str], int | None]:
        return await self._page(self.close_friends_key(user), cursor, limit)

    async def following(self, user: str) -> list[str]:
        return [str(u) for u in await self.r.zrange(self.following_key(user), 0, -1)]

    async def has_blocked(self, user: str, target: str) -> bool:
        return await self.r.zscore(self.blocks_key(user), target) is not None

    async def follows(self, user: str, target: str) -> bool:
        return await self.r.zscore(self.following_key(user), target) is not None

    async def is_close_friend(self, owner: str, user: str) -> bool:
        return await self.r.zscore(self.close_friends_key(owner), user) is not None

    async def is_blocked_between(self, a: str, b: str) -> bool:
        """True when either user blocked the other."""
        async with self.r.pipeline(transaction=False) as p:
            p.zscore(self.blocks_key(a), b)
            p.zscore(self.blocks_key(b), a)
            first, second = await p.execute()
        return first is not None or second is not None

    async def counts(self, user: str) -> tuple[int, int]:
        async with self.r.pipeline(transaction=False) as p:
            p.zcard(self.followers_key(user))
            p.zcard(self.following_key(user))
            followers, following = await p.execute()
        return int(followers), int(following)
