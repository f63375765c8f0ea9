"""Room events: one pub/sub channel per room, one subscriber per process for all local rooms.

An event (``rooms.control.events``) travels on its room's channel in an envelope
``{"to": user_id | null, "event": {...}}``; ``to`` addresses one participant
(``invite.received``, ``removed``, ``actions``). The hub reads each one back into its model
once per process, encodes it once (``Outgoing``: its text and its whole WebSocket frame) and
hands the same object to each of the room's local sockets, which write the same bytes.

State changes publish their events inside the same MULTI/EXEC as the writes, so every
process sees events in commit order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from rooms.control.events import EVENT, MODERATORS, Event, ServerEvent, encode
from server import metrics
from server.background import check_cancelled, stop
from server.store import REDIS_DOWN, Keys, budget_left
from server.wsframes import text_frame

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message as every socket sends it: its text, and its whole WebSocket text frame."""

    text: str
    frame: bytes


def outgoing(text: str) -> Outgoing:
    """Encode a message for sending (counted: a room event is encoded once per process)."""
    metrics.ROOM_FRAMES.inc()
    return Outgoing(text, text_frame(text.encode()))


def channel(keys: Keys, room_id: str) -> str:
    return keys("room", "{" + room_id + "}", "events")


def envelope(event: Event, to: str | None = None) -> str:
    return encode({"to": to, "event": event.wire()})


async def publish(redis: Redis, keys: Keys, room_id: str, event: Event | dict[str, Any]) -> None:
    """Send ``event`` to every participant of the room, on every server process.

    For events that change no state (``speaking``, ``reaction``). Events that go with a
    state change are queued on the transaction instead (``queue``). The media relay hands
    its events over as wire data: they are checked against their model here.
    """
    typed = event if isinstance(event, Event) else EVENT.validate_python(event)
    await redis.publish(channel(keys, room_id), envelope(typed))


def queue(pipe: Pipeline, keys: Keys, room_id: str, event: Event, to: str | None = None) -> None:
    """Publish ``event`` as part of a MULTI/EXEC transaction."""
    pipe.publish(channel(keys, room_id), envelope(event, to))


class Listener(Protocol):
    """A local participant connection."""

    room_id: str
    user_id: str
    moderator: bool  # host or co-host: gets the events addressed to ``MODERATORS``

    def on_event(self, event: ServerEvent, out: Outgoing) -> None:
        """Called for each event addressed to this participant (must not block)."""

    def send_ready(self, out: Outgoing) -> None:
        """Send a message if the participant has had its welcome (else drop it)."""

    async def resync(self) -> None:
        """Events may have been lost: send the participant the whole state again."""


