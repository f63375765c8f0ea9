"""The room WebSocket: ``/v1/rooms/{room_id}/ws`` (protocol in docs/protocol.md).

A connection authenticates and is admitted before ``accept()`` (refusals are plain HTTP
errors), receives a ``welcome`` with the full state, then events. Every message is
size-capped, rate-limited, validated, and checked against the sender's current role.
Any task may send at any time: a message is written at once, as a frame built once for
every socket (``server.wsframes``), when nothing is waiting before it and the socket can take
it; otherwise it waits in the socket's bounded outbox for its writer task.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from rooms.control import actions, hub, messages, presenters, rules
from rooms.control.events import (
    Error,
    Event,
    ParticipantUpdated,
    Pong,
    Reaction,
    Removed,
    Replaced,
    RoomEnded,
    ServerEvent,
    Welcome,
    encode,
)
from rooms.control.hub import Outgoing, outgoing
from rooms.control.messages import Message, Mute, React, RtcDescription, RtcIce, Targeted, wire
from rooms.control.rules import Refused
from rooms.control.service import ROOMS, RoomsService
from rooms.control.state import Meta, Record
from rooms.control.store import checked_id
from rooms.media.port import MediaService
from server import metrics
from server.background import check_cancelled, stop
from server.errors import DomainError, Forbidden, ServiceUnavailable, ValidationFailed
from server.store import REDIS_DOWN, request_budget
from server.ws import authenticate_ws, refuse
from server.wsframes import frame_writer

log = structlog.get_logger(__name__)
PROTOCOL = 1

# Close codes (docs/protocol.md); uvicorn itself closes with 1012 when shutting down.
CLOSE_ENDED = 1000  # the room ended
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011  # the server failed; reconnect
CLOSE_SLOW = 1013  # the client did not read its messages fast enough
CLOSE_REMOVED = 4403
CLOSE_REPLACED = 4409  # the same user connected again elsewhere
CONNECTED = WebSocketState.CONNECTED
PONG = encode(Pong())  # encoded once; each socket's own messages get their frame per send


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


class Serial:
    """Runs coroutines one after another, in submission order, off the caller's path."""

    def __init__(self) -> None:
        self._jobs: deque[Callable[[], Awaitable[None]]] = deque()
        self._task: asyncio.Task[None] | None = None

    def submit(self, job: Callable[[], Awaitable[None]]) -> None:
        self._jobs.append(job)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self._jobs:
            job = self._jobs.popleft()
            try:
                await job()
            except Exception:
                log.exception("rooms.media_call_failed")
            check_cancelled()

    async def drain(self, within: float = 10.0) -> None:
        """Wait for the calls submitted so far; give up on them after ``within`` seconds."""
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=within)
            await stop(self._task)


