"""Pins every aiortc behaviour the relay relies on, so an aiortc upgrade fails here first.

Two real aiortc peer connections talk over loopback UDP; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import fractions
import itertools
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aioice
import aiortc
import av
import pylibsrtp
import pytest
from aiortc import RTCConfiguration, RTCDtlsTransport, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import HEADER_EXTENSIONS
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session

from rooms.media.aiortc_seam import (
    OPUS_TIME_BASE,
    SRTP_TRAILER_BYTES,
    DatagramSink,
    IdleTrack,
    SrtpSealer,
    audio_level,
    open_link,
    opus_packet,
    send_from_fanout,
    tap_datagrams,
    tap_receiver,
)
from rooms.media.fanout import Link, Output, send_to_all, sender_reports
from rooms.media.relay import Counters, ForwardTrack
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
    assert aiortc.__version__ == "1.16.0", "re-check rooms/media/aiortc_seam.py against this aiortc"
    assert aioice.__version__ == "0.13.0", "re-check rooms/media/aiortc_seam.py against this aioice"
    assert pylibsrtp.__version__ == "1.0.0", "re-check rtp_hook.SrtpSealer against pylibsrtp"


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


# ---------------------------------------------------------------- the fast path's sender side


@pytest.fixture
async def links() -> AsyncIterator[list[Link]]:
    """Links opened by a test (each holds a duplicate socket), closed after it."""
    opened: list[Link] = []
    yield opened
    for link in opened:
        link.close()


async def fast_path_pair(
    a: RTCPeerConnection, b: RTCPeerConnection, packets: list[RtpPacket], links: list[Link]
) -> Output:
    """``a`` sends to ``b`` through a fast-path slot; ``b`` taps what it receives."""
    output = Output()

    def link_of(dtls: RTCDtlsTransport) -> Link:
        links.append(open_link(dtls))
        return links[-1]

    sender = a.addTransceiver(IdleTrack(output), direction="sendonly").sender
    send_from_fanout(sender, output, link_of)
    tap_on_track(b, packets, decode=False)
    await negotiate(a, b)
    await wait_for(lambda: output.link is not None, within=15)
    return output


async def test_fast_path_sends_on_aiortcs_srtp_session_and_selected_pair(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection], links: list[Link]
) -> None:
    a, b = pcs
    packets: list[RtpPacket] = []
    output = await fast_path_pair(a, b, packets, links)
    transceiver = a.getTransceivers()[0]
    # The slot took the numbers aiortc negotiated for the sender.
    assert output.ssrc == transceiver.sender._ssrc
    assert output.payload_type == transceiver._codecs[0].payloadType
    assert len(links) == 1 and output.link is links[0]

    for n in range(20):
        send_to_all([output], bytes([n]) * 40, 0x80 | 30, 0, 960 * n, time.time())
    # b's aiortc decrypted them with its DTLS-SRTP keys and routed them to the receiver.
    await wait_for(lambda: len(packets) >= 20, within=10)
    assert [p.payload[0] for p in packets] == list(range(20))
    assert {p.ssrc for p in packets} == {output.ssrc}
    assert packets[0].extensions.mid == transceiver.mid
    assert packets[0].extensions.audio_level == (True, 30)


async def test_fast_path_sender_reports_reach_the_receiver(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection], links: list[Link]
) -> None:
    a, b = pcs
    packets: list[RtpPacket] = []
    output = await fast_path_pair(a, b, packets, links)
    for n in range(10):
        send_to_all([output], b"x" * 50, 127, 0, 960 * n, time.time())
    links[0].send_rtcp(sender_reports([output], links[0].cname))
    receiver = b.getTransceivers()[0].receiver

    async def reported() -> bool:
        stats = await receiver.getStats()
        remote = [s for s in stats.values() if s.type == "remote-outbound-rtp"]
        return bool(remote) and remote[0].packetsSent == 10 and remote[0].bytesSent == 500

    await wait_for(reported, within=10, interval=0.1)
    # aiortc's own RTCP loop for the slot is idle: no report of its own (with zero counts).
    assert links[0].cname


async def test_idle_rtcp_loop_lets_aiortc_stop_the_sender(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection], links: list[Link]
) -> None:
    a, b = pcs
    output = await fast_path_pair(a, b, [], links)
    await asyncio.wait_for(a.getTransceivers()[0].sender.stop(), 5)
    assert output.stopped and output.link is None  # aiortc stopped the idle track


async def test_links_hear_the_listener_and_follow_the_selected_pair(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection], links: list[Link]
) -> None:
    a, b = pcs
    await fast_path_pair(a, b, [], links)
    link = links[0]
    link.heard_at = 0.0
    link.probe()  # a consent request: b's ICE agent answers it
    await wait_for(lambda: link.heard_at > 0, within=5)
    before = link.sock.getsockname(), link.addr
    link.follow()  # nothing changed: same socket address and remote address
    assert (link.sock.getsockname(), link.addr) == before


async def test_datagram_tap_sees_each_datagram_before_aiortc(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    a, b = pcs
    a.addTrack(ToneTrack(440))
    packets: list[RtpPacket] = []
    seen: list[int] = []
    tap_on_track(b, packets, decode=False)

    @b.on("iceconnectionstatechange")
    def hook() -> None:
        if b.iceConnectionState == "completed":

            def count(data: bytes, addr: Any, received: DatagramSink, sock: Any) -> None:
                seen.append(data[0])
                received(data, addr)

            tap_datagrams(b.getTransceivers()[0].receiver.transport, count)

    await negotiate(a, b)
    await wait_for(lambda: len(packets) >= 10, within=15)
    assert sum(1 for first in seen if 128 <= first < 192) >= len(packets)  # RTP included
    assert any(20 <= first < 64 for first in seen)  # and DTLS


def test_srtp_sealer_protects_like_pylibsrtp() -> None:
    key, profile = bytes(range(44)), Policy.SRTP_PROFILE_AEAD_AES_256_GCM

    def session() -> Session:
        policy = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        return Session(policy)

    ours, theirs = SrtpSealer(session()), session()
    rtp = RtpPacket(payload_type=111, sequence_number=7, timestamp=960, ssrc=42)
    rtp.payload = b"z" * 60
    packet = rtp.serialize()
    buffer = ours.buffer()
    buffer.view[: len(packet)] = packet
    buffer.length[0] = len(packet)
    assert ours.seal(ours.state, buffer.data, buffer.length) == 0
    assert buffer.sealed[: buffer.length[0]] == theirs.protect(packet)
    assert len(buffer.view) + SRTP_TRAILER_BYTES == len(buffer.sealed)  # room for the trailer
