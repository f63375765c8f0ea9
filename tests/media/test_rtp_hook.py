"""Pins every aiortc behaviour the relay relies on, so an aiortc upgrade fails here first.

Two real aiortc peer connections talk over loopback UDP; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import fractions
import itertools
import re
from collections.abc import AsyncIterator

import aiortc
import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import HEADER_EXTENSIONS
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from rooms.relay import Counters, ForwardTrack
from rooms.rtp_hook import OPUS_TIME_BASE, audio_level, opus_packet, tap_receiver
from tests.media.client import ToneTrack
from tests.support import wait_for


class PacketTrack(MediaStreamTrack):
    """Sends numbered fake Opus packets: payload i is bytes([i % 256]) * 40."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        await asyncio.sleep(0.02)
        packet = opus_packet(bytes([self.n % 256]) * 40, pts=self.n * 960)
        self.n += 1
        return packet


@pytest.fixture
async def pcs() -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection]]:
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    yield a, b
    await a.close()
    await b.close()


async def negotiate(a: RTCPeerConnection, b: RTCPeerConnection) -> None:
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)


def tap_on_track(pc: RTCPeerConnection, packets: list[RtpPacket], *, decode: bool) -> None:
    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
        tap_receiver(receiver, packets.append, decode=decode)


def test_aiortc_is_the_pinned_version() -> None:
    assert aiortc.__version__ == "1.16.0", "re-check rooms/rtp_hook.py against this aiortc"


def test_audio_level_extension_is_offered() -> None:
    uris = {e.uri for e in HEADER_EXTENSIONS["audio"]}
    assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in uris


async def test_tap_gets_encoded_opus_and_levels_without_decoding(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    a, b = pcs
    a.addTrack(ToneTrack(440, amplitude=0.5))
    packets: list[RtpPacket] = []
    tap_on_track(b, packets, decode=False)
    await negotiate(a, b)
    await wait_for(lambda: len(packets) >= 30, within=15)

    opus_pt = next(c.payloadType for c in b.getTransceivers()[0]._codecs)
    assert all(p.payload_type == opus_pt and p.payload for p in packets)
    steps = {(q.timestamp - p.timestamp) % (1 << 32) for p, q in itertools.pairwise(packets)}
    assert steps == {960}  # one 20 ms Opus frame per packet, in order
    # aiortc parses ssrc-audio-level into (voice, -dBov); a loud tone is well above -35.
    assert isinstance(packets[-1].extensions.audio_level, tuple)
    assert audio_level(packets[-1]) < 35
    # The packet is Opus as encoded (a TOC byte libopus decodes), not a decoded frame.
    decoder = av.CodecContext.create("libopus", "r")
    frames = decoder.decode(opus_packet(packets[-1].payload, 0))
    assert frames and frames[0].samples == 960
    # The receiver's jitter buffer and decoder never saw them: its track has nothing.
    track = b.getTransceivers()[0].receiver.track
    assert track._queue.qsize() == 0  # type: ignore[attr-defined]


async def test_tap_can_keep_aiortc_decoding(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    a, b = pcs
    a.addTrack(ToneTrack(440))
    packets: list[RtpPacket] = []
    tap_on_track(b, packets, decode=True)
    await negotiate(a, b)
    frame = await asyncio.wait_for(b.getTransceivers()[0].receiver.track.recv(), 15)
    assert isinstance(frame, av.AudioFrame)
    assert packets


async def test_sender_sends_av_packets_unchanged(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    a, b = pcs
    a.addTrack(PacketTrack())
    packets: list[RtpPacket] = []
    tap_on_track(b, packets, decode=False)
    await negotiate(a, b)
    await wait_for(lambda: len(packets) >= 20, within=15)

    payloads = [p.payload for p in packets]
    first = payloads[0][0]
    assert payloads == [bytes([(first + i) % 256]) * 40 for i in range(len(payloads))]
    # pts (in the 1/48000 time base) becomes the RTP timestamp, offset by a random origin.
    steps = {(q.timestamp - p.timestamp) % (1 << 32) for p, q in itertools.pairwise(packets)}
    assert steps == {960}
    assert fractions.Fraction(1, 48000) == OPUS_TIME_BASE


async def test_an_empty_forward_track_is_still_a_track_to_aiortc() -> None:
    # aiortc picks "track or kind": a falsy track (say, an empty queue with __len__) would
    # silently become no track at all.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        track = ForwardTrack(Counters())
        assert pc.addTransceiver(track, direction="sendonly").sender.track is track
    finally:
        await pc.close()


async def test_aiortc_reoffers_with_its_own_payload_type(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    """Why rooms.media.keep_session_formats exists: aiortc renumbers Opus in re-offers."""
    a, b = pcs
    a.addTransceiver("audio", direction="recvonly")
    offer = await a.createOffer()
    sdp = re.sub(r"(m=audio \d+ UDP/TLS/RTP/SAVPF) 96", r"\1 111", offer.sdp)
    sdp = sdp.replace("a=rtpmap:96 opus", "a=rtpmap:111 opus")
    await a.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    assert "a=rtpmap:111 opus" in b.localDescription.sdp
    reoffer = await b.createOffer()
    assert "a=rtpmap:96 opus" in reoffer.sdp and "a=rtpmap:111" not in reoffer.sdp
