"""Forwarding: one source per speaker, one bounded queue per listener slot, no re-encoding.

A :class:`Source` receives a speaker's RTP packets from the receiver tap
(:mod:`rooms.rtp_hook`), turns each into one ``av.Packet`` and appends that same object to
the queue of every :class:`ForwardTrack` it feeds. Each ``ForwardTrack`` is the track of one
``RTCRtpSender`` towards one listener; the sender sends the packet as it is. The work per
listener per packet is one deque append plus aiortc's packetization and SRTP.

A listener's queue is bounded and drops its oldest packet when full, so a slow or dead
listener loses its own audio and never delays another or grows memory. A source whose
speaker may not publish (muted, demoted) drops everything it receives: enforcement is here,
on the server, not a client flag.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from rooms.rtp_hook import OPUS_CLOCK_RATE, audio_level, opus_packet
from rooms.speaking import LevelMeter

QUEUE_PACKETS = 16  # 320 ms of 20 ms frames: beyond that, old audio is worth less than new


@dataclass
class Counters:
    """Packets forwarded and dropped in one room since the last flush to Prometheus."""

    forwarded: int = 0
    dropped: int = 0

    def take(self) -> tuple[int, int]:
        counts = (self.forwarded, self.dropped)
        self.forwarded = self.dropped = 0
        return counts


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


@dataclass(eq=False)
class Source:
    """One speaker's incoming audio and the listener slots it feeds."""

    user_id: str
    counters: Counters
    allowed: bool = False
    # Baseline for benchmarks: aiortc decodes, every listener's sender re-encodes.
    reencode: bool = False
    receiving: bool = False
    received: int = 0
    outputs: list[ForwardTrack] = field(default_factory=list)
    meter: LevelMeter = field(default_factory=LevelMeter)
    _last_ts: int | None = None
    _pts: int = 0

    @property
    def live(self) -> bool:
        return self.allowed and self.receiving

    def attach(self, track: ForwardTrack) -> None:
        if track.source is not None:
            track.source.detach(track)
        track.source = self
        self.outputs.append(track)

    def detach(self, track: ForwardTrack) -> None:
        if track.source is self:
            track.source = None
            self.outputs.remove(track)

    def detach_all(self) -> None:
        for track in list(self.outputs):
            self.detach(track)

    def on_rtp(self, packet: RtpPacket) -> None:
        """The receiver tap: the hot path, once per received packet."""
        self.received += 1
        if not packet.payload:
            return
        if not self.allowed:
            self.counters.dropped += 1
            return
        self.meter.add(audio_level(packet))
        pts = self._timeline(packet.timestamp)
        if self.reencode:
            return  # frames come from pump_frames()
        outputs = self.outputs
        if outputs:
            item = opus_packet(packet.payload, pts)
            for track in outputs:
                track.put(item)
            self.counters.forwarded += len(outputs)

    async def pump_frames(self, track: MediaStreamTrack) -> None:
        """Re-encode baseline: fan aiortc's decoded frames out like ``MediaRelay`` does."""
        try:
            while True:
                frame = await track.recv()
                if self.allowed and self.outputs:
                    for output in self.outputs:
                        output.put(frame)  # type: ignore[arg-type]
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

    def __init__(self, counters: Counters, *, reencode: bool = False) -> None:
        self.counters = counters
        self.reencode = reencode
        self.sources: dict[str, Source] = {}
        self.allowed: dict[str, bool] = {}

    def source(self, user_id: str) -> Source:
        """The user's source, created on first use with the current publishing permission."""
        source = self.sources.get(user_id)
        if source is None:
            source = Source(
                user_id,
                self.counters,
                allowed=self.allowed.get(user_id, False),
                reencode=self.reencode,
            )
            self.sources[user_id] = source
        return source

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

    def assign(self, listener_id: str, tracks: list[ForwardTrack]) -> int:
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
        return {s.user_id: s.meter.take() for s in self.sources.values() if s.live}
