"""This process as a media node: its part in each room (origin or edge), kept in Redis.

A node serves the participants the router (``rooms.media.router``, on any process) sends it
with ``accept``. For each room it serves it is either:

* the room's **origin**: it holds the room's origin lease (``rooms.media.directory``),
  receives the speakers, computes who is speaking, and sends each packet once to every
  edge over the trunk (``rooms.media.trunk``) with a key it drew when it claimed the room;
* an **edge**: it listens on a trunk socket of its own for the room (its address is in
  Redis for the origin to find) and feeds the packets to its listeners' fan-out like a
  local speaker's; it follows the origin (a new origin: a new key and new streams).

It announces changes on the room's channel (``rooms.media.bus``): a new origin, its edges,
the origin's live sources (which trunk SSRC is which speaker); it hears there who may
publish (gating is applied at once on every node), who left, and the room's end.

Every heartbeat it updates its load (listeners, cap, CPU), which the platform's node
registry (``server.nodes``) publishes with its lease, and renews its origin leases (a lost
one: its participants are asked to reconnect, the router places them anew). For every dead
node (the registry's ``on_dead`` hook) its origin leases, records and edge entries go and
its rooms are told (``node_gone``), before the registry forgets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis

from rooms.media.bus import Bus
from rooms.media.directory import Directory, parse_address
from rooms.media.placement import NodeLoad
from rooms.media.port import PublishEvent
from rooms.media.relay import Source
from rooms.media.service import RelayMediaService, RoomMedia
from rooms.media.signaling import sdp_ufrag
from rooms.media.trunk import TrunkIn, TrunkOut, new_key, trunk_socket
from server.background import every, stop
from server.errors import Conflict, DomainError
from server.nodes import NodeRegistry
from server.settings import Settings
from server.store import REDIS_DOWN, Keys

log = structlog.get_logger(__name__)

VIEW_SECONDS = 0.5  # how often the live nodes' loads are read
RECONCILE_EVERY = 5  # heartbeats between two full checks of every room against Redis
LOOKUP_EVERY = 0.25  # an edge re-reads its origin's record at most this often

# (ufrag of the peer connection concerned, message): to the participant's socket.
Deliver = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(eq=False)
class Part:
    """This node's part in one room: its origin, or one of its edges."""

    room_id: str
    origin: bool
    trunk_out: TrunkOut | None = None
    trunk_in: TrunkIn | None = None
    origin_node: str | None = None  # an edge: the origin whose streams it takes
    key: bytes | None = None  # and the key of its term
    by_ssrc: dict[int, Source] = field(default_factory=dict)
    looked_up_at: float = 0.0
    publishing_sources: asyncio.Task[None] | None = None
    sources_dirty: bool = False


