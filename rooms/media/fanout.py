"""The fast path: a speaker's packet goes out to every listener in one synchronous pass.

For each listener slot (:class:`Output`) the pass writes the slot's own RTP header (its
SSRC, a sequence number that counts on by one per packet sent, a timestamp that only moves
forward across speaker switches, mutes and reconnects), protects it with the listener's
outbound SRTP session and sends it on the listener's selected ICE candidate pair
(:class:`Link`). No task, future, queue or ``av.Packet`` per listener per packet: aiortc
keeps doing ICE, DTLS, SDP and RTCP, and reaching into it is :mod:`rooms.media.aiortc_seam`'s job.

Backpressure is per listener: a socket whose kernel buffer is full drops that packet for
that listener only (counted); nobody waits. A pass over many listeners is cut into chunks
that yield to the event loop in between, so joins and signaling never wait behind a long
fan-out; chunks run strictly in arrival order, so every listener gets its packets in order
(SRTP protects them in sequence order). RTCP sender reports for every slot of a listener go
out together, one compound packet every few seconds (:func:`sender_reports`).
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiortc.rtp import AnyRtcpPacket, RtcpSdesPacket, RtcpSenderInfo, RtcpSourceInfo, RtcpSrPacket

log = structlog.get_logger(__name__)

CLOCK_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms: the smallest step between two packets of one stream
CHUNK = 32  # listeners sent to between two looks at the clock
SLICE_SECONDS = 0.002  # at most this much fan-out before the event loop gets control back
MAX_DELAY = 0.1  # a packet not sent this long after it arrived is dropped
FAIR_SECONDS = 5.0  # after such a drop, passes rotate their starting listener this long
NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)

_FIXED = struct.Struct("!BBHII")  # version/extension bit, marker/payload type, seq, ts, ssrc
_VARYING = struct.Struct("!BHI")  # from byte 1: marker/payload type, seq, ts
_BYTES = [bytes((n,)) for n in range(256)]
_ONE_BYTE_PROFILE = b"\xbe\xde"  # RFC 8285 one-byte header extensions


@dataclass
class Counters:
    """Packets forwarded and dropped in one room since the last flush to Prometheus."""

    forwarded: int = 0
    dropped: int = 0

    def take(self) -> tuple[int, int]:
        counts = (self.forwarded, self.dropped)
        self.forwarded = self.dropped = 0
        return counts


class Feed(Protocol):
    """What feeds a slot (``rooms.media.relay.Source``, which feeds other kinds of slot too)."""

    user_id: str

    def detach(self, slot: Any) -> None: ...


@dataclass
class StreamParams:
    """What the slot's ``RTCRtpSender`` negotiated: numbers the fast path must reuse."""

    ssrc: int
    payload_type: int
    cname: str | None = None
    mid: str | None = None
    mid_id: int | None = None  # urn:ietf:params:rtp-hdrext:sdes:mid
    level_id: int | None = None  # urn:ietf:params:rtp-hdrext:ssrc-audio-level


class PacketBuffer(Protocol):
    """Where one stream's packets are built and protected (``rtp_hook.SrtpBuffer``).

    The packet is written at the start of ``view`` (``data`` is the same memory), its
    length put in ``length[0]``; the session's ``seal(state, data, length)`` protects it
    there and leaves the new length in ``length[0]``; the result is read from ``sealed``.
    SRTP leaves the header in clear, so the header written once stays for the next packet.
    """

    view: Any
    sealed: Any
    data: Any
    length: Any


class Sealer(Protocol):
    """A listener's outbound SRTP session, protecting in place (``rtp_hook.SrtpSealer``):
    ``seal(state, data, length)`` is a plain C call (0 when done), once per listener per
    packet."""

    state: Any
    seal: Callable[[Any, Any, Any], int]

    def buffer(self) -> PacketBuffer: ...

    def protect_rtcp(self, packet: bytes) -> bytes: ...


class Link:
    """One listener's peer connection as the fan-out sees it: how to protect, where to send.

    ``sock`` is the listener's own UDP socket (a duplicate of the selected candidate pair's
    socket descriptor, non-blocking), so a full kernel buffer shows as ``BlockingIOError``
    for this listener only. ``heard_at`` is when the listener last sent us anything;
    ``probe`` asks it for a sign of life (an ICE consent request, RFC 7675); ``follow``
    moves the link to the pair ICE selected last.
    """

    __slots__ = (
        "addr",
        "closed",
        "cname",
        "dropped",
        "follow",
        "heard_at",
        "probe",
        "probed_at",
        "report_at",
        "sock",
        "srtp",
    )

    def __init__(
        self, sock: socket.socket, addr: tuple[str, int], srtp: Sealer, probe: Callable[[], None]
    ) -> None:
        self.sock = sock
        self.addr = addr
        self.srtp = srtp
        self.probe = probe
        self.follow: Callable[[], None] = lambda: None  # see rtp_hook.open_link
        self.cname = ""
        self.dropped = 0
        self.heard_at = self.probed_at = time.monotonic()
        self.report_at = self.heard_at + 1.0  # a first report soon: receivers sync on it
        self.closed = False

    def touch(self) -> None:
        self.heard_at = time.monotonic()

    def send_rtcp(self, packet: bytes) -> None:
        try:
            self.sock.sendto(self.srtp.protect_rtcp(packet), self.addr)
        except OSError:  # a full buffer: the next report will do
            self.dropped += 1

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()