class Hub:
    """Subscribes to the channels of rooms that have local connections and fans events out.

    ``attach`` returns once Redis has processed the subscription (a PING with a unique
    payload sent after SUBSCRIBE on the same connection has come back), so a connection
    misses no event published after ``attach`` returned.
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        on_room_event: Callable[[str, ServerEvent], None],
        on_recovered: Callable[[], None],
        control_channel: str,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.on_room_event = on_room_event
        # Called after the pub/sub connection came back: local sockets need the state again.
        self.on_recovered = on_recovered
        self._interrupted = False
        self._recovery: asyncio.Task[None] | None = None
        self.rooms: dict[str, set[Listener]] = {}
        self._users: dict[tuple[str, str], set[Listener]] = {}  # (room, user) -> sockets
        self._control = control_channel
        self._room_of: dict[str, str] = {}  # channel -> room id
        self._lock = asyncio.Lock()
        self._pongs: dict[str, asyncio.Future[None]] = {}
        self._pubsub = redis.pubsub()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # A subscription of its own keeps the pub/sub connection open when no room is local.
        await self._pubsub.subscribe(self._control)
        self._task = asyncio.create_task(self._run(), name="rooms-hub")

    async def stop(self) -> None:
        await stop(self._recovery)
        await stop(self._task)
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    @property
    def connections(self) -> int:
        return sum(len(s) for s in self.rooms.values())

    async def attach(self, listener: Listener) -> None:
        """Deliver the room's events to ``listener`` from now on (raises if Redis is down)."""
        async with self._lock:
            room = listener.room_id
            listeners = self.rooms.get(room)
            if listeners is None:
                ch = channel(self.keys, room)
                self._room_of[ch] = room
                listeners = self.rooms[room] = set()
                try:
                    await self._pubsub.subscribe(ch)
                    await self._barrier()
                except BaseException:
                    del self.rooms[room]
                    self._room_of.pop(ch, None)
                    raise
            listeners.add(listener)
            self._users.setdefault((room, listener.user_id), set()).add(listener)
            self._update_gauges()

    async def detach(self, listener: Listener) -> None:
        async with self._lock:
            room = listener.room_id
            listeners = self.rooms.get(room)
            if listeners is None or listener not in listeners:
                return
            listeners.discard(listener)
            mine = self._users.get((room, listener.user_id), set())
            mine.discard(listener)
            if not mine:
                self._users.pop((room, listener.user_id), None)
            if not listeners:
                del self.rooms[room]
                ch = channel(self.keys, room)
                self._room_of.pop(ch, None)
                with contextlib.suppress(*REDIS_DOWN):
                    await self._pubsub.unsubscribe(ch)
            self._update_gauges()

    def _update_gauges(self) -> None:
        metrics.LIVE_ROOMS.set(len(self.rooms))
        metrics.PARTICIPANTS.set(self.connections)

    async def _barrier(self) -> None:
        """Wait until Redis has processed every command sent so far on the pub/sub connection."""
        token = secrets.token_hex(8)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[token] = fut
        try:
            await self._pubsub.ping(token)
            # Within the request's time for Redis when a join waits on it.
            async with asyncio.timeout(budget_left(5.0)):
                await fut
        finally:
            self._pongs.pop(token, None)

    async def _run(self) -> None:
        while True:
            check_cancelled()
            try:
                response = await self._pubsub.parse_response(block=False, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, *REDIS_DOWN) as exc:
                if not self._interrupted:
                    log.warning("rooms.hub.redis_lost", error=repr(exc))
                self._interrupted = True
                await asyncio.sleep(0.5)
                continue
            except Exception:  # e.g. an error reply: the subscriber must keep running
                log.exception("rooms.hub.read_failed")
                await asyncio.sleep(0.5)
                continue
            if self._interrupted:
                # Reconnected (redis-py resubscribed): events published meanwhile are lost.
                self._interrupted = False
                self._recovery = asyncio.create_task(self._recover())
            try:
                await self._dispatch(response)
            except Exception:  # one bad event must not stop every room on this process
                log.exception("rooms.hub.event_failed")

    async def _recover(self) -> None:
        try:
            await self._barrier()
        except (TimeoutError, *REDIS_DOWN):
            return  # down again: the next reconnection recovers
        log.info("rooms.hub.redis_recovered")
        self.on_recovered()

    async def _dispatch(self, response: Any) -> None:
        if response is None:
            return
        if isinstance(response, str | bytes):
            # RESP3 answers PING with a plain reply (RESP2 with a "pong" message);
            # redis-py's handle_message misreads the decoded form.
            self._pong(response)
            return
        msg = await self._pubsub.handle_message(response)
        if msg is not None:
            self._handle(msg)

    def _pong(self, data: str | bytes) -> None:
        token = data.decode() if isinstance(data, bytes) else data
        fut = self._pongs.get(token)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _handle(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "pong":
            self._pong(msg["data"])
            return
        if msg["type"] != "message":
            return
        room = self._room_of.get(msg["channel"])
        if room is None:
            return
        data = json.loads(msg["data"])
        event, to = EVENT.validate_python(data["event"]), data.get("to")
        self.on_room_event(room, event)
        out = outgoing(encode(data["event"]))
        for listener in self._audience(room, to):
            listener.on_event(event, out)

    def _audience(self, room: str, to: str | None) -> list[Listener]:
        """The local sockets an event addressed ``to`` goes to (without a look at every
        socket of a large room for an event to one participant)."""
        if to is None:
            return list(self.rooms.get(room, ()))
        if to == MODERATORS:
            return [s for s in self.rooms.get(room, ()) if s.moderator]
        return list(self._users.get((room, to), ()))
