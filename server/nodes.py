"""This process's identity as a node, and the registry of live nodes (on Redis time).

Every server process is one node, with an id unique to this run of the process (a restarted
process is a new node whose old sockets and peer connections are gone) and the URL where
clients reach it. Nodes hold a lease on their own entry in the ``alive`` lease table and
renew it every heartbeat; a node that stops renewing is dead once its lease runs out. One
other node then takes the dead entry (a lease of its own, see ``server.leases``), has every
feature clean up after it (the hooks added with ``on_dead``: its sockets' grace periods, its
media rooms), and forgets it (``reap``).

A node publishes its load with each heartbeat (``load``: the media layer's listeners, CPU
and rooms) for placement; liveness is the lease alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis

from server.background import every
from server.background import stop as stop_task
from server.leases import LeaseTable
from server.settings import Settings
from server.store import REDIS_DOWN, Keys

log = structlog.get_logger(__name__)

DeadHook = Callable[[str], Awaitable[object]]  # clean up after the dead node with this id
REAP_LEASE = 30.0  # cleaning up after one dead node takes at most this long


@dataclass(frozen=True)
class Node:
    id: str
    url: str  # where clients reach this process (HTTP, WebSocket, media)

    @classmethod
    def for_process(cls, settings: Settings) -> Node:
        # Unique per process run, even when processes share one configured node id.
        node_id = f"{settings.node_id}-{secrets.token_hex(3)}"
        return cls(node_id, (settings.media_node_url or settings.public_base_url).rstrip("/"))


@dataclass(frozen=True)
class NodeInfo:
    id: str
    url: str
    load: dict[str, Any] = field(default_factory=dict)


class NodeRegistry:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        node: Node,
        *,
        heartbeat_seconds: float,
        ttl_seconds: float,
    ) -> None:
        self.redis = redis
        self.node = node
        self.heartbeat_seconds = heartbeat_seconds
        self.ttl = ttl_seconds
        self._holders = keys("nodes", "{nodes}", "holder")
        self.alive = LeaseTable(redis, keys("nodes", "{nodes}", "alive"), self._holders)
        self._info = keys("nodes", "{nodes}", "info")
        self.load: dict[str, Any] = {}  # published with each heartbeat (listeners, cpu...)
        self._task: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._hooks: list[DeadHook] = []

    async def start(self) -> list[str]:
        """Announce this node and keep announcing it. Returns the ids of earlier runs of this
        process (same URL, still within their lease): they are gone, so they come due now."""
        predecessors: list[str] = []
        with contextlib.suppress(*REDIS_DOWN):
            await self.beat()
            predecessors = await self._retire_predecessors()
        self._task = asyncio.create_task(self._run(), name="node-heartbeat")
        return predecessors

    def on_dead(self, hook: DeadHook) -> None:
        """Have ``hook(node_id)`` run for every dead node before it is forgotten. Hooks must
        be safe to run twice: a process dying mid-way leaves the node to another one."""
        self._hooks.append(hook)

    def start_reaping(self) -> None:
        """Clean up after dead nodes from now on (once every feature has added its hook)."""
        reap = every(self.heartbeat_seconds, self.reap, "nodes.reap")
        self._reaper = asyncio.create_task(reap, name="node-reaper")

    async def stop(self) -> None:
        """Stop heartbeating and reaping, and leave the registry at once (again, harmlessly,
        if a feature left it earlier so that no one placed work here while it stopped)."""
        await stop_task(self._reaper)
        self._reaper = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.forget(self.node.id)
        except REDIS_DOWN as exc:
            log.warning("nodes.leave_failed", error=repr(exc))

    async def beat(self) -> bool:
        """Renew this node's lease; False if another node declared it dead meanwhile."""
        info = json.dumps({"url": self.node.url, "load": self.load})
        await self.redis.hset(self._info, self.node.id, info)
        [holder] = await self.alive.take([self.node.id], self.node.id, self.ttl)
        return holder == self.node.id

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                if not await self.beat():
                    log.error("nodes.declared_dead", node=self.node.id)
            except REDIS_DOWN as exc:
                log.warning("nodes.heartbeat_failed", error=repr(exc))

    async def nodes(self) -> dict[str, NodeInfo]:
        """Live nodes: those holding their own unexpired lease."""
        seconds, micros = await self.redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        async with self.redis.pipeline(transaction=False) as p:
            p.zrangebyscore(self.alive.key, now_ms + 1, "+inf")
            p.hgetall(self._holders)
            p.hgetall(self._info)
            members, holders, infos = await p.execute()
        live = {}
        for raw in members:
            node_id = str(raw)
            if holders.get(node_id) == node_id and node_id in infos:
                info = json.loads(infos[node_id])
                live[node_id] = NodeInfo(node_id, info["url"], info.get("load", {}))
        return live

    async def is_alive(self, node_id: str) -> bool:
        return node_id == self.node.id or node_id in await self.nodes()

    async def take_dead(self, lease: float, limit: int = 10) -> list[str]:
        """Dead nodes for this node to clean up after; ``forget`` each one when done."""
        dead = await self.alive.take_due(self.node.id, lease, limit)
        return [d for d in dead if d != self.node.id]

    async def reap(self, limit: int = 10) -> list[str]:
        """Take up to ``limit`` dead nodes, run every hook for each, and forget them."""
        dead = await self.take_dead(REAP_LEASE, limit)
        for node_id in dead:
            log.warning("nodes.dead", node=node_id)
            for hook in self._hooks:
                await hook(node_id)
            await self.forget(node_id)
        return dead

    async def forget(self, node_id: str) -> None:
        await self.alive.done(node_id)
        await self.redis.hdel(self._info, node_id)

    async def _retire_predecessors(self) -> list[str]:
        same_place = [n.id for n in (await self.nodes()).values() if n.url == self.node.url]
        retired = [n for n in same_place if n != self.node.id]
        if retired:
            await self.redis.zadd(self.alive.key, dict.fromkeys(retired, 0))
        return retired
