"""The rooms runtime of one process: the store, the event hub, presence duties and media."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import structlog

from rooms.control import presenters
from rooms.control.events import Listeners, RoomEnded, ServerEvent, encode
from rooms.control.hub import Hub, outgoing
from rooms.control.presence import Presence
from rooms.control.schemas import Room
from rooms.control.state import Meta
from rooms.control.store import RoomStore
from rooms.media.port import MediaService
from server.background import stop
from server.feature import Slot
from server.graph.store import Graph
from server.platform import Platform
from server.webhooks.outbox import Outbox

log = structlog.get_logger(__name__)


class Departed(Protocol):
    """A local connection that has closed (``ended_by``: why the server closed it, if it did)."""

    room_id: str
    user_id: str
    conn_id: str
    entry: str
    ended_by: str | None


class ReplayIndex(Protocol):
    """Where ended rooms with a replay are listed (``rooms.recording``, when it runs)."""

    async def replays(self, caller: str, limit: int, host: str | None = None) -> list[Meta]: ...


class RoomsService:
    """What every room endpoint and socket of this process shares."""

    def __init__(
        self,
        platform: Platform,
        graph: Graph,
        media: MediaService | None,
        outbox: Outbox | None = None,
    ) -> None:
        self.settings = platform.settings
        self.redis = platform.redis
        self.keys = platform.keys
        self.limiter = platform.limiter
        self.clock = platform.clock
        self.graph = graph
        self.media = media
        # Unique per process run: a restarted process is a new node whose old sockets are gone.
        self.node = platform.node.id
        self.store = RoomStore(self.redis, self.keys, self.settings, self.clock, outbox)
        control = self.keys("rooms", "node", self.node)
        self.hub = Hub(self.redis, self.keys, self._on_room_event, self._resync, control)
        self.presence = Presence(self.store, platform.nodes, self.settings)
        self.local: set[str] = set()  # "room|user|conn" of this process's sockets
        self._counts: dict[str, tuple[int, int]] = {}
        self._unsettled = False  # a socket closed while Redis was unreachable
        self._tasks: set[asyncio.Task[Any]] = set()
        self.replays: ReplayIndex | None = None  # set by the recording feature

    async def room(self, meta: Meta, counts: tuple[int, int] | None = None) -> Room:
        """The room as clients see it."""
        if counts is None:
            counts = (await self.store.counts([meta.id]))[0]
        reminders = 0
        if meta.state == "scheduled":
            [reminders] = await self.store.reminder_counts([meta.id])
        base = self.settings.public_base_url
        return presenters.room(meta, counts, base, reminders)

    async def rooms(self, metas: list[Meta]) -> list[Room]:
        counts = await self.store.counts(m.id for m in metas)
        return [await self.room(m, c) for m, c in zip(metas, counts, strict=True)]

    def _on_room_event(self, room_id: str, event: ServerEvent) -> None:
        media = self.media
        if isinstance(event, RoomEnded) and media is not None:
            self._spawn(media.end_room(room_id))

    def _resync(self) -> None:
        for listeners in list(self.hub.rooms.values()):
            for conn in list(listeners):
                self._spawn(conn.resync())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def gone(self, conn: Departed) -> None:
        """A socket closed: start the participant's grace period and close their media.

        The socket is no longer local whatever happens next; a grace period that cannot be
        started now (Redis unreachable) is started by a later tick.
        """
        await self.settle(conn)
        media = self.media
        if media is not None and conn.ended_by not in ("replaced", "ended"):
            try:
                await media.leave(conn.room_id, conn.user_id)
            except Exception:
                log.exception("rooms.media_leave_failed")

    async def settle(self, conn: Departed) -> None:
        """The socket is no longer local: start its grace period now, or at a later tick if
        Redis cannot be reached (for a socket replaced, removed or ended, ``disconnect`` only
        drops it from this node's list)."""
        self.local.discard(conn.entry)
        try:
            await self.store.disconnect(conn.room_id, conn.user_id, conn.conn_id, self.node)
        except Exception as exc:
            log.warning("rooms.disconnect_failed", error=repr(exc))
            self._unsettled = True

    async def tick(self) -> None:
        await self.presence.tick()
        if self._unsettled:
            # Every participant listed on this node without a local socket gets its grace
            # period (a failure, here or in a gone() meanwhile, sets the flag again).
            self._unsettled = False
            try:
                await self.presence.disconnect_all(self.node, keep=self.local)
            except BaseException:
                self._unsettled = True
                raise
        for room_id in await self.store.cancel_overdue(self.node, self.presence.lease):
            log.info("rooms.schedule_expired", room=room_id)
        await self.refresh_counts()

    def large(self, room_id: str) -> bool:
        """Whether the room had more than ``room_listener_events_max`` listeners at this
        process's last count (its tick's)."""
        listeners = self._counts.get(room_id, (0, 0))[0]
        return listeners > self.settings.room_listener_events_max

    async def refresh_counts(self) -> None:
        """Send ``listeners`` to local sockets when a room's counts changed (one encoding)."""
        room_ids = list(self.hub.rooms)
        counts = await self.store.counts(room_ids) if room_ids else []
        for room_id, c in zip(room_ids, counts, strict=True):
            if self._counts.get(room_id) == c:
                continue
            self._counts[room_id] = c
            out = outgoing(encode(Listeners(listener_count=c[0], speaker_count=c[1])))
            for listener in list(self.hub.rooms.get(room_id, ())):
                listener.send_ready(out)
        for gone in set(self._counts) - set(room_ids):
            del self._counts[gone]

    async def stop(self) -> None:
        """Shutdown: end the tasks started for room events (media, resyncs)."""
        for task in list(self._tasks):
            await stop(task)


# How the room endpoints and socket of an app instance reach its service.
ROOMS: Slot[RoomsService] = Slot("rooms")
