"""One room's recorder: the relay's packets in, HLS segments and playlists out.

The relay's tap (``rooms.media.relay.Source.on_rtp``) calls :meth:`Recorder.tap` for every
packet that passed the gate: one append, nothing else on the hot path. Every
``PUMP_SECONDS`` the recorder decodes what arrived (each speaker's own Opus decoder), mixes
it on the relay's 48 kHz timeline, encodes the mix up to ``DELAY_SAMPLES`` ago (room for
jitter) and writes each finished segment, then the playlist that lists it, through the
blob storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from rooms.control.state import Meta
from rooms.recording import playlist
from rooms.recording.encoder import FragmentEncoder, OpusDecoder, Segment, remux_m4a
from rooms.recording.mixer import RATE, Mixer
from rooms.recording.store import RecordingStore
from server.store import REDIS_DOWN
from stories.storage import BlobStorage

PUMP_SECONDS = 0.1
# Room for jitter: a packet more than 500 ms late is dropped from the mix. Generous (a
# stalled sender catches up in a burst), and still well inside the live latency budget.
DELAY_SAMPLES = RATE // 2
INBOX_PACKETS = 3000  # 60 s of one speaker's 20 ms packets: beyond that the pump is stuck


def timeline_now() -> int:
    """Now on the relay's timeline (``Source._timeline``: monotonic seconds x 48 kHz)."""
    return int(time.monotonic() * RATE)


class Recorder:
    def __init__(
        self,
        meta: Meta,
        store: RecordingStore,
        storage: BlobStorage,
        started_at: float,
        encoder: FragmentEncoder | None = None,
    ) -> None:
        self.meta = meta
        self.started_at = started_at  # wall clock, as the room's ended_at
        self.store = store
        self.storage = storage
        self.start = timeline_now()
        self.mixer = Mixer(self.start)
        self.encoder = encoder or FragmentEncoder()
        self.decoders: dict[str, OpusDecoder] = {}
        self.inbox: deque[tuple[str, bytes, int]] = deque(maxlen=INBOX_PACKETS)
        self.durations: list[float] = []
        self.unwritten: list[Segment] = []  # encoded, not stored yet (storage failed)
        self.pumping = asyncio.Lock()
        self.finished = False

    async def open(self) -> None:
        """The live playlist exists from the start (empty until the first segment)."""
        await self._write_playlist(ended=False)

    def tap(self, user_id: str, payload: bytes, pts: int) -> None:
        """The relay hook (``rooms.media.relay.PacketTap``)."""
        self.inbox.append((user_id, payload, pts))

    async def pump(self, until: int | None = None) -> None:
        """Mix and encode up to ``until`` (default: now minus the jitter delay)."""
        async with self.pumping:
            if self.finished:
                return
            self._mix_inbox()
            end = timeline_now() - DELAY_SAMPLES if until is None else until
            await self._write(self.encoder.add(self.mixer.take(end)))

    async def finish(self, ended_at: float | None = None) -> float:
        """Everything up to when the room ended (or now), the last segment, the VOD
        playlist and the download; returns the duration in seconds."""
        until = timeline_now()
        if ended_at is not None:
            until = min(until, self.start + int((ended_at - self.started_at) * RATE))
        await self.pump(until=until)
        async with self.pumping:
            self.finished = True
            await self._write(self.encoder.finish(), ended=True)
            if self.durations:
                await self._write_download()
        return sum(self.durations)

    def _mix_inbox(self) -> None:
        inbox = self.inbox
        while inbox:
            user_id, payload, pts = inbox.popleft()
            decoder = self.decoders.get(user_id)
            if decoder is None:
                decoder = self.decoders[user_id] = OpusDecoder()
            self.mixer.add(pts, decoder.decode(payload))

    async def _write(self, segments: Sequence[Segment], ended: bool = False) -> None:
        """Store the segments, then the playlist listing them. A storage failure leaves
        the rest for the next pump; Redis only mirrors the list (rewritten at the end)."""
        self.unwritten += segments
        room_id = self.meta.id
        if self.unwritten and not self.durations and self.encoder.init is not None:
            await self.storage.put(f"{room_id}/{playlist.INIT}", self.encoder.init)
        wrote = bool(self.unwritten)
        while self.unwritten:
            segment = self.unwritten[0]
            name = playlist.segment_name(len(self.durations))
            await self.storage.put(f"{room_id}/{name}", segment.data)
            self.unwritten.pop(0)
            self.durations.append(segment.seconds)
            with contextlib.suppress(TimeoutError, *REDIS_DOWN):
                await self.store.add_segment(room_id, segment.seconds)
        if wrote or ended:
            await self._write_playlist(ended)

    async def _write_playlist(self, ended: bool) -> None:
        text = playlist.media_playlist(self.durations, ended=ended)
        await self.storage.put(f"{self.meta.id}/{playlist.PLAYLIST}", text.encode())

    async def _write_download(self) -> None:
        room_id = self.meta.id
        names = [playlist.INIT, *map(playlist.segment_name, range(len(self.durations)))]
        paths = [self.storage.path(f"{room_id}/{name}") for name in names]
        data = await asyncio.to_thread(_remux_files, paths)
        await self.storage.put(f"{room_id}/{playlist.DOWNLOAD}", data)


def _remux_files(paths: list[Path]) -> bytes:
    init, *segments = (p.read_bytes() for p in paths)
    return remux_m4a(init, segments)