class Connection:
    """One participant's socket: an outbox drained by a writer task, and the reader."""

    def __init__(self, ws: WebSocket, service: RoomsService, room_id: str, user_id: str) -> None:
        self.ws = ws
        self.svc = service
        self.room_id = room_id
        self.user_id = user_id
        self.conn_id = secrets.token_hex(8)
        self.entry = f"{room_id}|{user_id}|{self.conn_id}"
        self.ready = False  # welcomed: events go out (until then, or during a resync, they wait)
        self.moderator = False  # host or co-host, as of the last welcome or own update
        self.ended_by: str | None = None  # removed, ended, replaced
        self._early: list[tuple[ServerEvent, Outgoing]] = []
        self._out: deque[Outgoing | Close] = deque()
        self._frames = frame_writer(ws.scope)  # None: only the ASGI send (another server)
        self._sending = False  # the writer task is sending the message it took
        self._wake = asyncio.Event()
        self._closing = False
        self._publishing: bool | None = None
        self._media_calls = Serial()
        self._writer: asyncio.Task[None] | None = None
        self._resync: asyncio.Task[None] | None = None
        self._final = Close(CLOSE_ENDED, "")  # how release() closes a socket still open

    @property
    def media(self) -> MediaService | None:
        return self.svc.media

    # ---- outgoing ----

    def on_event(self, event: ServerEvent, out: Outgoing) -> None:
        """A room event from the hub (the hub's task: never blocks)."""
        if not self.ready:
            self._early.append((event, out))  # sent after the welcome
            return
        if isinstance(event, Replaced):
            if event.conn == self.conn_id:
                self.ended_by = "replaced"
                self.close(CLOSE_REPLACED, "replaced by a newer connection")
            return
        self.deliver(out)
        if isinstance(event, ParticipantUpdated) and event.participant.user_id == self.user_id:
            p = event.participant
            self.set_publishing(p.role in rules.STAGE and not p.muted)
            self.set_moderator(p.role in rules.MODERATORS)
        elif isinstance(event, Removed):
            self.ended_by = "removed"
            self.close(CLOSE_REMOVED, "removed from the room")
        elif isinstance(event, RoomEnded):
            self.ended_by = "ended"
            self.close(CLOSE_ENDED, "the room ended")

    def send_ready(self, out: Outgoing) -> None:
        if self.ready:
            self.deliver(out)

    def send_text(self, text: str) -> None:
        self.deliver(outgoing(text))

    def deliver(self, out: Outgoing) -> None:
        """Write ``out`` now if nothing waits before it and the socket takes it, else queue it."""
        if self._closing:
            return
        frames = self._frames
        if frames is not None and not self._out and not self._sending and frames.write(out.frame):
            return
        if len(self._out) >= self.svc.settings.room_ws_queue_max:
            self._out.clear()
            self.close(CLOSE_SLOW, "too slow to read room events")
            return
        self._out.append(out)
        self._wake.set()

    async def send(self, message: dict[str, Any]) -> None:
        """``SendJson`` for the media relay (events built with their models): any task."""
        self.send_text(encode(message))

    def send_event(self, event: Event) -> None:
        self.send_text(encode(event))

    def close(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        self._out.append(Close(code, reason))
        self._wake.set()

    async def open(self, publishing: bool) -> None:
        """Send the welcome and start delivering events (the snapshot is not kept)."""
        text, me = await welcome(self.svc, self.room_id, self.user_id)
        self.moderator = is_moderator(me)
        self.start(text, publishing)

    def start(self, welcome: str, publishing: bool) -> None:
        self.send_text(welcome)
        self.ready = True
        self.set_publishing(publishing)
        # Events since the subscription (or the resync began): some may predate the snapshot,
        # but each carries a whole participant or room and they arrive in commit order, so
        # replaying converges.
        early, self._early = self._early, []
        for event, out in early:
            self.on_event(event, out)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name=f"room-ws-{self.conn_id}")

    async def _write(self) -> None:
        try:
            while True:
                while not self._out:
                    self._wake.clear()
                    await self._wake.wait()
                item = self._out.popleft()
                if isinstance(item, Close):
                    await self.ws.close(item.code, item.reason)
                    return
                self._sending = True
                if self._frames is None or not self._frames.write(item.frame):
                    await self.ws.send_text(item.text)  # waits while the transport is full
                self._sending = False
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the peer is gone; the reader notices too
        except Exception:
            # Nothing more can be sent: close, so that the reader ends and the connection
            # is released like any other.
            log.exception("rooms.ws.write_failed", room=self.room_id, user=self.user_id)
            self._closing = True
            with contextlib.suppress(Exception):
                await self.ws.close(CLOSE_INTERNAL, "internal error: reconnect")

    def set_publishing(self, allowed: bool) -> None:
        if allowed == self._publishing or self._closing:
            return
        self._publishing = allowed
        media = self.media
        if media is not None:
            room, user = self.room_id, self.user_id
            self._media_calls.submit(lambda: media.set_publishing(room, user, allowed))

    def set_moderator(self, moderator: bool) -> None:
        """Became or stopped being host or co-host: in a large room, what the participant is
        told of listeners changes (all of them, or counts), so it gets a new welcome (not in
        a small room, where everyone is told everything: a welcome restarts the audio)."""
        if moderator != self.moderator and not self._closing:
            self.moderator = moderator
            if self.svc.large(self.room_id):
                self._resync = asyncio.create_task(self.resync())

    async def resync(self, attempts: int = 60, pause: float = 0.5) -> None:
        """Send the whole state again (a second ``welcome``; events meanwhile wait and follow
        it): Redis came back after an outage and events may have been lost, or the
        participant's view changed. If its place is gone, the client reconnects. While the
        store still fails (the watchdog may not have seen it back yet), try again."""
        if not self.ready or self._closing:
            return  # not welcomed yet (the welcome will be new), or resyncing already
        self.ready = False
        for _ in range(attempts):
            if self._closing:
                return
            try:
                with request_budget(self.svc.settings.redis_request_timeout):
                    text, me = await welcome(self.svc, self.room_id, self.user_id)
                break
            except (TimeoutError, *REDIS_DOWN):
                await asyncio.sleep(pause)
            except DomainError:  # the room is gone
                me = None
                break
        else:
            me = None
        if me is None or me.conn != self.conn_id:
            self.close(CLOSE_SLOW, "the room changed while the server was cut off: reconnect")
            return
        self.moderator = is_moderator(me)
        self.start(text, me.member.may_publish)

    # ---- incoming ----

    async def read(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if self._closing:
                continue
            text = msg.get("text")
            if text is None:
                binary = ValidationFailed("send JSON in text frames", code="invalid_message")
                self.send_event(self.answer(binary, None))
                continue
            await self.handle(text)

    async def handle(self, text: str) -> None:
        settings = self.svc.settings
        if len(text.encode()) > settings.ws_max_message_bytes:
            self.close(CLOSE_TOO_BIG, "message too large")
            return
        try:
            data, bad = messages.parse(text), None
        except DomainError as exc:
            data, bad = None, exc
        ref = data.get("ref") if isinstance(data, dict) else None
        ref = ref[:64] if isinstance(ref, str) else None
        try:
            with request_budget(settings.redis_request_timeout):
                # Every message counts, malformed ones too.
                await self.svc.limiter.hit(settings.rate_ws_message, "room_ws", self.user_id)
                message = checked(data, bad)
                metrics.WS_MESSAGES.labels(message.type).inc()
                await self.dispatch(message)
        except Exception as exc:
            self.send_event(self.answer(exc, ref))

    def answer(self, exc: Exception, ref: str | None) -> Error:
        """The one mapping of a failed message to the ``error`` event that answers it."""
        if isinstance(exc, DomainError):
            return Error(code=exc.code, message=exc.message, ref=ref)
        if isinstance(exc, (TimeoutError, *REDIS_DOWN)):
            message = "the data store is unreachable; retry shortly"
            return Error(code="store_unavailable", message=message, ref=ref)
        log.error("rooms.ws.message_failed", room=self.room_id, user=self.user_id, exc_info=exc)
        return Error(code="internal", message="the server could not handle this message", ref=ref)

    async def dispatch(self, message: Message) -> None:
        kind = message.type
        if kind == "ping":
            self.send_text(PONG)
        elif isinstance(message, RtcDescription | RtcIce):
            media = self.media
            if media is None:
                raise Refused("media_unavailable", "audio is not available on this server")
            await self.svc.store.present(self.room_id, self.user_id)
            await media.signal(self.room_id, self.user_id, wire(message), self.send)
        elif isinstance(message, React):
            s = self.svc
            await s.limiter.hit(s.settings.rate_room_reaction, "room_react", self.user_id)
            await s.store.present(self.room_id, self.user_id)
            event = Reaction(user_id=self.user_id, emoji=message.emoji)
            await hub.publish(s.redis, s.keys, self.room_id, event)
        else:
            target: str | None = None
            if isinstance(message, Targeted):
                target = message.user_id
            elif isinstance(message, Mute):
                target = message.user_id or self.user_id
            await self.svc.store.act(self.room_id, self.user_id, kind, target)

    # ---- life ----

    async def serve(self, publishing: bool) -> None:
        """Accept, welcome, read until the socket closes. Whatever ends the connection (the
        peer, the store, a bug), it is released: detached, its grace period started."""
        try:
            await self.ws.accept()
            with request_budget(self.svc.settings.redis_request_timeout):
                await self.open(publishing)
            await self.read()
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the peer is gone
        except (DomainError, TimeoutError, *REDIS_DOWN) as exc:
            log.warning("rooms.ws.welcome_failed", error=repr(exc))
            self._final = Close(CLOSE_SLOW, "the data store is unreachable; reconnect shortly")
        except Exception:
            log.exception("rooms.ws.failed", room=self.room_id, user=self.user_id)
            self._final = Close(CLOSE_INTERNAL, "internal error: reconnect")
        finally:
            await self.release()

    async def release(self) -> None:
        """Stop writing, close the socket, leave the hub and start the grace period; each
        step runs whatever happened to the ones before it."""
        svc = self.svc
        steps = (self._stop_writing, self._close_socket, lambda: svc.hub.detach(self))
        cancelled: asyncio.CancelledError | None = None
        for step in (*steps, lambda: svc.gone(self)):
            try:
                await step()
            except asyncio.CancelledError as exc:  # finish releasing, then stop
                cancelled = exc
            except Exception:
                log.exception("rooms.ws.release_failed", room=self.room_id, user=self.user_id)
        if cancelled is not None:
            raise cancelled

    async def _stop_writing(self) -> None:
        self._closing = True
        await stop(self._resync)
        await stop(self._writer)
        await self._media_calls.drain()

    async def _close_socket(self) -> None:
        ws = self.ws
        if CONNECTED == ws.application_state == ws.client_state:
            await ws.close(self._final.code, self._final.reason)


def checked(data: Any, bad: DomainError | None) -> Message:
    """The validated message of a frame (``bad``: why the frame is not even JSON)."""
    try:
        if bad is not None:
            raise bad
        return messages.validate(data)
    except DomainError:
        metrics.WS_MESSAGES.labels("invalid").inc()
        raise


async def welcome(svc: RoomsService, room_id: str, user: str) -> tuple[str, Record | None]:
    """The welcome message, encoded, and the user's own record (a function of its own, so
    that the snapshot is not kept alive for the whole connection by the handler's frame)."""
    meta = await svc.store.require(room_id)
    participants = await svc.store.snapshot(room_id, user)
    me = next((p for p in participants if p.user_id == user), None)
    if meta.state != "live":
        me = None
    text = encode(
        Welcome(
            protocol=PROTOCOL,
            you=user,
            room=await svc.room(meta),
            participants=[presenters.participant(p) for p in participants],
            ice_servers=svc.settings.ice_servers,
            reactions=list(rules.REACTIONS),
            actions=presenters.actions(actions_of(svc, meta, me, participants)),
        )
    )
    return text, me


def is_moderator(me: Record | None) -> bool:
    return me is not None and me.member.role in rules.MODERATORS


def actions_of(
    svc: RoomsService, meta: Meta, me: Record | None, participants: list[Record]
) -> actions.Allowed:
    """What the user may do, as of the snapshot (events bring every later change)."""
    if me is None:
        return actions.NOTHING
    stage = {p.user_id: p.member.role for p in participants if p.member.on_stage}
    return actions.allowed(me.member, stage, svc.store.caps, meta.speaker_policy, meta.recorded)


async def room_socket(ws: WebSocket) -> None:
    user = await authenticate_ws(ws)
    if user is None:
        return
    svc = ROOMS.of(ws)
    conn = Connection(ws, svc, ws.path_params["room_id"], user)
    with request_budget(svc.settings.redis_request_timeout):
        record = await admit(conn)
    if record is not None:
        conn.moderator = is_moderator(record)  # from now on: events for moderators too
        await conn.serve(record.member.may_publish)


async def admit(conn: Connection) -> Record | None:
    """Check and record the join before the handshake; refuse it (an HTTP error) if need be."""
    svc, room_id, user = conn.svc, conn.room_id, conn.user_id
    try:
        checked_id(room_id)
        await svc.limiter.hit(svc.settings.rate_room_join, "room_join", user)
        meta = await svc.store.require(room_id)
        if meta.host != user and await svc.graph.has_blocked(meta.host, user):
            raise Forbidden("the host has blocked you", code="blocked")
        await svc.hub.attach(conn)
        svc.local.add(conn.entry)
        try:
            return await svc.store.join(room_id, user, conn.conn_id, svc.node)
        except BaseException as exc:
            if isinstance(exc, DomainError):  # refused: nothing was recorded
                svc.local.discard(conn.entry)
            else:  # it may have been recorded even so (a reply lost in an outage)
                await svc.settle(conn)
            await svc.hub.detach(conn)
            raise
    except DomainError as exc:
        await refuse(conn.ws, exc)
    except (TimeoutError, *REDIS_DOWN):
        await refuse(conn.ws, ServiceUnavailable())
    return None


route = WebSocketRoute("/v1/rooms/{room_id}/ws", room_socket)
