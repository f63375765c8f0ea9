"""The relay service with real aiortc peers, signaling through MediaService directly."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from rooms.media.service import RelayMediaService
from server.errors import Conflict, ValidationFailed
from tests.media.client import Loopback, RtcPeer
from tests.support import wait_for

ROOM = "room1"


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def join(
    media: RelayMediaService,
    participants: list[Loopback],
    user: str,
    *,
    speak: bool = False,
    tone: float | None = None,
    room: str = ROOM,
    **kw: Any,
) -> Loopback:
    if speak:
        tone = tone or 440.0
        await media.set_publishing(room, user, True)
    p = Loopback(media, room, user, tone=tone, **kw)
    participants.append(p)
    await p.rtc.start(speak=speak)
    return p


async def goes_silent(count: Callable[[], int], within: float = 10.0) -> bool:
    """True once no RTP packet arrives for a whole second (in-flight ones may land first)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = count()
        await asyncio.sleep(1.0)
        if count() == before:
            return True
    return False


@pytest.mark.parametrize("mode", ["fast", "stock"])
async def test_tone_reaches_every_listener(
    make_media: Callable[..., Any], participants: list[Loopback], mode: str
) -> None:
    media = await make_media(relay_mode=mode)
    await join(media, participants, "alice", speak=True)
    listeners = [await join(media, participants, name) for name in ("bob", "carol", "dave")]
    for p in listeners:
        await wait_for(lambda p=p: p.rtc.hears_tone(440), within=15)
    assert media.stats() == {"rooms": 1, "peers": 4, "sources": 1, "slots": 4}
    # No re-encoding on the way: what listeners get is exactly what alice's encoder made.
    assert all(p.rtc.offers_received == 0 for p in listeners)
    assert media.peer_state(ROOM, "bob") == "connected"


