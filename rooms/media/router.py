"""The media port on every process: each participant's signaling goes to the node serving
their media, wherever their room socket landed (LiveKit's router plays this part).

A participant's first ``rtc.offer`` (and the first of every new client-side connection) is
*placed* (``rooms.media.placement``): a speaker at the room's origin, a listener on a node
serving the room or on a new edge, by load. Later messages follow it to the same node.
The node runs in this process (a call) or another (a request over Redis, its ``result``
awaited, so errors still answer the message that caused them). The node's answers and
offers come back here and go out on the participant's socket; only the media itself goes
straight between the client and that node (its ICE candidates are in its SDP).

The router asks a client to connect its media again (``rtc.restart``: a new peer
connection, placed anew) when:

* the node serving it is gone: its process no longer listens on Redis (it died: noticed
  within a second) or its registry lease ran out (it hung);
* a listener on an edge may now speak: speakers publish to the origin;
* the node itself asks (it is shutting down, or lost the room's origin lease);
* no node could take its last offer (every one full, or none answering: the offer got an
  error), once one may.

Every ``rtc.*`` message a node sends is tagged with the peer connection it is for; one for
a connection the client has replaced is dropped here.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from rooms.control.events import RtcRestart, type_of
from rooms.media.directory import Where
from rooms.media.node import MediaNode
from rooms.media.placement import NodeLoad, listener_nodes, origin_nodes
from rooms.media.port import SendJson
from rooms.media.signaling import RtcOffer, parse_message, parse_sdp, ufrag
from server.background import every, stop
from server.errors import Conflict, DomainError
from server.store import REDIS_DOWN, request_budget

log = structlog.get_logger(__name__)

WATCH_SECONDS = 0.5
RETRY_SECONDS = 0.25  # while a dead origin's lease runs out
STRANDED_RETRY = 2.0
SILENT_CHECKS = 2  # a node not listening on Redis this many checks in a row is gone
FORGET_GONE = 60.0  # a node seen gone is not placed on until the registry forgets it, or this


@dataclass(eq=False)
class Participant:
    """One participant whose room socket is on this process."""

    room_id: str
    user_id: str
    send: SendJson | None = None
    allowed: bool = False
    node: str | None = None  # the node serving their current peer connection
    ufrag: str | None = None  # that connection (the client's ICE username fragment)
    pending: str | None = None  # a connection being placed
    stranded: str | None = None  # a connection no node could take (asked again later)
    stranded_at: float = 0.0
    retired: deque[str] = field(default_factory=lambda: deque(maxlen=8))

    def current(self, ufrag: str) -> bool:
        return ufrag in (self.ufrag, self.pending)

    def retire(self) -> None:
        """The client was asked for a new connection: the old one is done with."""
        if self.ufrag:
            self.retired.append(self.ufrag)
        self.node = self.ufrag = None


class MediaRouter:
    """Implements ``rooms.media.port.MediaService`` on every process."""

    def __init__(self, node: MediaNode) -> None:
        self.node = node
        self.settings = node.settings
        self.participants: dict[tuple[str, str], Participant] = {}
        self._placed: dict[str, int] = {}  # listeners placed per node since the last view
        self._view: dict[str, NodeLoad] | None = None
        self._silent: dict[str, int] = {}
        self._gone: dict[str, float] = {}  # node -> when it was seen gone
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(every(WATCH_SECONDS, self._watch, "media.router"))

    async def stop(self) -> None:
        await stop(self._task)

    def _participant(self, room_id: str, user_id: str) -> Participant:
        key = (room_id, user_id)
        p = self.participants.get(key)
        if p is None:
            p = self.participants[key] = Participant(room_id, user_id)
        return p

    # ---------------------------------------------------------------- MediaService

    async def signal(
        self, room_id: str, user_id: str, message: dict[str, Any], send: SendJson
    ) -> None:
        msg = parse_message(message)
        p = self._participant(room_id, user_id)
        p.send = send
        # Placing a connection takes a few Redis calls more than a room message's budget
        # allows on a busy server; a Redis that is down still fails them at once (circuit).
        with request_budget(self.settings.media_rpc_timeout_seconds):
            if isinstance(msg, RtcOffer):
                fresh = ufrag(parse_sdp(msg.sdp))
                if fresh in p.retired:
                    return  # from a connection we asked to restart: its successor follows
                if p.node is None or fresh != p.ufrag:
                    await self._place(p, message, fresh)
                    return
            if p.node is None:
                raise Conflict("send rtc.offer first", code="no_peer_connection")
            await self._forward(p.node, p, message, origin=False)

    async def set_publishing(self, room_id: str, user_id: str, allowed: bool) -> None:
        p = self._participant(room_id, user_id)
        was, p.allowed = p.allowed, allowed
        if allowed or was:  # gated at once on the origin and every edge
            update = {"op": "publishing", "user": user_id, "allowed": allowed}
            await self.node.bus.announce(room_id, update)
        if allowed and not was and p.node is not None:
            where = await self.node.directory.where(room_id)
            if where.origin != p.node:
                await self._restart(p)  # speakers publish to the origin

    async def leave(self, room_id: str, user_id: str) -> None:
        p = self.participants.pop((room_id, user_id), None)
        if p is not None and (p.node or p.allowed):
            update = {"op": "leave", "user": user_id, "ufrag": p.ufrag}
            await self.node.bus.announce(room_id, update)

    async def end_room(self, room_id: str) -> None:
        for key in [k for k in self.participants if k[0] == room_id]:
            del self.participants[key]
        await self.node.bus.announce(room_id, {"op": "end"})

    # ---------------------------------------------------------------- placing

    async def _place(self, p: Participant, message: dict[str, Any], fresh: str) -> None:
        """Send a new connection's offer to the best node that takes it."""
        old = (p.node, p.ufrag)
        p.pending = fresh
        settings = self.settings
        deadline = time.monotonic() + settings.node_ttl_seconds + settings.media_rpc_timeout_seconds
        try:
            while (placed := await self._try(p, message)) is None:
                if time.monotonic() > deadline:
                    raise Conflict("no media node can take you now; retry", code="media_busy")
                await asyncio.sleep(RETRY_SECONDS)
        except DomainError:  # the client is asked again once a node can take it
            p.stranded, p.stranded_at = fresh, time.monotonic()
            raise
        finally:
            p.pending = None
        node_id, at_origin = placed
        log.info("media.router.placed", room=p.room_id, user=p.user_id, node=node_id)
        p.node, p.ufrag, p.stranded = node_id, fresh, None
        if not p.allowed:
            self._placed[node_id] = self._placed.get(node_id, 0) + 1
        if old[0] is not None and old[1] is not None and old[0] != node_id:
            await self._drop(old[0], p, old[1])
        if p.allowed and not at_origin:  # allowed to speak while this was being placed
            await self._restart(p)

    async def _try(self, p: Participant, message: dict[str, Any]) -> tuple[str, bool] | None:
        """The node that took the offer; None to try again (a dead origin's lease is still
        running out); ``media_full`` when every node is full."""
        loads = self._loads()
        candidates = self._candidates(p, await self.node.directory.where(p.room_id), loads)
        waiting = False
        while candidates:
            node_id, as_origin = candidates.pop(0)
            try:
                await self._forward(node_id, p, message, origin=as_origin)
                return node_id, as_origin
            except DomainError as exc:
                if exc.code == "not_origin" and exc.message in loads:
                    candidates.insert(0, (exc.message, True))  # the one that claimed it
                elif exc.code in ("not_origin", "media_busy"):
                    waiting = True  # a dead origin's lease, a dead node's registry entry
                elif exc.code != "node_full":
                    raise
        if waiting:
            return None
        log.warning(
            "media.router.full",
            room=p.room_id,
            nodes=sorted(self.node.loads),
            gone=sorted(self._gone),
            silent=self._silent,
        )
        raise Conflict("this room's audio is at capacity; retry later", code="media_full")

    def _candidates(
        self, p: Participant, where: Where, loads: dict[str, NodeLoad]
    ) -> list[tuple[str, bool]]:
        """(node, as origin) to try, best first."""
        own, busy = self.node.id, self.settings.media_busy_cpu
        origin = where.origin if where.origin in loads else None
        if origin is not None and p.allowed:
            return [(origin, True)]
        edges = [n for n in where.edges if n in loads and n != where.origin]
        if origin is None and (p.allowed or not edges):
            listener = not p.allowed
            return [(n, True) for n in origin_nodes(loads, own, busy, listener=listener)]
        serving = ([origin] if origin else []) + edges
        return [(n, n == origin) for n in listener_nodes(loads, serving, busy)]

    def _loads(self) -> dict[str, NodeLoad]:
        """Live nodes' loads, with the listeners placed since they were published."""
        view = self.node.loads
        if view is not self._view:
            self._view, self._placed = view, {}
        loads = {
            n: load.plus(self._placed.get(n, 0)) for n, load in view.items() if n not in self._gone
        }
        if self.node.id not in loads and not self.node.closing:
            loads[self.node.id] = NodeLoad.of(self.node.id, self.node.registry.load)
        return loads

    async def _forward(
        self, node_id: str, p: Participant, message: dict[str, Any], *, origin: bool
    ) -> None:
        request = {
            "op": "signal",
            "room": p.room_id,
            "user": p.user_id,
            "allowed": p.allowed,
            "origin": origin,
            "msg": message,
        }
        if node_id == self.node.id:
            await self.node.accept(request, self._deliverer(p.room_id, p.user_id))
            return
        try:
            result = await self.node.bus.call(
                node_id, request, self.settings.media_rpc_timeout_seconds
            )
        except TimeoutError:
            log.warning("media.router.no_answer", node=node_id, room=p.room_id)
            self._gone[node_id] = time.monotonic()
            raise Conflict("the media node did not answer; retry", code="media_busy") from None
        error = result.get("error")
        if error:
            raise DomainError(str(error["message"]), code=str(error["code"]))

    async def _drop(self, node_id: str, p: Participant, ufrag: str) -> None:
        """Close a participant's old peer connection on ``node_id``."""
        drop = {"op": "drop", "room": p.room_id, "user": p.user_id, "ufrag": ufrag}
        try:
            if node_id == self.node.id:
                self.node.on_message(None, drop)
            else:
                await self.node.bus.send(node_id, drop)
        except REDIS_DOWN as exc:  # the node closes it anyway once the client goes quiet
            log.info("media.router.drop_failed", error=repr(exc))

    # ---------------------------------------------------------------- deliveries

    def _deliverer(self, room_id: str, user_id: str) -> Callable[[str, dict[str, Any]], Any]:
        async def deliver(ufrag: str, message: dict[str, Any]) -> None:
            await self._deliver(room_id, user_id, ufrag, message)

        return deliver

    def on_deliver(self, message: dict[str, Any]) -> None:
        """A node's message for a participant whose socket is here (from the bus)."""
        work = self._deliver(message["room"], message["user"], message["ufrag"], message["msg"])
        asyncio.get_running_loop().create_task(work)

    async def _deliver(self, room_id: str, user_id: str, ufrag: str, msg: dict[str, Any]) -> None:
        p = self.participants.get((room_id, user_id))
        if p is None or p.send is None or (ufrag and not p.current(ufrag)):
            return  # gone, or for a connection the client has replaced
        if msg.get("type") == type_of(RtcRestart):
            p.retire()
        await p.send(msg)

    async def _restart(self, p: Participant) -> None:
        """Have the client connect its media again; close the old connection's peer."""
        old_node, old_ufrag = p.node, p.ufrag
        log.info("media.router.restart", room=p.room_id, user=p.user_id, node=old_node)
        restart = RtcRestart(publish=p.allowed).wire()
        await self._deliver(p.room_id, p.user_id, old_ufrag or "", restart)
        if old_node is not None and old_ufrag is not None:
            await self._drop(old_node, p, old_ufrag)

    # ---------------------------------------------------------------- watching

    async def _watch(self) -> None:
        """Nodes whose process is gone are not placed on; participants on them (or on a node
        whose registry lease ran out) are asked to reconnect."""
        own, view, now = self.node.id, self.node.loads, time.monotonic()
        in_use = {p.node for p in self.participants.values() if p.node and p.node != own}
        listening = await self.node.bus.listening(sorted((in_use | set(view)) - {own}))
        self._silent = {n: self._silent.get(n, 0) + 1 for n, up in listening.items() if not up}
        for n, checks in self._silent.items():
            if checks >= SILENT_CHECKS:
                self._gone.setdefault(n, now)
        lost = {n for n in in_use if n in self._gone or (view and n not in view)}
        self._gone = {n: at for n, at in self._gone.items() if n in view and now - at < FORGET_GONE}
        for p in list(self.participants.values()):
            if p.node in lost:
                await self._restart(p)
        await self._retry_stranded()

    async def _retry_stranded(self) -> None:
        """Participants no node could take are asked for a new connection once one may
        (a node started, or listeners left), at most every ``STRANDED_RETRY`` seconds."""
        loads, now = self._loads(), time.monotonic()
        for p in list(self.participants.values()):
            if p.stranded is None or p.node is not None or now - p.stranded_at < STRANDED_RETRY:
                continue
            if not p.allowed and not any(load.open for load in loads.values()):
                continue
            p.retired.append(p.stranded)
            p.stranded = None
            await self._deliver(p.room_id, p.user_id, "", RtcRestart(publish=p.allowed).wire())
