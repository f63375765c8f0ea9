"""Which server process (node) holds each room's media, shared through Redis.

A room's audio is relayed by exactly one process: every peer connection of the room lives
there. Nodes announce themselves with a heartbeat (a sorted set scored by "alive until", in
Redis server time, plus each node's public URL); a room is mapped to a node by an atomic
claim that keeps a live owner and takes over from a dead or missing one. The claim is made
only where media is needed (a participant's first ``rtc.offer``); reads (``RoomNodes``) only
look. Every key shares one hash tag, so the scripts stay valid on a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.asyncio import Redis

from server.background import every, stop
from server.store import REDIS_DOWN, Keys

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 5.0
NODE_TTL_SECONDS = 15.0
ROOM_TTL_SECONDS = 24 * 3600  # refreshed by the owner's heartbeat while the room has peers
FORGET_NODES_AFTER_MS = 3600 * 1000

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: alive zset, url hash. ARGV: node id, url, ttl ms, forget-after ms.
HEARTBEAT = (
    _NOW_MS
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]))
for _, node in ipairs(dead) do
  redis.call('ZREM', KEYS[1], node)
  redis.call('HDEL', KEYS[2], node)
end
return now
"""
)

# KEYS: room key, alive zset, url hash. ARGV: node id, room ttl seconds, node url.
# Returns the owner's node id. An owner at our own URL is an earlier run of this process
# (restarted before its lease ran out): we take its rooms over at once.
CLAIM = (
    _NOW_MS
    + """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then
  local alive_until = redis.call('ZSCORE', KEYS[2], owner)
  local same_place = redis.call('HGET', KEYS[3], owner) == ARGV[3]
  if alive_until and tonumber(alive_until) > now and not same_place then
    return owner
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""
)

# KEYS: room key, alive zset, url hash. ARGV: room id. Reads only: the URL of the live node
# holding the room, else of the live node the room's id hashes to (rendezvous hashing, so
# every node gives the same answer), else false. The claim happens later, at the first
# rtc.offer, on whichever node receives it.
LOOKUP = (
    _NOW_MS
    + """
local owner = redis.call('GET', KEYS[1])
if owner then
  local alive_until = redis.call('ZSCORE', KEYS[2], owner)
  local url = redis.call('HGET', KEYS[3], owner)
  if alive_until and tonumber(alive_until) > now and url then return url end
end
local best, best_url = nil, false
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')) do
  local score = redis.sha1hex(node .. '|' .. ARGV[1])
  local url = redis.call('HGET', KEYS[3], node)
  if url and (best == nil or score > best) then best, best_url = score, url end
end
return best_url
"""
)

# KEYS: room key. ARGV: node id. Deletes the mapping only if this node holds it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def ws_base(url: str) -> str:
    """``http(s)://host`` -> ``ws(s)://host`` (no trailing slash)."""
    url = url.rstrip("/")
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    if url.startswith("http://"):
        return "ws://" + url.removeprefix("http://")
    return url


def room_ws_url(node_url: str, room_id: str) -> str:
    return f"{ws_base(node_url)}/v1/rooms/{room_id}/ws"


class NodeKeys:
    """The registry's keys (one hash tag, so scripts stay valid on a Redis Cluster)."""

    def __init__(self, keys: Keys) -> None:
        self.alive = keys("media", "{nodes}", "alive")
        self.urls = keys("media", "{nodes}", "urls")
        self._room_prefix = keys("media", "{nodes}", "room", "")

    def room(self, room_id: str) -> str:
        return self._room_prefix + room_id


class RoomNodes:
    """Which node serves a room, for reads: never claims, so asking changes nothing."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.k = NodeKeys(keys)
        self._lookup = redis.register_script(LOOKUP)

    async def ws_url(self, room_id: str, fallback_url: str) -> str:
        """The room socket URL on its media node; ``fallback_url`` when no node is known."""
        k = self.k
        url = await self._lookup(keys=[k.room(room_id), k.alive, k.urls], args=[room_id])
        return room_ws_url(str(url) if url else fallback_url, room_id)


class NodeRegistry:
    """This node's heartbeat and the room -> node map."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        node_id: str,
        url: str,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        ttl_seconds: float = NODE_TTL_SECONDS,
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.url = url.rstrip("/")
        self.heartbeat_seconds = heartbeat_seconds
        self.ttl_ms = int(ttl_seconds * 1000)
        k = NodeKeys(keys)
        self._alive, self._urls, self._room_key = k.alive, k.urls, k.room
        self._heartbeat = redis.register_script(HEARTBEAT)
        self._claim = redis.register_script(CLAIM)
        self._release = redis.register_script(RELEASE)
        # Rooms this node holds with peers on it: refreshed by the heartbeat.
        self.active: set[str] = set()
        self._owned: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Announce this node (if Redis answers) and keep announcing it."""
        with contextlib.suppress(*REDIS_DOWN):
            await self.beat()
        self._task = asyncio.create_task(
            every(self.heartbeat_seconds, self.beat, "media.nodes.heartbeat"),
            name="media-node-heartbeat",
        )

    async def stop(self) -> None:
        """Stop heartbeating; hand every room back and leave the registry at once."""
        await stop(self._task)
        try:
            for room_id in list(self._owned):
                await self.release(room_id)
            await self.redis.zrem(self._alive, self.node_id)
            await self.redis.hdel(self._urls, self.node_id)
        except REDIS_DOWN as exc:
            log.warning("media.nodes.stop_failed", error=repr(exc))

    async def beat(self) -> None:
        await self._heartbeat(
            keys=[self._alive, self._urls],
            args=[self.node_id, self.url, self.ttl_ms, FORGET_NODES_AFTER_MS],
        )
        for room_id in list(self.active):
            await self.redis.expire(self._room_key(room_id), ROOM_TTL_SECONDS)

    async def claim(self, room_id: str) -> str:
        """The node holding the room's media: a live owner, else this node (atomically)."""
        if room_id in self._owned:
            return self.node_id
        owner = str(
            await self._claim(
                keys=[self._room_key(room_id), self._alive, self._urls],
                args=[self.node_id, ROOM_TTL_SECONDS, self.url],
            )
        )
        if owner == self.node_id:
            self._owned.add(room_id)
        return owner

    async def release(self, room_id: str) -> None:
        """Give the room up (it ended, or this node shuts down)."""
        self._owned.discard(room_id)
        self.active.discard(room_id)
        await self._release(keys=[self._room_key(room_id)], args=[self.node_id])

    async def url_of(self, node_id: str) -> str:
        if node_id == self.node_id:
            return self.url
        url = await self.redis.hget(self._urls, node_id)
        # A claimed owner is alive, so its URL is there; fall back to ours defensively.
        return str(url) if url else self.url

    async def room_ws_url(self, room_id: str) -> str:
        owner = await self.claim(room_id)
        return room_ws_url(await self.url_of(owner), room_id)

    async def nodes(self) -> dict[str, str]:
        """Live nodes and their URLs (for operators and tests)."""
        seconds, micros = await self.redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        alive = await self.redis.zrangebyscore(self._alive, now_ms, "+inf")
        urls = {str(k): str(v) for k, v in (await self.redis.hgetall(self._urls)).items()}
        return {str(node): urls.get(str(node), "") for node in alive}