class MediaNode:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        keys: Keys,
        registry: NodeRegistry,
        publish: PublishEvent | None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.id = registry.node.id
        self.bus = Bus(redis, keys, self.id)
        self.directory = Directory(redis, keys, settings.node_ttl_seconds)
        self.service = RelayMediaService(settings, publish, hooks=self)
        self.parts: dict[str, Part] = {}
        self.loads: dict[str, NodeLoad] = {}  # live nodes, refreshed every VIEW_SECONDS
        self.closing = False
        self._membership = asyncio.Lock()
        self._trunk_sock = trunk_socket()
        self._cpu = (time.process_time(), time.monotonic())
        self._beats = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._update_load()
        # Dead nodes and earlier runs of this process (the registry retired them at start).
        self.registry.on_dead(self.clean_up_after)
        await self.bus.start()
        with contextlib.suppress(*REDIS_DOWN):
            await self._view()
        self._loops = [
            asyncio.create_task(every(VIEW_SECONDS, self._view, "media.view")),
            asyncio.create_task(
                every(self.settings.node_heartbeat_seconds, self._heartbeat, "media.node")
            ),
        ]

    async def stop(self) -> None:
        """Shutdown: the participants here are asked to reconnect (the router places them on
        other nodes), then everything this node held in Redis goes."""
        self.closing = True
        for loop in self._loops:
            await stop(loop)
        await self.registry.stop()  # leaves at once: no router places anyone here any more
        for room in list(self.service.rooms.values()):
            for user in list(room.peers):
                await self.service.restart(room, user)
        await self.service.close()
        for task in list(self._tasks):
            await stop(task)
        try:
            await self.clean_up_after(self.id)
        except REDIS_DOWN as exc:
            log.warning("media.node.stop_failed", error=repr(exc))
        await self.bus.stop()
        self._trunk_sock.close()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- signaling

    async def accept(self, request: dict[str, Any], deliver: Deliver) -> None:
        """A participant's ``rtc.*`` message, routed here (from any process)."""
        room_id, user, message = request["room"], request["user"], request["msg"]
        allowed = bool(request.get("allowed"))
        if message.get("type") == "rtc.offer":
            fresh = sdp_ufrag(str(message.get("sdp", "")))
            if self.service.peer_ufrag(room_id, user) != fresh:  # a new peer connection
                await self._take_part(room_id, bool(request.get("origin")), not allowed)
        else:
            fresh = self.service.peer_ufrag(room_id, user) or ""
        part = self.parts.get(room_id)
        if part is None:
            raise Conflict("send rtc.offer first", code="no_peer_connection")
        if self._room_of(part).relay.allowed.get(user, False) != allowed:
            await self.service.set_publishing(room_id, user, allowed)
        self._room_of(part)  # (again: that may have let an empty room go)
        send = functools.partial(deliver, fresh)
        await self.service.signal(room_id, user, message, send)

    async def serve(self, request: dict[str, Any]) -> None:
        """A ``signal`` request from another process's router: accept it, answer it."""
        reply_to, room, user = request["reply_to"], request["room"], request["user"]

        async def deliver(ufrag: str, message: dict[str, Any]) -> None:
            body = {"op": "deliver", "room": room, "user": user, "ufrag": ufrag, "msg": message}
            await self.bus.send(reply_to, body)

        result: dict[str, Any] = {}
        try:
            await self.accept(request, deliver)
        except DomainError as exc:
            result = {"error": {"code": exc.code, "message": exc.message}}
        except Exception:
            log.exception("media.node.signal_failed", room=room, user=user)
            result = {"error": {"code": "internal", "message": "the media node failed"}}
        with contextlib.suppress(*REDIS_DOWN):
            await self.bus.reply(request, result)

    def on_message(self, room_id: str | None, message: dict[str, Any]) -> None:
        """A message for this node from the bus (its inbox, or a room channel)."""
        op = message.get("op")
        if room_id is None:
            if op == "signal":
                self._spawn(self.serve(message))
            elif op == "drop":  # a participant's old connection, placed anew elsewhere
                leave = self.service.leave(message["room"], message["user"], message["ufrag"])
                self._spawn(leave)
            return
        part = self.parts.get(room_id)
        if part is None:
            return
        handler = self._room_handlers.get(str(op))
        if handler is not None:
            self._spawn(handler(self, part, message))

    async def _on_publishing(self, part: Part, message: dict[str, Any]) -> None:
        # Nothing to gate in a room gone idle here (every routed offer says who may publish).
        if part.room_id in self.service.rooms:
            await self.service.set_publishing(part.room_id, message["user"], message["allowed"])

    async def _on_leave(self, part: Part, message: dict[str, Any]) -> None:
        await self.service.leave(part.room_id, message["user"], message.get("ufrag"))

    async def _on_end(self, part: Part, message: dict[str, Any]) -> None:
        await self.service.end_room(part.room_id)

    async def _on_origin(self, part: Part, message: dict[str, Any]) -> None:
        if not part.origin:  # a new origin, or a new term of the same one
            await self._follow_origin(part)

    async def _on_sources(self, part: Part, message: dict[str, Any]) -> None:
        followed = part.origin_node
        if not part.origin and (followed is None or message.get("node") == followed):
            await self._follow_origin(part)

    async def _on_edges(self, part: Part, message: dict[str, Any]) -> None:
        if part.origin:
            await self._refresh_edges(part)

    async def _on_node_gone(self, part: Part, message: dict[str, Any]) -> None:
        if part.origin:
            await self._refresh_edges(part)
        elif message.get("node") == part.origin_node:
            await self._follow_origin(part)

    _room_handlers: dict[
        str, Callable[[MediaNode, Part, dict[str, Any]], Coroutine[Any, Any, None]]
    ] = {
        "publishing": _on_publishing,
        "leave": _on_leave,
        "end": _on_end,
        "origin": _on_origin,
        "sources": _on_sources,
        "edges": _on_edges,
        "node_gone": _on_node_gone,
    }

    # ---------------------------------------------------------------- membership

    async def _take_part(self, room_id: str, as_origin: bool, listener: bool) -> None:
        """Serve the room (as its origin if asked) before a new peer connection of it."""
        if self.closing:
            raise Conflict("this media node is shutting down", code="node_full")
        if listener and self.service.listeners() >= self.settings.media_node_max_listeners:
            raise Conflict("this media node has all the listeners it takes", code="node_full")
        part = self.parts.get(room_id)
        if part is not None and (part.origin or not as_origin):
            return
        async with self._membership:
            part = self.parts.get(room_id)
            if as_origin and (part is None or not part.origin):
                await self._become_origin(room_id, part)
            elif part is None:
                await self._become_edge(room_id)

    def _room_of(self, part: Part) -> RoomMedia:
        """The part's room in the relay, made again if it went idle meanwhile (its part was
        about to end: it carries on instead)."""
        room = self.service.rooms.get(part.room_id)
        if room is not None:
            return room
        room = self.service.room(part.room_id, origin=part.origin)
        if part.origin:
            room.relay.set_trunk(part.trunk_out)
        else:
            part.by_ssrc, part.origin_node, part.key = {}, None, None
            self._spawn(self._follow_origin(part))
        return room

    async def _become_origin(self, room_id: str, edge: Part | None) -> None:
        holder = await self.directory.claim(room_id, self.id)
        if holder != self.id:
            raise Conflict(holder, code="not_origin")
        if edge is not None:  # this edge becomes the origin: its speakers arrive here now
            await self._end_part(edge)
        key = new_key()
        await self.directory.publish_origin(room_id, self.id, key)
        room = self.service.room(room_id)
        room.origin = True
        part = self.parts[room_id] = Part(room_id, origin=True)
        part.trunk_out = TrunkOut(key, self._trunk_sock)
        room.relay.set_trunk(part.trunk_out)
        await self.bus.join(room_id)
        await self._refresh_edges(part)
        self.sources_changed(room)
        await self.bus.announce(room_id, {"op": "origin", "node": self.id})
        log.info("media.origin", room=room_id, node=self.id)

    async def _become_edge(self, room_id: str) -> None:
        part = self.parts[room_id] = Part(room_id, origin=False)
        self.service.room(room_id, origin=False)
        await self.bus.join(room_id)
        deliver = functools.partial(self._on_trunk, part)
        on_reject = functools.partial(self._look_up, part)
        part.trunk_in = TrunkIn(new_key(), deliver, on_reject)  # no origin known yet
        bind = self.settings.media_trunk_bind or self.settings.media_trunk_host
        _, port = await part.trunk_in.open(bind)
        await self.directory.add_edge(room_id, self.id, (self.settings.media_trunk_host, port))
        await self._follow_origin(part)
        await self.bus.announce(room_id, {"op": "edges"})
        log.info("media.edge", room=room_id, node=self.id, origin=part.origin_node)

    def room_idle(self, room: RoomMedia) -> None:
        """Hook: nothing of the room is left here; this node's part in it ends."""
        part = self.parts.get(room.id)
        if part is not None:
            self._spawn(self._leave(part))

    async def _leave(self, part: Part) -> None:
        async with self._membership:
            if self.parts.get(part.room_id) is not part or part.room_id in self.service.rooms:
                return  # taken up again meanwhile (see _room_of)
            with contextlib.suppress(*REDIS_DOWN):
                await self._end_part(part)
                await self.directory.forget_room(part.room_id, self.id)
            await self.bus.leave(part.room_id)

    async def _end_part(self, part: Part) -> None:
        """Undo what this node's part in the room put in place (its role changes or ends)."""
        if self.parts.get(part.room_id) is part:
            del self.parts[part.room_id]
        room = self.service.rooms.get(part.room_id)
        if part.origin:
            if room is not None:
                room.relay.set_trunk(None)
            await self.directory.release_origin(part.room_id, self.id)
            return
        if part.trunk_in is not None:
            part.trunk_in.close()
        if room is not None:
            self._drop_remote_sources(part, room)
        await self.directory.remove_edge(part.room_id, self.id)
        await self.bus.announce(part.room_id, {"op": "edges"})

    # ---------------------------------------------------------------- origin

    async def _refresh_edges(self, part: Part) -> None:
        """Where the room's packets go: every live edge (never this node)."""
        where = await self.directory.where(part.room_id)
        if part.trunk_out is not None:
            part.trunk_out.edges = [
                parse_address(address)
                for node, address in where.edges.items()
                if node != self.id and (node in self.loads or not self.loads)
            ]

    def sources_changed(self, room: RoomMedia) -> None:
        """Hook: the origin's live sources changed; the edges are told (one write at a time,
        the last state always written)."""
        part = self.parts.get(room.id)
        if part is None or not part.origin:
            return
        part.sources_dirty = True
        if part.publishing_sources is None or part.publishing_sources.done():
            part.publishing_sources = asyncio.create_task(self._publish_sources(part, room))

    async def _publish_sources(self, part: Part, room: RoomMedia) -> None:
        while part.sources_dirty and self.parts.get(part.room_id) is part:
            part.sources_dirty = False
            try:
                sources = room.relay.trunk_sources()
                await self.directory.publish_sources(part.room_id, self.id, sources)
                await self.bus.announce(part.room_id, {"op": "sources", "node": self.id})
            except REDIS_DOWN as exc:  # the next reconcile writes them again
                log.warning("media.sources_failed", room=part.room_id, error=repr(exc))

    # ---------------------------------------------------------------- edge

    async def _follow_origin(self, part: Part) -> None:
        """Take the current origin's key and live sources (a new origin: new streams)."""
        part.looked_up_at = time.monotonic()
        room = self.service.rooms.get(part.room_id)
        if room is None or part.trunk_in is None or self.parts.get(part.room_id) is not part:
            return
        origin = (await self.directory.where(part.room_id)).origin
        record = await self.directory.origin_record(part.room_id, origin) if origin else None
        term = (origin, record.key if record else None)
        if term != (part.origin_node, part.key):  # a new origin, or a new term of the same
            self._drop_remote_sources(part, room)
            part.origin_node = part.key = None
        if record is None or origin is None:
            return
        if part.key is None:
            part.trunk_in.set_key(record.key)
            part.origin_node, part.key = origin, record.key
        self._apply_sources(part, room, record.sources)

    def _apply_sources(self, part: Part, room: RoomMedia, sources: dict[int, str]) -> None:
        relay = room.relay
        for user, source in list(relay.sources.items()):
            if source.remote and sources.get(source.trunk_ssrc) != user:
                relay.drop_source(user)
        part.by_ssrc = {}
        for ssrc, user in sources.items():
            source = part.by_ssrc[ssrc] = relay.remote_source(user, ssrc)
            source.receiving = True
        self.service.sync(room)

    def _drop_remote_sources(self, part: Part, room: RoomMedia) -> None:
        for user, source in list(room.relay.sources.items()):
            if source.remote:
                room.relay.drop_source(user)
        part.by_ssrc = {}
        self.service.sync(room)

    def _on_trunk(
        self, part: Part, ssrc: int, payload: bytes, level: int, marker: int, timestamp: int
    ) -> None:
        """A packet from the origin (the edge's hot path)."""
        source = part.by_ssrc.get(ssrc)
        if source is None:  # a stream the origin started since we last read its sources
            self._look_up(part)
            return
        source.on_trunk(payload, level, marker, timestamp)

    def _look_up(self, part: Part) -> None:
        """Re-read the origin's record soon (a stream or key we do not know yet)."""
        if time.monotonic() - part.looked_up_at >= LOOKUP_EVERY:
            part.looked_up_at = time.monotonic()
            self._spawn(self._follow_origin(part))

    # ---------------------------------------------------------------- every heartbeat

    async def _view(self) -> None:
        """The live nodes and their loads (the router places participants with them)."""
        nodes = await self.registry.nodes()
        self.loads = {n: NodeLoad.of(n, info.load) for n, info in nodes.items()}

    def _update_load(self) -> None:
        cpu, wall = time.process_time(), time.monotonic()
        used = (cpu - self._cpu[0]) / max(1e-3, wall - self._cpu[1])
        self._cpu = (cpu, wall)
        self.registry.load.update(
            listeners=self.service.listeners(),
            max_listeners=0 if self.closing else self.settings.media_node_max_listeners,
            cpu=round(used, 3),
            rooms=len(self.parts),
        )

    async def _heartbeat(self) -> None:
        self._update_load()
        self._beats += 1
        origins = [room for room, part in self.parts.items() if part.origin]
        for room_id in await self.directory.renew(origins, self.id):
            await self._lost_origin(room_id)
        if self._beats % RECONCILE_EVERY == 0:
            await self._reconcile()

    async def _lost_origin(self, room_id: str) -> None:
        """Another node holds the room now (this one hung past its lease): this node's
        participants of the room reconnect, through the router, to where it is now."""
        log.warning("media.origin_lost", room=room_id, node=self.id)
        room = self.service.rooms.get(room_id)
        if room is None:
            return
        for user in list(room.peers):
            await self.service.restart(room, user)

    async def _reconcile(self) -> None:
        """Every room against Redis, in case a message was lost: the origin's edges and
        sources, the edge's origin and its streams."""
        for part in list(self.parts.values()):
            if part.origin:
                await self._refresh_edges(part)
                room = self.service.rooms.get(part.room_id)
                if room is not None:
                    self.sources_changed(room)
            else:
                await self._follow_origin(part)

    async def clean_up_after(self, node_id: str) -> None:
        """A node is gone (dead, an earlier run of this process, or this one leaving): what
        it held in Redis goes and its rooms are told. The registry runs it for a dead node
        (``NodeRegistry.on_dead``) before forgetting it."""
        rooms = await self.directory.forget_node(node_id)
        for room_id in rooms:
            await self.bus.announce(room_id, {"op": "node_gone", "node": node_id})
        if node_id != self.id:
            log.info("media.node_cleaned_up", node=node_id, rooms=len(rooms))
