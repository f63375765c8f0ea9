"""The one place that reaches into aiortc's, aioice's and pylibsrtp's internals (pinned:
aiortc 1.16.0, aioice 0.13.0, pylibsrtp 1.0.0).

**Receiving.** aiortc's ``RTCRtpReceiver`` reassembles received RTP in a jitter buffer and
decodes it on a thread before a track sees anything. A relay wants the opposite: the
encoded Opus payload of every packet, at once, so it can send the same bytes to every
listener.

The DTLS transport delivers each parsed packet by calling ``receiver._handle_rtp_packet``;
:func:`tap_receiver` replaces that bound method on one receiver instance, so packets reach
the relay before (and, by default, instead of) the jitter buffer and the decoder.
``tests/media/test_aiortc_seam.py`` pins every behaviour used here, so an upgrade that
changes them fails loudly.

An Opus RTP payload is exactly one Opus packet (RFC 7587), so depacketizing is taking the
payload as it is. The ``ssrc-audio-level`` header extension (RFC 6464) rides on the same
packet and aiortc parses it into ``packet.extensions.audio_level`` as ``(voice, level)``
with ``level`` in -dBov (0 loudest, 127 silence).

**Sending (the fast path, :mod:`rooms.media.fanout`).** Each listener slot keeps an aiortc
``RTCRtpSender`` for negotiation (SDP, SSRC, RTCP reception and sender reports), but its
track never yields (:class:`IdleTrack`), so aiortc's per-sender RTP loop carries nothing.
:func:`send_from_fanout` wraps ``sender.send(parameters)`` (called once DTLS is up) to start
the slot's :class:`~rooms.media.fanout.Output` with the negotiated SSRC, payload type and header
extension ids, and idles the sender's RTCP loop (the relay sends the sender reports).
:func:`open_link` takes what the fan-out needs from the DTLS transport: its outbound SRTP
session and the selected ICE candidate pair (a duplicate of that pair's UDP socket and the
remote address); it notes every datagram the listener sends us
(:attr:`~rooms.media.fanout.Link.heard_at`) and can ask for one (an ICE consent request).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import os
import socket
from collections.abc import Callable
from typing import Any

import av
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RtpPacket
from pylibsrtp import Session
from pylibsrtp._binding import ffi as _ffi
from pylibsrtp._binding import lib as _lib

from rooms.media.fanout import Link, Output, StreamParams

OPUS_CLOCK_RATE = 48000
OPUS_TIME_BASE = fractions.Fraction(1, OPUS_CLOCK_RATE)
SILENCE_LEVEL = 127  # -127 dBov: what "no audio level" means

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

BUFFER_BYTES = 2048  # an Opus packet (at most 1275 bytes) with header, extensions, trailer
SRTP_TRAILER_BYTES = 144  # pylibsrtp's SRTP_MAX_TRAILER_LEN

RtpSink = Callable[[RtpPacket], None]


def tap_receiver(receiver: RTCRtpReceiver, sink: RtpSink, *, decode: bool = False) -> None:
    """Hand every RTP packet ``receiver`` gets to ``sink`` as soon as it is parsed.

    With ``decode=False`` (the relay) aiortc's jitter buffer and decoder never see the
    packets: its decoder thread idles until the receiver stops and the receiver's track
    yields nothing. With ``decode=True`` aiortc's own path still runs after ``sink``.
    ``sink`` runs on the event loop for every packet: keep it short and never raise.
    """
    original = receiver._handle_rtp_packet

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        sink(packet)
        if decode:
            await original(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]


def audio_level(packet: RtpPacket) -> int:
    """The packet's audio level in -dBov (0 loudest, 127 silence; 127 when absent)."""
    level = packet.extensions.audio_level
    return SILENCE_LEVEL if level is None else int(level[1])


def opus_packet(payload: bytes, pts: int) -> av.Packet:
    """An ``av.Packet`` that ``RTCRtpSender`` sends as it is (its Opus ``pack`` path)."""
    packet = av.Packet(payload)
    packet.pts = pts
    packet.time_base = OPUS_TIME_BASE
    return packet


# ---------------------------------------------------------------- sending (the fast path)


class SrtpBuffer:
    """Memory where one stream's packets are built and protected (see ``SrtpSealer``)."""

    __slots__ = ("data", "length", "sealed", "view")

    def __init__(self) -> None:
        self.data = _ffi.new("char[]", BUFFER_BYTES)
        self.length = _ffi.new("int *")
        # Writes go through a view that leaves room for the SRTP trailer (a packet that
        # would not fit fails to be written); the protected packet is read from all of it.
        self.view = _ffi.buffer(self.data, BUFFER_BYTES - SRTP_TRAILER_BYTES)
        self.sealed = _ffi.buffer(self.data)


class SrtpSealer:
    """One outbound SRTP session of aiortc's, protecting packets in place.

    ``pylibsrtp.Session.protect`` copies the packet into its buffer, protects it there and
    copies it out: a good part of a fast-path send. The fan-out writes each packet straight
    into a buffer of its own (:class:`SrtpBuffer`, one per stream) and calls libsrtp's
    ``srtp_protect`` (through pylibsrtp's own cffi binding) on it. The session object is
    kept: it owns the libsrtp state.
    """

    __slots__ = ("_session", "seal", "state")

    def __init__(self, session: Session) -> None:
        self._session = session
        self.state = session._srtp[0]
        self.seal = _lib.srtp_protect

    def buffer(self) -> SrtpBuffer:
        return SrtpBuffer()

    def protect_rtcp(self, packet: bytes) -> bytes:
        return self._session.protect_rtcp(packet)


