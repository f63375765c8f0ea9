"""Grace periods that work across processes and survive restarts.

A participant whose socket closes keeps their place until a deadline in the ``rooms:grace``
lease table (``server.leases``, written with the record by the store). Every process runs
``Presence.tick`` periodically: it takes due deadlines (leased, so a process dying mid-way
leaves them to another one) and applies them with ``RoomStore.expire``.

A process that dies cannot mark its sockets closed, so each one lists its connections in
``rooms:node:<node>:conns``; when the platform's node registry (``server.nodes``, on Redis
time) declares a node dead, the one process that takes it runs ``disconnect_all`` for it
(a hook of the registry's, next to the media layer's) before forgetting it.
"""

from __future__ import annotations

from rooms.control.store import RoomStore
from server.nodes import NodeRegistry
from server.settings import Settings


class Presence:
    def __init__(self, store: RoomStore, nodes: NodeRegistry, settings: Settings) -> None:
        self.store = store
        self.nodes = nodes
        self.node = nodes.node.id
        self.settings = settings
        nodes.on_dead(self.disconnect_all)

    @property
    def lease(self) -> float:
        """How long one process holds a deadline it is working on."""
        return max(10.0, self.settings.room_tick_seconds * 10)

    async def tick(self) -> None:
        await self.expire_due()

    async def expire_due(self, limit: int = 100) -> None:
        now = self.store.clock.now()
        for entry in await self.store.grace.take_due(self.node, self.lease, limit, now):
            room_id, user_id, conn = entry.split("|", 2)
            await self.store.expire(room_id, user_id, conn)

    async def disconnect_all(self, node: str, keep: set[str] | None = None) -> None:
        """Start the grace period of every participant listed on ``node`` but not in ``keep``."""
        key = self.store.node_conns(node)
        for raw in await self.store.r.smembers(key):
            entry = str(raw)
            if keep is not None and entry in keep:
                continue
            room_id, user_id, conn = entry.split("|", 2)
            await self.store.disconnect(room_id, user_id, conn, node)

    async def leave(self) -> None:
        """This process is shutting down (its sockets are closed): whoever is still listed on
        it gets their grace period now rather than once the node is declared dead."""
        await self.disconnect_all(self.node)
