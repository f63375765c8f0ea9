"""The fast path's fan-out with real UDP sockets and real SRTP sessions (pylibsrtp).

Each listener is a pair of SRTP sessions sharing a key (ours protects, the listener's
unprotects) and a pair of sockets on loopback; what arrives is parsed with aiortc's own
RTP parser, as a listener's aiortc or browser would.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket, RtcpSdesPacket, RtcpSrPacket, RtpPacket
from pylibsrtp import Policy, Session

from rooms.media.aiortc_seam import SrtpSealer
from rooms.media.fanout import (
    Counters,
    FanOut,
    Link,
    Output,
    StreamParams,
    send_to_all,
    sender_reports,
)
from rooms.media.relay import RoomRelay, Source

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


NewListener = Callable[[], "Listener"]


@dataclass
class Listener:
    link: Link
    inbox: socket.socket
    session: Session  # the listener's inbound SRTP session
    extensions: HeaderExtensionsMap

    def received(self) -> list[RtpPacket]:
        packets: list[RtpPacket] = []
        while True:
            try:
                data = self.inbox.recv(2048)
            except BlockingIOError:
                return packets
            packets.append(RtpPacket.parse(self.session.unprotect(data), self.extensions))


def srtp_pair() -> tuple[Session, Session]:
    key = os.urandom(44)
    profile = Policy.SRTP_PROFILE_AEAD_AES_256_GCM
    outbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    inbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    return outbound, inbound


def extension_map(mid_id: int, level_id: int) -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=mid_id, uri=MID_URI),
                RTCRtpHeaderExtensionParameters(id=level_id, uri=LEVEL_URI),
            ]
        )
    )
    return extensions


@pytest.fixture
def new_listener() -> Iterator[NewListener]:
    """Listeners on loopback, closed after the test."""
    made: list[Listener] = []

    def make() -> Listener:
        inbox = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        inbox.bind(("127.0.0.1", 0))
        inbox.setblocking(False)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        outbound, inbound = srtp_pair()
        link = Link(sock, inbox.getsockname(), SrtpSealer(outbound), lambda: None)
        listener = Listener(link, inbox, inbound, extension_map(3, 5))
        made.append(listener)
        return listener

    yield make
    for listener in made:
        listener.link.close()
        listener.inbox.close()


def started(listener: Listener, ssrc: int, mid: str = "1") -> Output:
    out = Output()
    out.start(listener.link, StreamParams(ssrc, 111, "cname", mid, mid_id=3, level_id=5))
    return out


async def arrived(listener: Listener, count: int) -> list[RtpPacket]:
    packets: list[RtpPacket] = []
    for _ in range(100):
        packets += listener.received()
        if len(packets) >= count:
            break
        await asyncio.sleep(0.01)
    return packets


async def test_every_listener_gets_its_own_stream(new_listener: NewListener) -> None:
    a, b = new_listener(), new_listener()
    outputs = [started(a, 1111, mid="0"), started(b, 2222, mid="2")]
    payloads = [bytes([n]) * 60 for n in range(5)]
    for n, payload in enumerate(payloads):
        assert send_to_all(outputs, payload, 0x80 | 20, 0, 10_000 + 960 * n, 1.0) == (2, 0)

    for listener, out, mid in ((a, outputs[0], "0"), (b, outputs[1], "2")):
        packets = await arrived(listener, 5)
        assert [p.payload for p in packets] == payloads  # forwarded as they came
        assert {p.ssrc for p in packets} == {out.ssrc} and {p.payload_type for p in packets} == {
            111
        }
        seqs = [p.sequence_number for p in packets]
        assert all((y - x) % 65536 == 1 for x, y in itertools.pairwise(seqs))
        steps = {(q.timestamp - p.timestamp) % (1 << 32) for p, q in itertools.pairwise(packets)}
        assert steps == {960}
        assert packets[0].marker == 1 and not any(p.marker for p in packets[1:])
        assert {p.extensions.mid for p in packets} == {mid}
        assert {p.extensions.audio_level for p in packets} == {(True, 20)}
        assert (out.packets, out.octets, out.last_ts) == (5, 300, packets[-1].timestamp)
    # Each listener has its own numbering: nothing is shared but the payload.
    assert outputs[0].seq != outputs[1].seq or outputs[0].offset != outputs[1].offset


async def test_timestamps_only_move_forward_across_switches_and_mutes(
    new_listener: NewListener,
) -> None:
    listener = new_listener()
    counters = Counters()
    alice = Source("alice", counters, allowed=True, receiving=True, fanout=FanOut())
    bob = Source("bob", counters, allowed=True, receiving=True, fanout=FanOut())
    out = started(listener, 3333)
    alice.attach(out)
    for n in range(3):
        alice.on_rtp(rtp(n, ts=4_000_000_000 + 960 * n))
    bob.attach(out)  # the slot switches speaker; bob's clock is far behind alice's
    for n in range(3):
        bob.on_rtp(rtp(n, ts=5 + 960 * n))
    bob.allowed = False  # muted for a moment: nothing is sent
    bob.on_rtp(rtp(3, ts=5 + 960 * 3))
    bob.allowed = True
    bob.on_rtp(rtp(4, ts=5 + 960 * 4))

    packets = await arrived(listener, 7)
    stamps = [p.timestamp for p in packets]
    assert all(0 < (y - x) % (1 << 32) < (1 << 31) for x, y in itertools.pairwise(stamps))
    seqs = [p.sequence_number for p in packets]
    assert all((y - x) % 65536 == 1 for x, y in itertools.pairwise(seqs))  # no gap at all
    assert [p.marker for p in packets] == [1, 0, 0, 1, 0, 0, 0]  # a new talker is marked
    assert (stamps[-1] - stamps[-2]) % (1 << 32) == 2 * 960  # the muted packet is a pause
    assert counters.take() == (7, 1)


async def test_a_full_socket_drops_only_its_own_packets(
    new_listener: NewListener,
) -> None:
    live = new_listener()
    # A listener whose socket cannot take more: a Unix datagram socket nobody reads
    # refuses datagrams once its queue is full (UDP on loopback would drop them silently).
    stuck_inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stuck_inbox.bind(f"\0ephemera-test-{os.getpid()}-{id(stuck_inbox)}")
    stuck_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stuck_sock.setblocking(False)
    stuck = Link(stuck_sock, stuck_inbox.getsockname(), SrtpSealer(srtp_pair()[0]), lambda: None)
    try:
        live_out = started(live, 4444)
        stuck_out = Output()
        stuck_out.start(stuck, StreamParams(5555, 111))
        total = 0
        for n in range(2000):
            _, dropped = send_to_all([stuck_out, live_out], b"x" * 60, 127, 0, 960 * n, 1.0)
            total += dropped
            if n % 50 == 0:
                live.received()  # the live listener keeps reading
        assert total > 0 and stuck.dropped == total
        assert stuck_out.packets == 2000 - total  # counted for the reports: only what left
        assert live_out.packets == 2000 and live.link.dropped == 0
    finally:
        stuck.close()
        stuck_inbox.close()


async def test_long_passes_yield_to_the_event_loop_in_order(new_listener: NewListener) -> None:
    group = [new_listener() for _ in range(5)]
    outputs = [started(listener, 6000 + i) for i, listener in enumerate(group)]
    # A slice of no time at all: one chunk of two listeners, then the loop's turn.
    fanout, counters = FanOut(chunk=2, slice_seconds=0), Counters()
    seen_mid_pass: list[int] = []
    for n in range(3):
        fanout.push(outputs, bytes([n]) * 40, 127, 0, 960 * n, counters)
        if n == 0:
            asyncio.get_running_loop().call_soon(lambda: seen_mid_pass.append(counters.forwarded))
    assert counters.forwarded == 2 and fanout.pending == 3  # the first chunk ran inline
    outputs.append(started(new_listener(), 6100))  # joins mid-pass: next packets only
    await asyncio.sleep(0.05)
    assert counters.forwarded == 15 and fanout.pending == 0
    assert 0 < seen_mid_pass[0] < 15  # other work ran between two chunks of the pass
    for listener in group:
        packets = await arrived(listener, 3)
        assert [p.payload[0] for p in packets] == [0, 1, 2]


async def test_a_backlog_is_dropped_not_queued_forever(new_listener: NewListener) -> None:
    outputs = [started(new_listener(), 6200 + i) for i in range(4)]
    fanout, counters = FanOut(chunk=1, slice_seconds=0, max_delay=0.01), Counters()
    fanout.push(outputs, b"a" * 40, 127, 0, 0, counters)  # one listener served inline
    fanout.push(outputs, b"b" * 40, 127, 0, 960, counters)
    time.sleep(0.02)  # noqa: ASYNC251 (the process is starved: the loop's turn comes late)
    await asyncio.sleep(0.05)
    assert counters.take() == (1, 7) and fanout.pending == 0

    # Overloaded now: the next passes start at a different listener each time.
    firsts = set()
    for n in range(8):
        fanout.push(outputs, b"c" * 40, 127, 0, 960 * (n + 2), counters)
        firsts.add(next(out.ssrc for out in outputs if out.sent_at == fanout_now(outputs)))
        time.sleep(0.02)  # noqa: ASYNC251
        await asyncio.sleep(0.01)
    assert len(firsts) > 1


def fanout_now(outputs: list[Output]) -> float:
    return max(out.sent_at for out in outputs)


async def test_a_small_pass_runs_at_once() -> None:
    fanout, counters = FanOut(chunk=4), Counters()
    fanout.push([Output(), Output()], b"x", 127, 0, 0, counters)  # not started: skipped
    assert fanout.pending == 0 and counters.forwarded == 0


def test_sender_reports_describe_each_stream_that_sent(
    new_listener: NewListener,
) -> None:
    listener = new_listener()
    a, b, silent = started(listener, 7001), started(listener, 7002), started(listener, 7003)
    send_to_all([a, b], b"y" * 50, 127, 0, 48_000, 1_700_000_000.5)
    send_to_all([a], b"y" * 70, 127, 0, 48_960, 1_700_000_000.52)

    packets = RtcpPacket.parse(sender_reports([a, b, silent], "my-cname"))
    reports = {p.ssrc: p.sender_info for p in packets if isinstance(p, RtcpSrPacket)}
    assert set(reports) == {7001, 7002}  # nothing sent yet: no report
    assert (reports[7001].packet_count, reports[7001].octet_count) == (2, 120)
    assert (reports[7002].packet_count, reports[7002].octet_count) == (1, 50)
    assert reports[7001].rtp_timestamp == a.last_ts
    seconds = (reports[7001].ntp_timestamp >> 32) - 2_208_988_800
    assert seconds == 1_700_000_000 and reports[7001].ntp_timestamp & 0xFFFFFFFF > 0
    sdes = next(p for p in packets if isinstance(p, RtcpSdesPacket))
    assert {(c.ssrc, c.items[0][1]) for c in sdes.chunks} == {
        (7001, b"my-cname"),
        (7002, b"my-cname"),
    }
    assert sender_reports([silent], "x") == b""


def test_a_relay_in_fast_mode_hands_packets_to_the_fanout() -> None:
    relay = RoomRelay(Counters(), mode="fast", fanout=FanOut())
    relay.set_allowed("alice", True)
    source = relay.source("alice")
    source.receiving = True
    slots = [Output()]
    assert relay.assign("bob", slots) == 0
    assert slots[0].source is source and source.fanout is relay.fanout


def rtp(n: int, *, ts: int, level: int = 20) -> RtpPacket:
    packet = RtpPacket(payload_type=111, sequence_number=n, timestamp=ts % (1 << 32))
    packet.payload = bytes([n]) * 40
    packet.extensions.audio_level = (True, level)
    return packet
