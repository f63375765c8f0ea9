"""The one place that reaches into aiortc's internals (aiortc is pinned to 1.16.0).

aiortc's ``RTCRtpReceiver`` reassembles received RTP in a jitter buffer and decodes it on a
thread before a track sees anything. A relay wants the opposite: the encoded Opus payload of
every packet, at once, so it can hand the same bytes to every listener's ``RTCRtpSender``
(which sends an ``av.Packet`` without encoding it).

The DTLS transport delivers each parsed packet by calling ``receiver._handle_rtp_packet``;
:func:`tap_receiver` replaces that bound method on one receiver instance, so packets reach
the relay before (and, by default, instead of) the jitter buffer and the decoder. Nothing
else in aiortc is touched. ``tests/media/test_rtp_hook.py`` pins every behaviour used here,
so an aiortc upgrade that changes them fails loudly.

An Opus RTP payload is exactly one Opus packet (RFC 7587), so depacketizing is taking the
payload as it is. The ``ssrc-audio-level`` header extension (RFC 6464) rides on the same
packet and aiortc parses it into ``packet.extensions.audio_level`` as ``(voice, level)``
with ``level`` in -dBov (0 loudest, 127 silence).
"""

from __future__ import annotations

import fractions
from collections.abc import Callable

import av
from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket

OPUS_CLOCK_RATE = 48000
OPUS_TIME_BASE = fractions.Fraction(1, OPUS_CLOCK_RATE)
SILENCE_LEVEL = 127  # -127 dBov: what "no audio level" means

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
