"""Forwarding: one source per speaker feeding listener slots, no re-encoding.

A :class:`Source` receives a speaker's RTP packets from the receiver tap
(:mod:`rooms.media.aiortc_seam`) and hands each to the slots it feeds, in one of three modes:

* ``fast`` (the relay): the slots are :class:`rooms.media.fanout.Output` streams and the packet
  goes out to all of them in one synchronous pass (:class:`rooms.media.fanout.FanOut`): header,
  SRTP, ``sendto`` per listener, nothing queued;
* ``stock`` (benchmark baseline): the slots are :class:`ForwardTrack` queues read by aiortc's
  own ``RTCRtpSender`` (one ``av.Packet`` per received packet, shared by every slot; a task,
  a future, packetization and SRTP per listener per packet). A listener's queue is bounded
  and drops its oldest packet when full;
* ``reencode`` (benchmark baseline): aiortc decodes once and every listener's sender
  re-encodes, aiortc ``MediaRelay``'s cost model.

A source whose speaker may not publish (muted, demoted) drops everything it receives:
enforcement is here, on the server, not a client flag.

In a room served by several nodes, the origin's local sources also send each packet to the
room's edges (``trunk``, :mod:`rooms.media.trunk`), and an edge's sources are *remote*: fed
by the trunk (``on_trunk``), gated too (a mute is applied on every node at once), never
counted for speaking (the origin does that).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from rooms.media.aiortc_seam import OPUS_CLOCK_RATE, SILENCE_LEVEL, opus_packet
from rooms.media.fanout import Counters, FanOut, Output
from rooms.media.speaking import LevelMeter
from rooms.media.trunk import TrunkOut

QUEUE_PACKETS = 16  # 320 ms of 20 ms frames: beyond that, old audio is worth less than new

RelayMode = Literal["fast", "stock", "reencode"]

# The recording hook (rooms.recording): (user id, Opus payload, position on the 48 kHz
# timeline), called for every packet that passed the gate, so muted speakers never reach it.
PacketTap = Callable[[str, bytes, int], None]


class ForwardTrack(MediaStreamTrack):
    """One listener slot: the track an ``RTCRtpSender`` reads packets (or frames) from."""

    kind = "audio"

    def __init__(self, counters: Counters, maxlen: int = QUEUE_PACKETS) -> None:
        super().__init__()
        self.counters = counters
        self.source: Source | None = None
        self._queue: deque[av.Packet | av.AudioFrame] = deque(maxlen=maxlen)
        self._waiter: asyncio.Future[None] | None = None
        self._started = False

    @property
    def queued(self) -> int:
        # Not __len__: aiortc tests tracks for truth ("track or kind").
        return len(self._queue)

    def put(self, item: av.Packet | av.AudioFrame) -> None:
        queue = self._queue
        if len(queue) == queue.maxlen:
            self.counters.dropped += 1  # the deque drops the oldest on append
        queue.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> av.Packet | av.AudioFrame:
        if not self._started:
            # Whatever queued before the sender started (ICE, DTLS) is stale: start live.
            self._started = True
            self._queue.clear()
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._queue.popleft()

    def stop(self) -> None:
        if self.source is not None:
            self.source.detach(self)
        self._queue.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        super().stop()


Slot = ForwardTrack | Output


@dataclass(eq=False)
class Source:
    """One speaker's incoming audio and the listener slots it feeds."""

    user_id: str
    counters: Counters
    allowed: bool = False
    mode: RelayMode = "fast"
    fanout: FanOut | None = None  # the process's fan-out, in fast mode
    receiving: bool = False
    received: int = 0
    outputs: list[Slot] = field(default_factory=list)
    meter: LevelMeter = field(default_factory=LevelMeter)
    # Multi-node rooms: a local speaker's stream to the edges (``trunk`` is the room's, set
    # on its origin), or a speaker of another node's (``remote``: fed by the trunk).
    trunk: TrunkOut | None = None
    trunk_ssrc: int = field(default_factory=lambda: random.randrange(1, 1 << 32))
    trunk_seq: int = field(default_factory=lambda: random.randrange(1 << 15))
    remote: bool = False
    tap: PacketTap | None = None  # the room's recorder, when the room is recorded
    _last_ts: int | None = None
    _pts: int = 0

    @property
    def live(self) -> bool:
        return self.allowed and self.receiving

    @property
    def reencode(self) -> bool:
        return self.mode == "reencode"

    def attach(self, slot: Slot) -> None:
        if slot.source is not None:
            slot.source.detach(slot)
        slot.source = self
        if isinstance(slot, Output):
            slot.rebase = True  # the slot's timeline continues from where it was
        self.outputs.append(slot)

    def detach(self, slot: Slot) -> None:
        if slot.source is self:
            slot.source = None
            self.outputs.remove(slot)

    def detach_all(self) -> None:
        for slot in list(self.outputs):
            self.detach(slot)

    def on_rtp(self, packet: RtpPacket) -> None:
        """The receiver tap: the hot path, once per received packet."""
        self.received += 1
        if not packet.payload:
            return
        if not self.allowed:
            self.counters.dropped += 1
            return
        extension = packet.extensions.audio_level
        level = SILENCE_LEVEL if extension is None else int(extension[1])
        self.meter.add(level)
        pts = self._timeline(packet.timestamp)
        # RFC 6464 byte as received: voice activity flag and level.
        level_byte = level if extension is None or not extension[0] else 0x80 | level
        marker = 0x80 if packet.marker else 0
        trunk = self.trunk
        if trunk is not None:  # the origin: once to every edge node, before any listener
            trunk.forward(self, packet.payload, level_byte, marker, pts)
        if self.tap is not None:  # the room's recorder: local speakers only, on the origin
            self.tap(self.user_id, packet.payload, pts)
        self._emit(packet.payload, level_byte, marker, pts)

    def on_trunk(self, payload: bytes, level_byte: int, marker: int, timestamp: int) -> None:
        """A packet of this (remote) speaker from the room's origin: the edge's hot path."""
        self.received += 1
        if not self.allowed:  # a mute seen here before the origin's gate took effect
            self.counters.dropped += 1
            return
        self._emit(payload, level_byte, marker, self._timeline(timestamp))

    def _emit(self, payload: bytes, level_byte: int, marker: int, pts: int) -> None:
        outputs = self.outputs
        if not outputs or self.mode == "reencode":
            return  # re-encode: frames come from pump_frames()
        if self.fanout is not None:
            # A fast room's slots are all Outputs (see RoomRelay).
            fast = cast(list[Output], outputs)
            self.fanout.push(fast, payload, level_byte, marker, pts, self.counters)
            return
        item = opus_packet(payload, pts)
        for track in cast(list[ForwardTrack], outputs):
            track.put(item)
        self.counters.forwarded += len(outputs)

    async def pump_frames(self, track: MediaStreamTrack) -> None:
        """Re-encode baseline: fan aiortc's decoded frames out like ``MediaRelay`` does."""
        try:
            while True:
                frame = await track.recv()
                if self.allowed and self.outputs:
                    for output in cast(list[ForwardTrack], self.outputs):
                        output.put(cast(av.AudioFrame, frame))
                    self.counters.forwarded += len(self.outputs)
        except MediaStreamError:
            return

    def _timeline(self, timestamp: int) -> int:
        """The packet's presentation time on a clock shared by every source of the process.

        A listener slot may carry one speaker, then another: placing every source on the
        same monotonic 48 kHz timeline makes such a switch look like a pause in one stream
        (RTP timestamps jump forward) instead of a jump backwards.
        """
        if self._last_ts is None:
            self._pts = int(time.monotonic() * OPUS_CLOCK_RATE)
        else:
            # Unwrap the 32-bit RTP timestamp; late packets give a small negative step.
            self._pts += ((timestamp - self._last_ts + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        self._last_ts = timestamp
        return self._pts


class RoomRelay:
    """The sources of one room and which listener slot carries which source."""

    def __init__(
        self, counters: Counters, *, mode: RelayMode = "fast", fanout: FanOut | None = None
    ) -> None:
        self.counters = counters
        self.mode = mode
        self.fanout = fanout if mode == "fast" else None
        self.sources: dict[str, Source] = {}
        self.allowed: dict[str, bool] = {}
        self.trunk: TrunkOut | None = None
        self.tap: PacketTap | None = None

    def set_trunk(self, trunk: TrunkOut | None) -> None:
        """The room's trunk to its edges (on its origin): every local source feeds it."""
        self.trunk = trunk
        for source in self.sources.values():
            if not source.remote:
                source.trunk = trunk

    def set_tap(self, tap: PacketTap | None) -> None:
        """Hand every gated packet of every source (now and later) to ``tap``."""
        self.tap = tap
        for source in self.sources.values():
            source.tap = tap

    def source(self, user_id: str) -> Source:
        """The user's source, created on first use with the current publishing permission."""
        source = self.sources.get(user_id)
        if source is None:
            source = Source(
                user_id,
                self.counters,
                allowed=self.allowed.get(user_id, False),
                mode=self.mode,
                fanout=self.fanout,
                trunk=self.trunk,
                tap=self.tap,
            )
            self.sources[user_id] = source
        return source

    def remote_source(self, user_id: str, ssrc: int) -> Source:
        """The source of a speaker of the room's origin, as its trunk stream ``ssrc``
        (another stream of the same user replaces it: they reconnected). The origin gates
        it; here it is gated too as soon as a mute is heard of."""
        source = self.sources.get(user_id)
        if source is not None and source.remote and source.trunk_ssrc == ssrc:
            return source
        self.drop_source(user_id)
        source = Source(
            user_id,
            self.counters,
            allowed=self.allowed.get(user_id, True),
            mode=self.mode,
            fanout=self.fanout,
            trunk_ssrc=ssrc,
            remote=True,
        )
        self.sources[user_id] = source
        return source

    def trunk_sources(self) -> dict[int, str]:
        """Which user each live local source's trunk stream carries: what the edges mirror."""
        return {s.trunk_ssrc: s.user_id for s in self.sources.values() if s.live and not s.remote}

    def set_allowed(self, user_id: str, allowed: bool) -> None:
        """Gate a user's audio; takes effect on the very next packet."""
        self.allowed[user_id] = allowed
        source = self.sources.get(user_id)
        if source is not None:
            source.allowed = allowed

    def drop_source(self, user_id: str) -> None:
        """The user's connection is gone: their source stops feeding anyone."""
        source = self.sources.pop(user_id, None)
        if source is not None:
            source.detach_all()

    def live_sources(self) -> list[Source]:
        return [s for s in self.sources.values() if s.live]

    def assign(self, listener_id: str, tracks: Sequence[Slot]) -> int:
        """Point a listener's slots at every live source but their own.

        Slots of sources that are no longer live are freed and reused before new slots are
        asked for. Returns how many more slots the listener needs (the caller adds senders
        and renegotiates, then calls again).
        """
        wanted = [s for s in self.live_sources() if s.user_id != listener_id]
        for track in tracks:
            if track.source is not None and track.source not in wanted:
                track.source.detach(track)
        have = {track.source for track in tracks if track.source is not None}
        free = [track for track in tracks if track.source is None]
        missing = 0
        for source in wanted:
            if source in have:
                continue
            if free:
                source.attach(free.pop(0))
            else:
                missing += 1
        return missing

    def speaking_windows(self) -> dict[str, tuple[int, int]]:
        """Each publishing source's level window, for the speaking detector."""
        return {s.user_id: s.meter.take() for s in self.sources.values() if s.live and not s.remote}
