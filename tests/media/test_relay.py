"""The forwarding core as plain objects: queues, gating, slot assignment, the timeline."""

from __future__ import annotations

import asyncio
import itertools

import av
import pytest
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from rooms.media.relay import Counters, ForwardTrack, RoomRelay, Source


def rtp(n: int, *, ts: int | None = None, level: int | None = 20) -> RtpPacket:
    packet = RtpPacket(
        payload_type=111,
        sequence_number=n % 65536,
        timestamp=(n * 960 if ts is None else ts) % (1 << 32),
        payload=n.to_bytes(4, "big") * 10,
    )
    if level is not None:
        packet.extensions.audio_level = (True, level)
    return packet


def payload_index(item: av.Packet | av.AudioFrame) -> int:
    assert isinstance(item, av.Packet)
    return int.from_bytes(bytes(item)[:4], "big")


async def test_a_stuck_listener_drops_its_own_oldest_packets_only() -> None:
    counters = Counters()
    source = Source("alice", counters, allowed=True, receiving=True)
    live, stuck = ForwardTrack(counters, maxlen=16), ForwardTrack(counters, maxlen=16)
    source.attach(live)
    source.attach(stuck)
    await asyncio.sleep(0)
    stuck._started = live._started = True  # both senders are running

    got = []
    for n in range(100):
        source.on_rtp(rtp(n))
        got.append(payload_index(await live.recv()))  # a sender that keeps up
    assert got == list(range(100))
    assert stuck.queued == 16  # bounded: memory does not grow
    assert [payload_index(await stuck.recv()) for _ in range(16)] == list(range(84, 100))
    assert counters.take() == (200, 84)


def test_one_packet_object_is_shared_by_every_listener() -> None:
    counters = Counters()
    source = Source("alice", counters, allowed=True, receiving=True)
    tracks = [ForwardTrack(counters) for _ in range(5)]
    for track in tracks:
        source.attach(track)
    source.on_rtp(rtp(1))
    items = [t._queue[0] for t in tracks]
    assert all(item is items[0] for item in items)  # built once, not per listener
    assert isinstance(items[0], av.Packet) and items[0].time_base.denominator == 48000


def test_a_gated_source_forwards_nothing_and_counts_drops() -> None:
    counters = Counters()
    source = Source("alice", counters, allowed=False, receiving=True)
    track = ForwardTrack(counters)
    source.attach(track)
    for n in range(10):
        source.on_rtp(rtp(n))
    assert track.queued == 0 and source.received == 10
    assert counters.take() == (0, 10)
    assert source.meter.take() == (0, 0)  # a muted speaker is never "speaking"


def test_empty_payloads_are_not_forwarded() -> None:
    counters = Counters()
    source = Source("alice", counters, allowed=True, receiving=True)
    track = ForwardTrack(counters)
    source.attach(track)
    packet = rtp(1)
    packet.payload = b""
    source.on_rtp(packet)
    assert track.queued == 0


def test_timeline_unwraps_rtp_timestamps() -> None:
    counters = Counters()
    source = Source("alice", counters, allowed=True, receiving=True)
    track = ForwardTrack(counters, maxlen=10)
    source.attach(track)
    start = (1 << 32) - 2 * 960
    for i in range(4):
        source.on_rtp(rtp(i, ts=start + i * 960))
    pts = [int(item.pts or 0) for item in track._queue]
    assert [b - a for a, b in itertools.pairwise(pts)] == [960, 960, 960]


def test_sources_share_one_forward_moving_clock() -> None:
    counters = Counters()
    a = Source("a", counters, allowed=True, receiving=True)
    b = Source("b", counters, allowed=True, receiving=True)
    track = ForwardTrack(counters, maxlen=10)
    a.attach(track)
    a.on_rtp(rtp(0, ts=4_000_000_000))
    b.attach(track)  # the slot switches speaker: timestamps must not go backwards
    b.on_rtp(rtp(0, ts=5))
    first, second = (int(item.pts or 0) for item in track._queue)
    assert first > 0 and second >= first


async def test_a_stopped_track_ends_its_sender_and_leaves_its_source() -> None:
    counters = Counters()
    source = Source("alice", counters, allowed=True, receiving=True)
    track = ForwardTrack(counters)
    source.attach(track)
    waiting = asyncio.create_task(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await waiting
    assert track.source is None and source.outputs == []


async def test_packets_queued_before_the_sender_starts_are_dropped_as_stale() -> None:
    counters = Counters()
    source = Source("alice", counters, allowed=True, receiving=True)
    track = ForwardTrack(counters)
    source.attach(track)
    for n in range(5):
        source.on_rtp(rtp(n))
    first = asyncio.create_task(track.recv())
    await asyncio.sleep(0)
    source.on_rtp(rtp(5))
    assert payload_index(await first) == 5


def test_slots_follow_live_sources_and_are_reused() -> None:
    relay = RoomRelay(Counters())
    for user in ("alice", "bob", "carol"):
        relay.set_allowed(user, True)
        relay.source(user).receiving = True
    slots = [ForwardTrack(relay.counters)]
    # carol listens to alice and bob: one slot is short; her own source is not wanted.
    assert relay.assign("carol", slots) == 1
    slots.append(ForwardTrack(relay.counters))
    assert relay.assign("carol", slots) == 0
    assert {s.source.user_id for s in slots if s.source} == {"alice", "bob"}

    relay.set_allowed("bob", False)  # muted: the slot is freed...
    assert relay.assign("carol", slots) == 0
    assert [s.source.user_id for s in slots if s.source] == ["alice"]
    relay.source("dave").receiving = True
    relay.set_allowed("dave", True)  # ...and reused by the next speaker, no new slot
    assert relay.assign("carol", slots) == 0
    assert {s.source.user_id for s in slots if s.source} == {"alice", "dave"}

    relay.drop_source("alice")  # alice's connection closed
    assert relay.assign("carol", slots) == 0
    assert [s.source.user_id for s in slots if s.source] == ["dave"]


def test_permission_recorded_before_the_source_exists_applies_to_it() -> None:
    relay = RoomRelay(Counters())
    relay.set_allowed("alice", True)
    assert relay.source("alice").allowed
    assert not relay.source("bob").allowed