class Output:
    """One listener slot on the fast path: an RTP stream towards one listener.

    It is not sending until its sender negotiated (:meth:`start`); packets for it are
    skipped until then, so a joining listener starts live. The counters feed the slot's
    RTCP sender reports (see :func:`sender_reports`).
    """

    __slots__ = (
        "data",
        "first_byte",
        "head",
        "last_ts",
        "length",
        "level_at",
        "link",
        "octets",
        "offset",
        "packets",
        "payload_type",
        "rebase",
        "seal",
        "sealed",
        "sent_at",
        "seq",
        "source",
        "ssrc",
        "state",
        "stopped",
        "view",
    )

    def __init__(self) -> None:
        self.source: Feed | None = None
        self.link: Link | None = None
        self.ssrc = 0
        self.first_byte = 0x80
        self.payload_type = 0
        # The stream's packet buffer and the listener's SRTP session (see PacketBuffer and
        # Sealer), flattened here: the hot loop reads them once per listener per packet.
        self.view: Any = None
        self.sealed: Any = None
        self.data: Any = None
        self.length: Any = None
        self.state: Any = None
        self.seal: Any = None
        self.head = 12  # header length with extensions
        self.level_at = -1
        self.seq = random.randrange(1 << 15)  # lower half: no early rollover (see aiortc)
        self.offset = 0
        self.last_ts: int | None = None
        self.sent_at = 0.0  # time.time() of the last packet sent
        self.rebase = True
        self.packets = 0
        self.octets = 0
        self.stopped = False

    def start(self, link: Link, params: StreamParams) -> None:
        """The sender negotiated: send from now on, with its SSRC, payload type and ids."""
        if self.stopped:
            return
        self.ssrc = params.ssrc
        link.cname = params.cname or link.cname
        self.payload_type = params.payload_type & 0x7F
        extension, level_at = _extension_block(params)
        self.level_at = 12 + level_at if level_at > 0 else -1
        self.head = 12 + len(extension)
        self.first_byte = 0x90 if extension else 0x80
        buffer = link.srtp.buffer()
        self.view, self.sealed = buffer.view, buffer.sealed
        self.data, self.length = buffer.data, buffer.length
        self.state, self.seal = link.srtp.state, link.srtp.seal
        _FIXED.pack_into(self.view, 0, self.first_byte, self.payload_type, 0, 0, self.ssrc)
        self.view[12 : self.head] = extension
        self.link = link

    def stop(self) -> None:
        self.stopped = True
        self.link = None
        if self.source is not None:
            self.source.detach(self)


def sender_reports(outputs: Sequence[Output], cname: str) -> bytes:
    """One compound RTCP packet: a sender report per stream that sent, and their CNAMEs.

    Each report pairs the RTP timestamp of the stream's last packet with the wall-clock
    time it left (NTP format), as aiortc's own sender does; counts are since the start.
    Empty when no stream has sent anything yet.
    """
    sending = [out for out in outputs if out.packets]
    packets: list[AnyRtcpPacket] = [
        RtcpSrPacket(
            ssrc=out.ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=int((out.sent_at + NTP_EPOCH_OFFSET) * (1 << 32)),
                rtp_timestamp=out.last_ts or 0,
                packet_count=out.packets & 0xFFFFFFFF,
                octet_count=out.octets & 0xFFFFFFFF,
            ),
        )
        for out in sending
    ]
    if not packets:
        return b""
    name = cname.encode()
    chunks = [RtcpSourceInfo(ssrc=out.ssrc, items=[(1, name)]) for out in sending]
    packets.append(RtcpSdesPacket(chunks=chunks))
    return b"".join(bytes(packet) for packet in packets)


