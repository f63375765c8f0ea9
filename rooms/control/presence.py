"""Grace periods that work across processes and survive restarts.

A participant whose socket closes keeps their place until a deadline stored in Redis
(``rooms:deadlines``). Every process runs ``Presence.tick`` periodically: it claims due
deadlines atomically (leased, so a process dying mid-way leaves them to another one) and
applies them with ``RoomStore.expire``.

A process that dies cannot mark its sockets closed, so each process heartbeats its node id
and lists its connections in ``rooms:node:<node>:conns``; when a node goes silent for
``room_node_timeout_seconds`` another process claims it and starts the grace periods of
its participants.
"""

from __future__ import annotations

import time

import structlog

from rooms.control.store import RoomStore
from server.settings import Settings

log = structlog.get_logger(__name__)

# Claims a silent node: pushes its heartbeat forward by a lease so one process at a time
# reaps it, and again later if that process dies before finishing.
CLAIM_NODE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


class Presence:
    def __init__(self, store: RoomStore, settings: Settings, node: str) -> None:
        self.store = store
        self.settings = settings
        self.node = node
        self.r = store.r
        self.nodes = store.k("rooms", "nodes")
        self._claim_node = self.r.register_script(CLAIM_NODE)

    @property
    def lease(self) -> float:
        return max(10.0, self.settings.room_tick_seconds * 10)

    async def tick(self) -> None:
        now = time.time()
        await self.r.zadd(self.nodes, {self.node: now})
        await self.reap_silent_nodes(now)
        await self.expire_due(now)

    async def expire_due(self, now: float) -> None:
        for entry in await self.store.claim_due(now, self.lease):
            room_id, user_id, conn = entry.split("|", 2)
            await self.store.expire(room_id, user_id, conn)

    async def reap_silent_nodes(self, now: float) -> None:
        silent_since = now - self.settings.room_node_timeout_seconds
        for raw in await self.r.zrangebyscore(self.nodes, "-inf", silent_since):
            node = str(raw)
            if node == self.node:
                continue
            retry_at = silent_since + self.lease
            if not await self._claim_node(keys=[self.nodes], args=[node, silent_since, retry_at]):
                continue
            log.warning("rooms.node_silent", node=node)
            await self.disconnect_all(node)
            await self.r.zrem(self.nodes, node)

    async def disconnect_all(self, node: str, keep: set[str] | None = None) -> None:
        """Start the grace period of every participant listed on ``node`` but not in ``keep``."""
        key = self.store.node_conns(node)
        for raw in await self.r.smembers(key):
            entry = str(raw)
            if keep is not None and entry in keep:
                continue
            room_id, user_id, conn = entry.split("|", 2)
            await self.store.disconnect(room_id, user_id, conn, node)

    async def leave(self) -> None:
        """This process is shutting down: forget it, unless sockets are left to reap."""
        if not await self.r.scard(self.store.node_conns(self.node)):
            await self.r.zrem(self.nodes, self.node)
