"""Audio codecs of a recording (PyAV): each speaker's Opus decoded once, the room's mix
encoded once into AAC-LC in fragmented MP4, and the replay's download remuxed from it.

The mix goes into one long-lived MP4 muxer (``empty_moov``, ``default_base_moof``) that
cuts a fragment every ~2 s; the bytes it writes are split into the initialization section
(``ftyp`` + ``moov``) and one ``moof`` + ``mdat`` pair per HLS segment. Why AAC-LC in
fMP4 rather than Opus or MPEG-TS: docs/recording.md.
"""

from __future__ import annotations

import fractions
import io
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from rooms.recording.mixer import RATE
from rooms.recording.playlist import DOWNLOAD

AAC_FRAME = 1024
BIT_RATE = 64_000
FRAGMENT_MICROSECONDS = 2_000_000
MP4_OPTIONS = {"movflags": "empty_moov+default_base_moof", "frag_duration": "2000000"}


class OpusDecoder:
    """One speaker's Opus packets -> mono float32 PCM at 48 kHz."""

    def __init__(self) -> None:
        self._ctx = av.CodecContext.create("libopus", "r")
        self._ctx.sample_rate = RATE
        self._ctx.layout = "mono"

    def decode(self, payload: bytes) -> np.ndarray:
        """The audio of one Opus packet (empty if the packet is corrupt)."""
        try:
            frames = self._ctx.decode(av.Packet(payload))
        except av.FFmpegError:
            return np.zeros(0, dtype=np.float32)
        parts = [_mono(frame) for frame in frames]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _mono(frame: av.AudioFrame) -> np.ndarray:
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if channels > 1:  # planar: one row per channel; packed: channels interleaved
        rows = data if frame.format.is_planar else data.reshape(-1, channels).T
        data = rows.mean(axis=0)
    data = data.reshape(-1)
    if data.dtype == np.int16:
        return data.astype(np.float32) * np.float32(1 / 32768)
    return data.astype(np.float32, copy=False)


@dataclass(frozen=True)
class Segment:
    data: bytes  # one moof + mdat pair
    seconds: float


class _Sink(io.RawIOBase):
    """What the muxer writes, kept until it is cut into boxes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


class FragmentEncoder:
    """The room's mix -> AAC-LC, 64 kb/s mono, in ~2 s fMP4 fragments."""

    def __init__(self, coder: str = "fast") -> None:
        self._sink = _Sink()
        self._out = av.open(self._sink, "w", format="mp4", options=MP4_OPTIONS)
        stream = self._out.add_stream("aac", rate=RATE, layout="mono")
        stream.bit_rate = BIT_RATE
        # ffmpeg's "fast" coder: a fifth of the default's CPU, fine for speech at 64 kb/s.
        stream.codec_context.options = {"aac_coder": coder}
        self._stream = stream
        self._pending = np.zeros(0, dtype=np.float32)
        self._pts = 0
        self.init: bytes | None = None

    def add(self, pcm: np.ndarray) -> list[Segment]:
        """Encode mono float32 PCM; returns the segments completed meanwhile."""
        self._pending = np.concatenate([self._pending, pcm])
        whole = len(self._pending) // AAC_FRAME * AAC_FRAME
        for start in range(0, whole, AAC_FRAME):
            self._encode(self._frame(self._pending[start : start + AAC_FRAME]))
        self._pending = self._pending[whole:]
        return self._cut()

    def finish(self) -> list[Segment]:
        """Flush everything (the last partial frame padded with silence); the last
        segments."""
        if len(self._pending):
            tail = np.zeros(AAC_FRAME, dtype=np.float32)
            tail[: len(self._pending)] = self._pending
            self._encode(self._frame(tail))
        self._encode(None)
        self._out.close()
        return self._cut()

    def _frame(self, pcm: np.ndarray) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += len(pcm)
        return frame

    def _encode(self, frame: av.AudioFrame | None) -> None:
        for packet in self._stream.encode(frame):
            self._out.mux(packet)

    def _cut(self) -> list[Segment]:
        boxes, used = split_boxes(bytes(self._sink.data))
        del self._sink.data[:used]
        segments = []
        moof: bytes | None = None
        for kind, box in boxes:
            if kind in (b"ftyp", b"moov"):
                self.init = (self.init or b"") + box
            elif kind == b"moof":
                moof = box
            elif kind == b"mdat" and moof is not None:
                count = trun_samples(moof)
                segments.append(Segment(moof + box, count * AAC_FRAME / RATE))
                moof = None
        if moof is not None:  # a moof without its mdat yet: keep it for next time
            self._sink.data[:0] = moof
        return segments


def split_boxes(data: bytes) -> tuple[list[tuple[bytes, bytes]], int]:
    """The complete top-level MP4 boxes at the start of ``data``, and how many bytes they
    take."""
    boxes, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        if size < 8 or at + size > len(data):
            break
        boxes.append((data[at + 4 : at + 8], data[at : at + size]))
        at += size
    return boxes, at


def trun_samples(moof: bytes) -> int:
    """The number of samples of a fragment (its ``trun`` box: one track, one run)."""
    at = moof.find(b"trun")
    if at < 4:
        return 0
    return int.from_bytes(moof[at + 8 : at + 12], "big")


def remux_m4a(init: bytes, segments: Iterable[bytes]) -> bytes:
    """The fragments as one ordinary, seekable ``.m4a`` (``moov`` first), no re-encoding."""
    source = av.open(io.BytesIO(init + b"".join(segments)), "r")
    # faststart rewrites the file in a second pass: it needs a real file to read back.
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / DOWNLOAD
        _remux(source, target)
        return target.read_bytes()


def _remux(source: av.container.InputContainer, target: Path) -> None:
    out = av.open(str(target), "w", format="ipod", options={"movflags": "faststart"})
    try:
        stream_in = source.streams.audio[0]
        stream_out = out.add_stream_from_template(stream_in)
        for packet in source.demux(stream_in):
            if packet.dts is None:
                continue
            packet.stream = stream_out
            out.mux(packet)
    finally:
        out.close()
        source.close()
