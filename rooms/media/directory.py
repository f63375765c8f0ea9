"""Where each room's media is, in Redis: its origin, the origin's trunk key, its edges.

* **The origin** of a room is a lease (``server.leases.LeaseTable``, ``origins``): the
  node holding it receives the room's speakers and renews it every heartbeat; once it runs
  out (the node died or hung) the next participant's offer lets another node claim it.
* **The origin's record** (``room:<room>:<node>``, a hash): the trunk key of this origin
  term and ``sources``, which user each trunk SSRC carries. Keyed by the origin, so every
  node only ever writes and deletes its own.
* **The edges** (``edges:<room>``, a hash node -> ``host:port``): where the origin sends
  the room's packets; each edge adds and removes its own field.
* **What each node holds** (``held:<node>``, a set of rooms), so that whoever cleans up
  after a dead node (``forget_node``) finds everything it left; nothing else expires.

Every key shares one hash tag (``{media}``), so each multi-key call stays atomic on a Redis
Cluster.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from redis.asyncio import Redis

from server.leases import LeaseTable
from server.store import Keys


@dataclass(frozen=True)
class Where:
    """A room's media as Redis has it: its live origin (or None) and its edges."""

    origin: str | None
    edges: dict[str, str] = field(default_factory=dict)

    @property
    def serving(self) -> list[str]:
        """Every node serving the room, the origin first."""
        nodes = [self.origin] if self.origin else []
        return nodes + [n for n in self.edges if n != self.origin]


@dataclass(frozen=True)
class OriginRecord:
    key: bytes
    sources: dict[int, str]  # trunk SSRC -> user id


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


class Directory:
    def __init__(self, redis: Redis, keys: Keys, lease_seconds: float) -> None:
        self.redis = redis
        self.lease_seconds = lease_seconds
        k = lambda *parts: keys("media", "{media}", *parts)  # noqa: E731
        self._k = k
        self.origins = LeaseTable(redis, k("origins"), k("origin_holders"))

    def _record(self, room: str, node: str) -> str:
        return self._k("room", room, node)

    def _edges(self, room: str) -> str:
        return self._k("edges", room)

    def _held(self, node: str) -> str:
        return self._k("held", node)

    # ---- reads ----

    async def where(self, room: str) -> Where:
        async with self.redis.pipeline(transaction=False) as p:
            p.time()
            p.zscore(self.origins.key, room)
            p.hget(str(self.origins.holders_key), room)
            p.hgetall(self._edges(room))
            (seconds, micros), until, holder, edges = await p.execute()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        live = holder is not None and until is not None and float(until) > now_ms
        return Where(str(holder) if live else None, {str(n): str(a) for n, a in edges.items()})

    async def origin_record(self, room: str, node: str) -> OriginRecord | None:
        raw = await self.redis.hgetall(self._record(room, node))
        if "key" not in raw:
            return None
        sources = {int(s): str(u) for s, u in json.loads(raw.get("sources", "{}")).items()}
        return OriginRecord(base64.b64decode(raw["key"]), sources)

    # ---- the origin's writes ----

    async def claim(self, room: str, node: str) -> str:
        """Take (or keep) the room's origin lease for ``node``; the holder afterwards."""
        [holder] = await self.origins.take([room], node, self.lease_seconds)
        if holder == node:
            await self.redis.sadd(self._held(node), room)
        return holder

    async def renew(self, rooms: list[str], node: str) -> list[str]:
        """Renew ``node``'s origin leases; the rooms it no longer holds."""
        holders = await self.origins.take(rooms, node, self.lease_seconds)
        return [room for room, holder in zip(rooms, holders, strict=True) if holder != node]

    async def publish_origin(self, room: str, node: str, key: bytes) -> None:
        record = self._record(room, node)
        async with self.redis.pipeline(transaction=True) as p:
            p.delete(record)
            p.hset(record, mapping={"key": base64.b64encode(key).decode(), "sources": "{}"})
            await p.execute()

    async def publish_sources(self, room: str, node: str, sources: dict[int, str]) -> None:
        await self.redis.hset(self._record(room, node), "sources", json.dumps(sources))

    async def release_origin(self, room: str, node: str) -> None:
        await self.origins.release(node, room)
        await self.redis.delete(self._record(room, node))

    # ---- an edge's writes ----

    async def add_edge(self, room: str, node: str, address: tuple[str, int]) -> None:
        async with self.redis.pipeline(transaction=True) as p:
            p.sadd(self._held(node), room)
            p.hset(self._edges(room), node, f"{address[0]}:{address[1]}")
            await p.execute()

    async def remove_edge(self, room: str, node: str) -> None:
        await self.redis.hdel(self._edges(room), node)

    async def forget_room(self, room: str, node: str) -> None:
        """``node`` holds nothing of the room any more."""
        await self.redis.srem(self._held(node), room)

    # ---- cleaning up after a node ----

    async def forget_node(self, node: str) -> list[str]:
        """Remove everything ``node`` holds (it is dead, or shutting down): its origin leases
        and records, its edge entries. The rooms it held."""
        rooms = sorted(str(r) for r in await self.redis.smembers(self._held(node)))
        for room in rooms:
            await self.origins.release(node, room)
            async with self.redis.pipeline(transaction=True) as p:
                p.delete(self._record(room, node))
                p.hdel(self._edges(room), node)
                p.srem(self._held(node), room)
                await p.execute()
        return rooms
