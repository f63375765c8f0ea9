"""Leases on Redis: the one primitive behind the stories sweeper, room grace periods, node
liveness and media room claims.

A lease table is a sorted set, member -> the time (ms since the epoch) its lease ends, with
an optional hash member -> holder. A member whose time has come (a story due for purging, a
grace period that ran out, a node that stopped renewing, a room whose node is gone) can be
*taken*: one Lua call moves its score to now + lease and records the taker, so exactly one
process gets it; if that process dies before it is done, the lease runs out and another one
takes it again. The time is Redis ``TIME`` unless the caller passes its clock's ``now`` (for
entries scheduled by that clock, and for tests).

Every key a table uses shares one hash tag (the caller's key design), so each call is atomic
on a Redis Cluster too.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

# KEYS: table zset, [holders hash]. ARGV: now ms (-1: Redis TIME), lease ms, holder, limit,
# member... With members: each one that is free (absent, run out, or already ours) is taken
# or renewed; returns each member's holder afterwards ('' when the table keeps none). Without
# members: takes up to `limit` members whose time has come; returns them.
TAKE = """
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local until_ms, holder = now + tonumber(ARGV[2]), ARGV[3]
local function take(m)
  redis.call('ZADD', KEYS[1], until_ms, m)
  if KEYS[2] then redis.call('HSET', KEYS[2], m, holder) end
end
if #ARGV > 4 then
  local out = {}
  for i = 5, #ARGV do
    local m = ARGV[i]
    local score = redis.call('ZSCORE', KEYS[1], m)
    local current = KEYS[2] and redis.call('HGET', KEYS[2], m) or false
    if (not score) or tonumber(score) <= now or current == holder then
      take(m)
      current = holder
    end
    out[#out + 1] = current or ''
  end
  return out
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, m in ipairs(due) do take(m) end
return due
"""

# KEYS: table zset, holders hash. ARGV: holder, member... Drops the members this holder holds.
RELEASE = """
local n = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    n = n + 1
  end
end
return n
"""


def ms(seconds: float) -> int:
    return int(seconds * 1000)


class LeaseTable:
    """One lease table: ``key`` (zset) and, when holders matter, ``holders_key`` (hash)."""

    def __init__(self, redis: Redis, key: str, holders_key: str | None = None) -> None:
        self.redis = redis
        self.key = key
        self.holders_key = holders_key
        self._take = redis.register_script(TAKE)
        self._release = redis.register_script(RELEASE)

    @property
    def _keys(self) -> list[str]:
        return [self.key] if self.holders_key is None else [self.key, self.holders_key]

    async def put(self, member: str, at: float) -> None:
        """Schedule ``member`` to come due at ``at`` (seconds since the epoch)."""
        await self.redis.zadd(self.key, {member: ms(at)})

    async def take_due(
        self, holder: str, lease: float, limit: int, now: float | None = None
    ) -> list[str]:
        """Up to ``limit`` members whose time has come, each leased to ``holder``."""
        args: list[str | int] = [-1 if now is None else ms(now), ms(lease), holder, limit]
        return [str(m) for m in await self._take(keys=self._keys, args=args)]

    async def take(
        self, members: Iterable[str], holder: str, lease: float, now: float | None = None
    ) -> list[str]:
        """Take (or renew) each free member for ``holder``; returns each member's holder."""
        names = list(members)
        if not names:
            return []
        args: list[str | int] = [-1 if now is None else ms(now), ms(lease), holder, 0, *names]
        return [str(h) for h in await self._take(keys=self._keys, args=args)]

    async def release(self, holder: str, *members: str) -> int:
        """Give up members held by ``holder`` (others' leases are left alone)."""
        if not members or self.holders_key is None:
            return 0
        return int(await self._release(keys=self._keys, args=[holder, *members]))

    async def done(self, *members: str) -> None:
        """Remove members whose work is finished, whoever held them."""
        if not members:
            return
        async with self.redis.pipeline(transaction=True) as p:
            p.zrem(self.key, *members)
            if self.holders_key is not None:
                p.hdel(self.holders_key, *members)
            await p.execute()