def _extension_block(params: StreamParams) -> tuple[bytearray, int]:
    """The one-byte-header extension block (RFC 8285) and where the level byte goes."""
    elements = bytearray()
    level_at = -1
    if params.level_id:
        elements += bytes((params.level_id << 4, 0x7F))
        level_at = 4 + 1  # in the block, after its 4-byte header and the element's id
    if params.mid_id and params.mid:
        mid = params.mid.encode()
        elements += bytes(((params.mid_id << 4) | (len(mid) - 1),)) + mid
    if not elements:
        return bytearray(), -1
    elements += b"\x00" * (-len(elements) % 4)
    return bytearray(_ONE_BYTE_PROFILE + struct.pack("!H", len(elements) // 4) + elements), level_at


def send_to_all(
    outputs: Sequence[Output], payload: bytes, level: int, marker: int, pts: int, now: float
) -> tuple[int, int]:
    """The hot loop: one packet to each output; returns (sent, dropped). Each packet is
    written into its stream's own buffer (the last one's header is still there), protected
    there and sent: no ``bytes`` made but the one handed to ``sendto``."""
    pack_into = _VARYING.pack_into
    level_byte = _BYTES[level]
    octets = len(payload)
    sent = dropped = 0
    for out in outputs:
        link = out.link
        if link is None:
            continue
        mark = marker
        if out.rebase:
            _rebase(out, pts, now)
            mark = 0x80
        seq = (out.seq + 1) & 0xFFFF
        ts = (pts + out.offset) & 0xFFFFFFFF
        view, at, head, length = out.view, out.level_at, out.head, out.length
        pack_into(view, 1, mark | out.payload_type, seq, ts)
        if at > 0:
            view[at : at + 1] = level_byte
        length[0] = end = head + octets
        try:
            view[head:end] = payload  # too long for the buffer: ValueError
            if out.seal(out.state, out.data, length):
                raise ValueError("SRTP refused the packet")
            link.sock.sendto(out.sealed[: length[0]], link.addr)
        except (OSError, ValueError):  # a full buffer (BlockingIOError), a vanished route
            link.dropped += 1
            dropped += 1
            continue
        out.seq, out.last_ts, out.sent_at = seq, ts, now
        out.packets += 1
        out.octets += octets
        sent += 1
    return sent, dropped


def _rebase(out: Output, pts: int, now: float) -> None:
    """First packet of a new source on this slot: continue the slot's own timeline.

    The listener sees one stream per slot whatever feeds it; after a switch (or a mute, or
    the speaker's reconnect) its timestamps jump forward by the time that passed, like a
    pause, never backwards.
    """
    if out.last_ts is None:
        out.offset = random.randrange(1 << 32) - pts
    else:
        gap = max(FRAME_SAMPLES, int((now - out.sent_at) * CLOCK_RATE))
        out.offset = out.last_ts + gap - pts
    out.rebase = False


@dataclass
class _Job:
    outputs: Sequence[Output]
    start: int
    payload: bytes
    level: int
    marker: int
    pts: int
    now: float
    counters: Counters
    snapshot: bool = False  # outputs is our own copy, not the source's live list


class FanOut:
    """Runs passes in arrival order, ``chunk`` listeners at a time, yielding to the event
    loop after ``slice_seconds`` of work.

    A pass starts at once when nothing is queued (in small rooms it simply completes: no
    scheduling at all); whatever is left after a slice waits for the next turn of the event
    loop, behind which joins, signaling and other rooms' packets get their turn. A packet
    still waiting after ``max_delay`` seconds (the process cannot keep up, or is starved of
    CPU) is dropped for the listeners it has not reached: late audio is worth less than
    current audio, and the backlog stays bounded. Passes normally go through the listeners
    in the same order (each listener's delay stays steady: no added jitter); for a while
    after such a drop they start at a different listener each time, so the losses are
    shared instead of falling on the listeners that joined last.
    """

    def __init__(
        self, chunk: int = CHUNK, slice_seconds: float = SLICE_SECONDS, max_delay: float = MAX_DELAY
    ) -> None:
        self.chunk = chunk
        self.slice_seconds = slice_seconds
        self.max_delay = max_delay
        self._jobs: deque[_Job] = deque()
        self._scheduled = False
        self._fair_until = 0.0
        self._turns = 0

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def push(
        self,
        outputs: Sequence[Output],
        payload: bytes,
        level: int,
        marker: int,
        pts: int,
        counters: Counters,
    ) -> None:
        now = time.time()
        job = _Job(outputs, 0, payload, level, marker, pts, now, counters)
        if now < self._fair_until and len(outputs) > self.chunk:
            # Overloaded: passes start at a different listener each time, so the packets
            # dropped for being late are not always those of the listeners listed last.
            self._turns += 1
            cut = (self._turns * 7919) % len(outputs)
            job.outputs, job.snapshot = [*outputs[cut:], *outputs[:cut]], True
        if self._jobs:
            if not job.snapshot:  # slots may come and go before its turn
                job.outputs, job.snapshot = list(outputs), True
            self._jobs.append(job)
            return
        self._jobs.append(job)
        self._work()

    def _turn(self) -> None:
        self._scheduled = False
        self._work()

    def _work(self) -> None:
        jobs = self._jobs
        deadline = time.perf_counter() + self.slice_seconds
        try:
            while jobs:
                job = jobs[0]
                if time.time() - job.now > self.max_delay:
                    job.counters.dropped += len(job.outputs) - job.start
                    jobs.popleft()
                    self._fair_until = time.time() + FAIR_SECONDS
                    continue
                end = job.start + self.chunk
                sent, dropped = send_to_all(
                    job.outputs[job.start : end],
                    job.payload,
                    job.level,
                    job.marker,
                    job.pts,
                    job.now,
                )
                job.counters.forwarded += sent
                job.counters.dropped += dropped
                job.start = end
                if end >= len(job.outputs):
                    jobs.popleft()
                if time.perf_counter() > deadline:
                    break
        except Exception:  # never stall every room of the process on one bad packet
            log.exception("relay.fanout_failed")
            jobs.popleft()
        if jobs:
            head = jobs[0]
            if not head.snapshot:  # the pass started inline and goes on later
                head.outputs, head.start, head.snapshot = list(head.outputs[head.start :]), 0, True
            if not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._turn)
