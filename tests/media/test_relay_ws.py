"""End to end: real server, real room WebSocket, real aiortc clients, real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.media.client import Inbound, RoomClient, goes_silent, hears_tone, room_socket
from tests.support import LiveServer, wait_for


@pytest.fixture
async def room(media_server: LiveServer) -> dict[str, Any]:
    async with media_server.client("alice") as http:
        answer = await http.post("/v1/rooms", json={"title": "Tone test"})
    assert answer.status_code == 201, answer.text
    room: dict[str, Any] = answer.json()
    return room


@pytest.fixture
async def clients() -> AsyncIterator[list[RoomClient]]:
    made: list[RoomClient] = []
    yield made
    for c in made:
        await c.close()


@pytest.fixture
def join(
    media_server: LiveServer, room: dict[str, Any], clients: list[RoomClient]
) -> Callable[..., Any]:
    async def join(
        user: str, *, speak: bool = False, tone: float | None = None, audio: bool = True
    ) -> RoomClient:
        client = RoomClient(room_socket(media_server.ws_url, room["id"]), user)
        clients.append(client)
        await client.connect()
        if audio:
            await client.start_audio(speak=speak, tone=tone)
        return client

    return join


def inbound_with(client: RoomClient, hz: float) -> Inbound | None:
    assert client.rtc is not None
    return next((i for i in client.rtc.inbound if hears_tone(i, hz)), None)


def dropped() -> float:
    return REGISTRY.get_sample_value("ephemera_relay_dropped_packets_total") or 0.0


async def test_host_tone_reaches_several_listeners(
    join: Callable[..., Any], room: dict[str, Any]
) -> None:
    alice = await join("alice", speak=True)
    listeners = [await join(name) for name in ("bob", "carol", "dave")]
    for c in listeners:
        await wait_for(lambda c=c: c.rtc.hears_tone(440), within=20)
    assert "ws_url" not in alice.welcome["room"]
    assert "ice_servers" in alice.welcome
    # Active speaker detection reaches everyone as a room event.
    await listeners[0].event("speaking", lambda e: e["user_ids"] == ["alice"], within=10)


async def test_promoted_listener_is_heard_and_host_mute_stops_forwarding(
    join: Callable[..., Any],
) -> None:
    alice = await join("alice", speak=True, tone=440)
    bob = await join("bob")
    dave = await join("dave", tone=660)  # a listener with a microphone ready
    await wait_for(lambda: bob.rtc.hears_tone(440), within=20)
    assert not dave.rtc.sending

    await dave.act("hand.raise")
    await alice.event("participant.updated", lambda e: e["participant"]["hand_raised"])
    await alice.act("hand.accept", user_id="dave")
    await wait_for(lambda: bob.rtc.hears_tone(660), within=20)  # dave is heard
    await wait_for(lambda: alice.rtc.hears_tone(660), within=20)

    # The host mutes dave. His client keeps sending (it ignores the mute); the server drops.
    track = inbound_with(bob, 660)
    assert track is not None
    before = dropped()
    await alice.act("mute", user_id="dave")
    await bob.event("participant.updated", lambda e: e["participant"]["muted"])
    assert await goes_silent(track)
    assert dave.rtc.sending
    assert dropped() > before + 20
    assert bob.rtc.hears_tone(440)  # alice is still heard


async def test_removed_participant_stops_receiving(join: Callable[..., Any]) -> None:
    alice = await join("alice", speak=True)
    bob = await join("bob")
    carol = await join("carol")
    await wait_for(lambda: bob.rtc.hears_tone() and carol.rtc.hears_tone(), within=20)

    await alice.act("remove", user_id="carol")
    await wait_for(lambda: carol.closed_code == 4403, within=10)
    await wait_for(lambda: carol.rtc.pc.connectionState == "closed", within=10)
    before = bob.rtc.packets
    await wait_for(lambda: bob.rtc.packets > before + 25, within=10)  # others unaffected


async def test_signaling_errors_come_back_as_error_events(join: Callable[..., Any]) -> None:
    bob = await join("bob", audio=False)
    await bob.send({"type": "rtc.answer", "sdp": "v=0", "ref": "r1"})
    error = await bob.event("error")
    assert error["code"] == "no_peer_connection" and error["ref"] == "r1"
    await bob.send({"type": "rtc.offer", "sdp": "garbage", "ref": "r2"})
    error = await bob.event("error", lambda e: e.get("ref") == "r2")
    assert error["code"] == "bad_sdp"
    await bob.start_audio()  # the socket and the room carry on
    await wait_for(lambda: bob.rtc.answers_received == 1, within=10)
