"""The one place that reaches into aiortc's (and aioice's) internals (aiortc is pinned to
1.16.0, aioice to 0.13.0).

**Receiving.** aiortc's ``RTCRtpReceiver`` reassembles received RTP in a jitter buffer and
decodes it on a thread before a track sees anything. A relay wants the opposite: the
encoded Opus payload of every packet, at once, so it can send the same bytes to every
listener.

The DTLS transport delivers each parsed packet by calling ``receiver._handle_rtp_packet``;
:func:`tap_receiver` replaces that bound method on one receiver instance, so packets reach
the relay before (and, by default, instead of) the jitter buffer and the decoder.
``tests/media/test_rtp_hook.py`` pins every behaviour used here,
so an aiortc upgrade that changes them fails loudly.

An Opus RTP payload is exactly one Opus packet (RFC 7587), so depacketizing is taking the
payload as it is. The ``ssrc-audio-level`` header extension (RFC 6464) rides on the same
packet and aiortc parses it into ``packet.extensions.audio_level`` as ``(voice, level)``
with ``level`` in -dBov (0 loudest, 127 silence).

**Sending (the fast path, :mod:`rooms.fanout`).** Each listener slot keeps an aiortc
``RTCRtpSender`` for negotiation (SDP, SSRC, RTCP reception and sender reports), but its
track never yields (:class:`IdleTrack`), so aiortc's per-sender RTP loop carries nothing.
:func:`send_from_fanout` wraps ``sender.send(parameters)`` (called once DTLS is up) to start
the slot's :class:`~rooms.fanout.Output` with the negotiated SSRC, payload type and header
extension ids, and makes the sender's RTCP sender reports (and ``getStats``) read the
output's counters. :func:`open_link` takes what the fan-out needs from the DTLS transport:
its outbound SRTP session and the selected ICE candidate pair (a duplicate of that pair's
UDP socket and the remote address), and notes every datagram the listener sends us (for
:attr:`~rooms.fanout.Link.heard_at`). :func:`set_consent_interval` makes aioice check
consent (RFC 7675) more often than every 5 s, so a vanished listener goes quiet quickly.
"""

from __future__ import annotations

import asyncio
import fractions
import os
import socket
from collections.abc import Callable
from typing import Any

import aioice.ice
import av
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RtpPacket

from rooms.fanout import Link, Output, StreamParams

OPUS_CLOCK_RATE = 48000
OPUS_TIME_BASE = fractions.Fraction(1, OPUS_CLOCK_RATE)
SILENCE_LEVEL = 127  # -127 dBov: what "no audio level" means

NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

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


class _ReportingSender(RTCRtpSender):
    """aiortc's sender whose RTCP sender reports and ``getStats`` count what the fan-out sent.

    aiortc's ``_run_rtcp`` (sender reports every 0.5-1.5 s) and ``getStats`` read four
    name-mangled counters that its own RTP loop would update; here they are read from the
    slot's :class:`~rooms.fanout.Output` when a report is due, so the hot loop only bumps
    its own integers. The NTP time is the wall-clock time the last packet left, paired with
    that packet's RTP timestamp, as aiortc does.
    """

    _fast_output: Output

    @property
    def _RTCRtpSender__packet_count(self) -> int:
        return self._fast_output.packets

    @property
    def _RTCRtpSender__octet_count(self) -> int:
        return self._fast_output.octets

    @property
    def _RTCRtpSender__rtp_timestamp(self) -> int:
        return self._fast_output.last_ts or 0

    @property
    def _RTCRtpSender__ntp_timestamp(self) -> int:
        sent_at = self._fast_output.sent_at
        return int((sent_at + NTP_EPOCH_OFFSET) * (1 << 32)) if sent_at else 0


def send_from_fanout(
    sender: RTCRtpSender, output: Output, link_of: Callable[[RTCDtlsTransport], Link]
) -> None:
    """Make ``output`` carry ``sender``'s stream once aiortc starts the sender."""
    sender.__class__ = _ReportingSender
    sender._fast_output = output  # type: ignore[attr-defined]
    original = sender.send

    async def send(parameters: RTCRtpSendParameters) -> None:
        await original(parameters)  # registers the SSRC for RTCP, starts the idle loops
        if output.link is None:
            output.start(link_of(sender.transport), stream_params(parameters))

    sender.send = send  # type: ignore[method-assign]


def stream_params(parameters: RTCRtpSendParameters) -> StreamParams:
    """The numbers a sender negotiated, as the fan-out writes them."""
    ids = {e.uri: e.id for e in parameters.headerExtensions}
    ssrc, payload_type = parameters.rtcp.ssrc, parameters.codecs[0].payloadType
    if ssrc is None or payload_type is None:  # aiortc always sets both before send()
        raise ValueError("a sender without SSRC or payload type")
    return StreamParams(
        ssrc=ssrc,
        payload_type=payload_type,
        mid=parameters.muxId or None,
        mid_id=ids.get(MID_URI),
        level_id=ids.get(LEVEL_URI),
    )


def open_link(dtls: RTCDtlsTransport) -> Link:
    """The fan-out's way to one listener: SRTP session and selected candidate pair.

    Call once DTLS is connected. The socket is a duplicate of the pair's (same kernel
    socket and buffer, so packets leave from the address the listener's ICE agent knows);
    the caller closes the link when the connection goes.
    """
    pair = _selected_pair(dtls)
    protocol = pair.protocol
    sock = socket.socket(fileno=os.dup(protocol.transport.get_extra_info("socket").fileno()))
    sock.setblocking(False)
    link = Link(dtls._tx_srtp.protect, sock, pair.remote_addr)
    received = protocol.datagram_received

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        link.touch()
        received(data, addr)

    protocol.datagram_received = datagram_received
    return link


def _selected_pair(dtls: RTCDtlsTransport) -> Any:
    """aioice's nominated ``CandidatePair`` for RTP (component 1)."""
    connection = dtls.transport._connection
    pair = connection._nominated.get(1)
    if pair is None:
        raise ConnectionError("ICE has no selected candidate pair")
    return pair


def set_consent_interval(seconds: int) -> None:
    """How often aioice checks consent (RFC 7675) on every connection of this process.

    aioice reads the module constant at each check (0.8-1.2 times it); the default is 5 s
    with 6 failures to give up (about 30 s). The relay wants answers often enough that a
    listener silent for a few seconds is surely gone.
    """
    aioice.ice.CONSENT_INTERVAL = seconds
