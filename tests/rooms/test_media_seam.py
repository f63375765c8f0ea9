"""The seam to the media relay (rooms.media.port): what the control plane calls, and when.

A recording MediaService stands in for the relay here (the relay has its own tests); the
server, Redis and WebSockets are real.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rooms.control.feature import RoomsFeature
from rooms.media.port import MediaService, SendJson
from server.errors import Conflict
from server.feature import Feature, ServiceFeature, Slot
from server.graph.feature import GraphFeature
from server.platform import Platform
from stories.feature import StoriesFeature
from tests.rooms.helpers import create_room, join
from tests.support import LiveServer, wait_for


class RecordingMedia:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def signal(
        self, room_id: str, user_id: str, message: dict[str, Any], send: SendJson
    ) -> None:
        self.calls.append(("signal", room_id, user_id, message))
        if message["type"] == "rtc.offer":
            if message["sdp"] == "too-many":
                raise Conflict("this room's audio is at capacity", code="media_full")
            await send({"type": "rtc.answer", "sdp": "answer-sdp"})
            await send({"type": "rtc.offer", "sdp": "server-offer"})

    async def set_publishing(self, room_id: str, user_id: str, allowed: bool) -> None:
        self.calls.append(("publishing", user_id, allowed))

    async def leave(self, room_id: str, user_id: str) -> None:
        self.calls.append(("leave", user_id))

    async def end_room(self, room_id: str) -> None:
        self.calls.append(("end_room", room_id))

    def publishing(self, user: str) -> list[bool]:
        return [c[2] for c in self.calls if c[0] == "publishing" and c[1] == user]


class RecordingMediaFeature(ServiceFeature[MediaService]):
    slot: Slot[MediaService] = Slot("media")

    def __init__(self, media: RecordingMedia) -> None:
        super().__init__()
        self.media = media

    async def start(self, platform: Platform) -> MediaService:
        return self.media


def with_media(media: RecordingMedia) -> list[Feature]:
    graph = GraphFeature()
    fake = RecordingMediaFeature(media)
    return [graph, StoriesFeature(graph), fake, RoomsFeature(graph, fake)]


@pytest.fixture
def media_server(make_server: Callable[..., LiveServer]) -> tuple[LiveServer, RecordingMedia]:
    media = RecordingMedia()
    return make_server(features=lambda: with_media(media), rate_ws_message="1000/second"), media


async def test_publishing_follows_role_and_mute(
    media_server: tuple[LiveServer, RecordingMedia],
) -> None:
    srv, media = media_server
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    host = await join(srv.ws_url, room, "alice")
    bob = await join(srv.ws_url, room, "bob")
    await wait_for(
        lambda: media.publishing("alice") == [True] and media.publishing("bob") == [False]
    )

    async def expect(*values: bool) -> None:
        await wait_for(lambda: media.publishing("bob") == [False, *values])

    await bob.send("hand.raise")
    await host.updated("bob", hand_raised=True)
    assert media.publishing("bob") == [False]  # a raised hand changes nothing
    await host.send("hand.accept", user_id="bob")
    await expect(True)
    await host.send("mute", user_id="bob")
    await expect(True, False)
    await bob.send("unmute")
    await expect(True, False, True)
    await host.send("role.cohost", user_id="bob")  # still allowed: no new call
    await host.updated("bob", role="cohost")
    await host.send("role.demote", user_id="bob")
    await host.updated("bob", role="speaker")
    await bob.send("role.step_down")
    await expect(True, False, True, False)

    await host.send("remove", user_id="bob")
    await wait_for(lambda: ("leave", "bob") in media.calls)
    await host.send("room.end")
    await wait_for(lambda: ("end_room", room) in media.calls)
    assert media.calls.count(("end_room", room)) == 1


async def test_signaling_goes_through_the_relay(
    media_server: tuple[LiveServer, RecordingMedia],
) -> None:
    srv, media = media_server
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    bob = await join(srv.ws_url, room, "bob")
    await bob.send("rtc.offer", sdp="client-offer", ref="o1")
    assert await bob.next("rtc.answer") == {"type": "rtc.answer", "sdp": "answer-sdp"}
    assert (await bob.next("rtc.offer"))["sdp"] == "server-offer"
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
    await bob.send("rtc.ice", candidate=candidate)
    await bob.send("rtc.ice", candidate=None)
    await bob.send("rtc.answer", sdp="client-answer")
    await wait_for(lambda: len([c for c in media.calls if c[0] == "signal"]) == 4)
    signals = [c[3] for c in media.calls if c[0] == "signal"]
    assert signals == [
        {"type": "rtc.offer", "sdp": "client-offer"},
        {
            "type": "rtc.ice",
            "candidate": {**candidate, "sdpMLineIndex": None},
        },
        {"type": "rtc.ice", "candidate": None},
        {"type": "rtc.answer", "sdp": "client-answer"},
    ]
    await bob.send("rtc.offer", sdp="too-many", ref="o2")
    err = await bob.error()
    assert err["code"] == "media_full" and err["ref"] == "o2"

    await bob.close()
    await wait_for(lambda: ("leave", "bob") in media.calls)