async def test_gating_stops_forwarding_on_the_server(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    alice = await join(media, participants, "alice", speak=True)
    bob = await join(media, participants, "bob")
    await wait_for(lambda: bob.rtc.hears_tone(440), within=15)
    dropped = counter("ephemera_relay_dropped_packets_total")

    await media.set_publishing(ROOM, "alice", False)  # what a host's mute does
    source = media.rooms[ROOM].relay.sources["alice"]
    received = source.received
    assert await goes_silent(lambda: bob.rtc.packets)
    # alice's client still sends (a muted client could be lying); the server drops it.
    assert source.received > received + 20
    assert alice.rtc.sending
    await wait_for(lambda: counter("ephemera_relay_dropped_packets_total") > dropped + 20)

    await media.set_publishing(ROOM, "alice", True)
    before = bob.rtc.packets
    await wait_for(lambda: bob.rtc.packets > before + 25, within=10)
    assert bob.rtc.offers_received == 0  # the freed slot was reused: no renegotiation


async def test_leaving_listener_is_closed_and_others_keep_hearing(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    await join(media, participants, "alice", speak=True)
    bob = await join(media, participants, "bob")
    carol = await join(media, participants, "carol")
    await wait_for(lambda: bob.rtc.hears_tone() and carol.rtc.hears_tone(), within=15)

    await media.leave(ROOM, "bob")
    assert media.peer_state(ROOM, "bob") is None
    await wait_for(lambda: bob.rtc.pc.connectionState == "closed", within=10)
    before = carol.rtc.packets
    await wait_for(lambda: carol.rtc.packets > before + 25, within=10)
    assert media.stats()["peers"] == 2


async def test_new_speaker_reaches_listeners_through_renegotiation(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    await join(media, participants, "alice", speak=True, tone=440)
    bob = await join(media, participants, "bob")
    await wait_for(lambda: bob.rtc.hears_tone(440), within=15)

    carol = await join(media, participants, "carol", speak=True, tone=660)
    await wait_for(lambda: bob.rtc.hears_tone(440) and bob.rtc.hears_tone(660), within=15)
    assert bob.rtc.offers_received == 1 and len(bob.rtc.inbound) == 2
    await wait_for(lambda: carol.rtc.hears_tone(440), within=15)  # speakers hear each other


async def test_a_new_speaker_while_our_offer_awaits_its_answer(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    """Slots are never added while a negotiation is in flight (aiortc would then refuse the
    answer): they wait for the answer, and come with the next offer."""
    await join(media, participants, "alice", speak=True, tone=440)
    bob = await join(media, participants, "bob")
    await wait_for(lambda: bob.rtc.hears_tone(440), within=15)
    bob._tasks[0].cancel()  # bob's messages to the server are held back for a while
    await join(media, participants, "carol", speak=True, tone=660)
    await wait_for(lambda: bob.rtc.answers_received + bob.rtc.offers_received >= 1, 15)
    await wait_for(lambda: bob.to_server.qsize() >= 1, within=15)  # his answer, held
    await join(media, participants, "dave", speak=True, tone=880)
    await wait_for(lambda: media.stats()["sources"] == 3, within=15)

    bob._tasks[0] = asyncio.create_task(bob._pump_server())  # the answer arrives late
    for hz in (440, 660, 880):
        await wait_for(lambda hz=hz: bob.rtc.hears_tone(hz), within=20)
    assert not bob.errors


async def test_promoted_listener_is_invited_to_publish_and_heard(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    alice = await join(media, participants, "alice", speak=True, tone=440)
    bob = await join(media, participants, "bob", tone=660)  # a mic ready, not sending
    await wait_for(lambda: bob.rtc.hears_tone(440), within=15)
    assert not bob.rtc.sending

    await media.set_publishing(ROOM, "bob", True)  # hand accepted
    await wait_for(lambda: alice.rtc.hears_tone(660), within=15)
    offer = next(m for m in bob.received if m["type"] == "rtc.offer")
    assert offer["publish"] is True


def chrome_like(sdp: str) -> str:
    """A browser's numbering: Opus as payload type 111, audio level id 1, mid id 4."""
    sdp = re.sub(r"(m=audio \d+ UDP/TLS/RTP/SAVPF) 96", r"\1 111", sdp)
    sdp = sdp.replace("a=rtpmap:96 opus", "a=rtpmap:111 opus")
    sdp = sdp.replace("a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap:4 MID")
    sdp = sdp.replace("a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=extmap:1 AL")
    sdp = sdp.replace("a=extmap:4 MID", "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid")
    return sdp.replace("a=extmap:1 AL", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level")


async def test_server_offers_keep_the_clients_payload_type_and_extension_ids(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    alice = await join(media, participants, "alice", speak=True, tone=440, munge_offer=chrome_like)
    bob = await join(media, participants, "bob", munge_offer=chrome_like)
    await wait_for(lambda: bob.rtc.hears_tone(440), within=15)
    await join(media, participants, "carol", speak=True, tone=660, munge_offer=chrome_like)
    await wait_for(lambda: bob.rtc.hears_tone(440) and bob.rtc.hears_tone(660), within=15)
    await wait_for(lambda: alice.rtc.hears_tone(660), within=15)

    offer = next(m for m in bob.received if m["type"] == "rtc.offer")["sdp"]
    assert "a=rtpmap:111 opus/48000/2" in offer and "a=rtpmap:96" not in offer
    assert "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level" in offer
    assert "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid" in offer
    # alice's audio levels still parse after the re-offer: she is detected as speaking.
    await wait_for(lambda: "alice" in media.speaking(ROOM), within=10)


async def test_glare_server_is_impolite(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    await join(media, participants, "alice", speak=True, tone=440)
    bob = await join(media, participants, "bob")
    await wait_for(lambda: bob.rtc.hears_tone(440), within=15)

    # Hold the server's next offer to bob, and make bob offer at the same time.
    held: list[dict[str, Any]] = []
    deliver = bob._deliver

    async def hold(message: dict[str, Any]) -> None:
        if message["type"] == "rtc.offer":
            held.append(message)
        else:
            await deliver(message)

    peer = media.rooms[ROOM].peers["bob"]
    peer.send = hold
    await join(media, participants, "carol", speak=True, tone=660)
    await wait_for(lambda: bool(held), within=10)
    colliding = await bob.rtc.pc.createOffer()
    await media.signal(ROOM, "bob", {"type": "rtc.offer", "sdp": colliding.sdp}, hold)
    assert peer.pc.signalingState == "have-local-offer"  # ours stands, theirs is ignored

    peer.send = deliver
    await deliver(held[0])  # the polite client answers the server's offer
    await wait_for(lambda: bob.rtc.hears_tone(660) and bob.rtc.hears_tone(440), within=15)
    assert peer.pc.signalingState == "stable"
    assert not bob.errors


async def test_speaking_changes_are_sent_to_participants(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    await join(media, participants, "alice", speak=True)
    bob = await join(media, participants, "bob")

    def speaking_events() -> list[list[str]]:
        return [m["user_ids"] for m in bob.received if m["type"] == "speaking"]

    await wait_for(lambda: ["alice"] in speaking_events(), within=10)
    assert media.speaking(ROOM) == ["alice"]
    await media.set_publishing(ROOM, "alice", False)
    await wait_for(lambda: speaking_events()[-1] == [], within=10)
    events = speaking_events()
    assert all(a != b for a, b in itertools.pairwise(events))  # changes only


async def test_new_client_connection_replaces_the_old_one(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    await join(media, participants, "alice", speak=True)
    bob = await join(media, participants, "bob")
    await wait_for(lambda: bob.rtc.hears_tone(), within=15)
    old_pc = media.rooms[ROOM].peers["bob"].pc

    bob2 = await join(media, participants, "bob")  # e.g. the page reloaded
    await wait_for(lambda: bob2.rtc.hears_tone(), within=15)
    assert media.rooms[ROOM].peers["bob"].pc is not old_pc
    assert old_pc.connectionState == "closed"
    assert media.stats()["peers"] == 2


async def test_end_room_and_shutdown_close_everything(
    make_media: Any, participants: list[Loopback]
) -> None:
    media: RelayMediaService = await make_media()
    await join(media, participants, "alice", speak=True)
    bob = await join(media, participants, "bob")
    other = await join(media, participants, "carol", room="room2")
    await wait_for(lambda: bob.rtc.hears_tone(), within=15)
    await wait_for(lambda: other.rtc.pc.connectionState == "connected", within=15)

    await media.end_room(ROOM)
    assert ROOM not in media.rooms
    await wait_for(lambda: bob.rtc.pc.connectionState == "closed", within=10)
    assert media.stats()["peers"] == 1

    await media.close()  # what the app's shutdown does
    assert media.stats() == {"rooms": 0, "peers": 0, "sources": 0, "slots": 0}
    await wait_for(lambda: other.rtc.pc.connectionState == "closed", within=10)


async def test_a_dead_listener_never_holds_back_the_others(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    await join(media, participants, "alice", speak=True)
    bob = await join(media, participants, "bob")
    carol = await join(media, participants, "carol")
    await wait_for(lambda: bob.rtc.hears_tone() and carol.rtc.hears_tone(), within=15)

    # bob's side closes (its DTLS says goodbye, no leave): nobody else notices.
    for task in bob._tasks:
        task.cancel()
    await bob.rtc.pc.close()
    before = carol.rtc.packets
    await wait_for(lambda: carol.rtc.packets > before + 50, within=10)


async def test_a_vanished_listener_is_closed_long_before_ice_consent_fails(
    make_media: Callable[..., Any], participants: list[Loopback]
) -> None:
    media = await make_media(relay_silence_seconds=2.0)
    await join(media, participants, "alice", speak=True)
    bob = await join(media, participants, "bob")
    carol = await join(media, participants, "carol")
    await wait_for(lambda: bob.rtc.hears_tone() and carol.rtc.hears_tone(), within=15)

    # bob's network goes away: not a packet more from him, not even a goodbye.
    bob.rtc.vanish()
    gone = time.monotonic()
    await wait_for(lambda: media.peer_state(ROOM, "bob") is None, within=15)
    # aioice alone would give up after about 30 s of failed consent checks.
    print(f"vanished listener closed after {time.monotonic() - gone:.1f} s")
    assert media.peer_state(ROOM, "carol") == "connected"
    before = carol.rtc.packets
    await wait_for(lambda: carol.rtc.packets > before + 25, within=10)


async def test_a_quiet_listener_is_asked_and_stays(
    make_media: Callable[..., Any], participants: list[Loopback]
) -> None:
    # An aiortc listener sends nothing on its own but a consent check every ~5 s: the
    # relay's own checks keep hearing from it.
    # (Not decoding, it sends no RTCP receiver reports either.)
    media = await make_media(relay_silence_seconds=2.0)
    await join(media, participants, "alice", speak=True)
    bob = await join(media, participants, "bob", decode=False)
    await wait_for(lambda: bob.rtc.packets > 25, within=15)
    await asyncio.sleep(7.0)
    assert media.peer_state(ROOM, "bob") == "connected"
    before = bob.rtc.packets
    await wait_for(lambda: bob.rtc.packets > before + 25, within=10)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "rtc.offer"}, "bad_rtc_message"),
        ({"type": "rtc.bogus", "sdp": "x"}, "bad_rtc_message"),
        ({"type": "rtc.offer", "sdp": "not sdp at all"}, "bad_sdp"),
        ({"type": "rtc.offer", "sdp": "v=0\r\n"}, "bad_sdp"),
    ],
)
async def test_bad_signaling_gets_a_clear_error(
    media: RelayMediaService, message: dict[str, Any], code: str
) -> None:
    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing should be sent")

    with pytest.raises(ValidationFailed) as err:
        await media.signal(ROOM, "bob", message, send)
    assert err.value.code == code
    assert media.stats()["peers"] == 0


async def test_offers_without_opus_or_with_video_are_refused(media: RelayMediaService) -> None:
    peer = RtcPeer(lambda m: asyncio.sleep(0))
    try:
        peer.pc.addTransceiver("video")
        offer = await peer.pc.createOffer()
        with pytest.raises(ValidationFailed) as err:
            await media.signal(ROOM, "bob", {"type": "rtc.offer", "sdp": offer.sdp}, peer.send)
        assert err.value.code == "audio_only"

        audio = RtcPeer(lambda m: asyncio.sleep(0))
        audio.pc.addTransceiver("audio")
        sdp = (await audio.pc.createOffer()).sdp
        await audio.pc.close()
        no_opus = re.sub(r"a=rtpmap:96 opus/48000/2\r\n", "", sdp).replace(" 96 ", " ")
        with pytest.raises(ValidationFailed) as err:
            await media.signal(ROOM, "bob", {"type": "rtc.offer", "sdp": no_opus}, peer.send)
        assert err.value.code == "opus_required"
    finally:
        await peer.pc.close()


async def test_answers_and_candidates_need_a_connection_and_a_pending_offer(
    media: RelayMediaService, participants: list[Loopback]
) -> None:
    async def send(message: dict[str, Any]) -> None:
        pass

    ice = {"candidate": "candidate:1 1 udp 1 192.0.2.9 9 typ host", "sdpMid": "0"}
    with pytest.raises(Conflict) as conflict:
        await media.signal(ROOM, "bob", {"type": "rtc.ice", "candidate": ice}, send)
    assert conflict.value.code == "no_peer_connection"

    bob = await join(media, participants, "bob")
    await wait_for(lambda: bob.rtc.answers_received == 1)
    with pytest.raises(Conflict) as conflict:
        await media.signal(ROOM, "bob", {"type": "rtc.answer", "sdp": "v=0"}, send)
    assert conflict.value.code == "no_offer"
    with pytest.raises(ValidationFailed) as invalid:
        bad = {"candidate": "candidate:nonsense", "sdpMid": "0"}
        await media.signal(ROOM, "bob", {"type": "rtc.ice", "candidate": bad}, send)
    assert invalid.value.code == "bad_ice"
    # A valid candidate and end-of-candidates are accepted.
    await media.signal(ROOM, "bob", {"type": "rtc.ice", "candidate": ice}, send)
    await media.signal(ROOM, "bob", {"type": "rtc.ice", "candidate": None}, send)
    assert media.peer_state(ROOM, "bob") is not None


async def test_server_uses_only_the_stun_servers_of_the_client_list(make_media: Any) -> None:
    servers = [
        {"urls": "stun:stun.example.org:3478"},
        {"urls": ["turn:turn.example.org"], "username": "u", "credential": "p"},
    ]
    media: RelayMediaService = await make_media(ice_servers=servers)
    assert [s.urls for s in media._rtc_config.iceServers or []] == ["stun:stun.example.org:3478"]
    plain: RelayMediaService = await make_media()
    assert plain._rtc_config.iceServers == []  # never aiortc's default (Google's STUN)