class IdleTrack(MediaStreamTrack):
    """A fast-path slot's track: aiortc's sender waits on it forever (the fan-out sends).

    Stopping it (aiortc does when the sender stops) stops the slot's output.
    """

    kind = "audio"

    def __init__(self, output: Output) -> None:
        super().__init__()
        self.output = output
        self._stopped: asyncio.Future[None] | None = None

    async def recv(self) -> av.Packet:
        if self.readyState == "live":
            self._stopped = asyncio.get_running_loop().create_future()
            await self._stopped
        raise MediaStreamError

    def stop(self) -> None:
        self.output.stop()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        super().stop()


def send_from_fanout(
    sender: RTCRtpSender, output: Output, link_of: Callable[[RTCDtlsTransport], Link]
) -> None:
    """Make ``output`` carry ``sender``'s stream once aiortc starts the sender.

    aiortc's own RTCP loop for the sender is replaced by an idle one: its sender reports
    (every 0.5-1.5 s per stream, from counters its RTP loop would keep) are sent by the
    relay instead, for all of a listener's streams at once (``fanout.sender_reports``).
    """
    original = sender.send

    async def send(parameters: RTCRtpSendParameters) -> None:
        await original(parameters)  # registers the SSRC for RTCP, starts the idle loops
        if output.link is None:
            output.start(link_of(sender.transport), stream_params(parameters))

    async def run_rtcp() -> None:
        # RTCRtpSender.stop() waits for these two events of its RTCP loop.
        sender._RTCRtpSender__rtcp_started.set()  # type: ignore[attr-defined]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.get_running_loop().create_future()
        sender._RTCRtpSender__rtcp_exited.set()  # type: ignore[attr-defined]

    sender.send = send  # type: ignore[method-assign]
    sender._run_rtcp = run_rtcp  # type: ignore[method-assign]


def stream_params(parameters: RTCRtpSendParameters) -> StreamParams:
    """The numbers a sender negotiated, as the fan-out writes them."""
    ids = {e.uri: e.id for e in parameters.headerExtensions}
    ssrc, payload_type = parameters.rtcp.ssrc, parameters.codecs[0].payloadType
    if ssrc is None or payload_type is None:  # aiortc always sets both before send()
        raise ValueError("a sender without SSRC or payload type")
    return StreamParams(
        ssrc=ssrc,
        payload_type=payload_type,
        cname=parameters.rtcp.cname,
        mid=parameters.muxId or None,
        mid_id=ids.get(MID_URI),
        level_id=ids.get(LEVEL_URI),
    )


def open_link(dtls: RTCDtlsTransport) -> Link:
    """The fan-out's way to one listener: SRTP session and selected candidate pair.

    Call once DTLS is connected; the caller closes the link when the connection goes. The
    link's socket is a duplicate of the selected pair's (same kernel socket and buffer, so
    packets leave from the address the listener's ICE agent knows). aioice may still
    switch pairs just after ICE completes (a later nominated pair wins), so
    ``link.follow()`` (called every few hundred ms) moves the link to the current one.
    Every datagram the listener sends us, on any of our candidates (media, RTCP, DTLS,
    STUN), marks it alive.
    """
    connection, pair = _selected_pair(dtls)
    link = Link(_dup(pair), pair.remote_addr, SrtpSealer(dtls._tx_srtp), lambda: None)
    current = pair

    def follow() -> None:
        nonlocal current
        pair = connection._nominated.get(1)
        if pair is not None and pair is not current and not link.closed:
            current = pair
            link.sock.close()
            link.sock, link.addr = _dup(pair), pair.remote_addr

    def probe() -> None:
        """A consent request (RFC 7675) whose answer only needs to arrive, not be matched."""
        request = connection.build_request(current, nominate=False)
        request.add_message_integrity(str(connection.remote_password).encode())
        current.protocol.send_stun(request, current.remote_addr)

    def touch(data: bytes, addr: tuple[Any, ...], received: DatagramSink, sock: Any) -> None:
        link.touch()
        received(data, addr)

    link.follow, link.probe = follow, probe
    tap_datagrams(dtls, touch)
    return link


def _dup(pair: Any) -> socket.socket:
    fileno = pair.protocol.transport.get_extra_info("socket").fileno()
    sock = socket.socket(fileno=os.dup(fileno))
    sock.setblocking(False)
    return sock


DatagramSink = Callable[[bytes, tuple[Any, ...]], None]
# hook(data, addr, received, sock): pass on with received(data, addr), or drop.
DatagramHook = Callable[[bytes, tuple[Any, ...], DatagramSink, Any], None]


def tap_datagrams(dtls: RTCDtlsTransport, hook: DatagramHook) -> None:
    """Every datagram arriving on any of the connection's local candidates goes to
    ``hook(data, addr, received, sock)`` first, which passes it on to aiortc by calling
    ``received(data, addr)`` (or not); ``sock`` is the socket it came in on (an ``asyncio``
    transport socket: ``fileno()`` and options).
    """
    protocols: list[Any] = dtls.transport._connection._protocols
    for protocol in protocols:
        received = protocol.datagram_received
        sock = protocol.transport.get_extra_info("socket")

        def datagram_received(
            data: bytes,
            addr: tuple[Any, ...],
            received: DatagramSink = received,
            sock: Any = sock,
        ) -> None:
            hook(data, addr, received, sock)

        protocol.datagram_received = datagram_received


def _selected_pair(dtls: RTCDtlsTransport) -> tuple[Any, Any]:
    """aioice's ``Connection`` and its nominated ``CandidatePair`` for RTP (component 1)."""
    connection = dtls.transport._connection
    pair = connection._nominated.get(1)
    if pair is None:
        raise ConnectionError("ICE has no selected candidate pair")
    return connection, pair
