"""The room WebSocket against a real server and Redis: joining, every role rule, refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rooms.control.feature import RoomsFeature
from server.feature import Feature
from server.graph.feature import GraphFeature
from stories.feature import StoriesFeature
from tests.rooms.helpers import Peer, create_room, join, participant, refused
from tests.support import LiveServer


@dataclass
class Room:
    server: LiveServer
    id: str
    peers: list[Peer]

    async def join(self, user: str) -> Peer:
        peer = await join(self.server.ws_url, self.id, user)
        self.peers.append(peer)
        return peer


@pytest.fixture
async def room_of(
    make_server: Callable[..., LiveServer],
) -> AsyncIterator[Callable[..., Any]]:
    rooms: list[Room] = []

    async def make(host: str = "alice", server: LiveServer | None = None, **body: Any) -> Room:
        srv = server or make_server(rate_ws_message="1000/second")
        async with srv.client(host) as c:
            data = await create_room(c, **body)
        room = Room(srv, data["id"], [])
        rooms.append(room)
        return room

    yield make
    for room in rooms:
        for peer in room.peers:
            await peer.close()


async def stage(room: Room, host: Peer, user: str) -> Peer:
    """``user`` joins and is brought on stage through a raised hand."""
    peer = await room.join(user)
    await peer.send("hand.raise")
    await host.updated(user, hand_raised=True)
    await host.send("hand.accept", user_id=user)
    await peer.updated(user, role="speaker")
    return peer


async def test_join_sends_full_state_then_events(room_of: Callable[..., Any]) -> None:
    room = await room_of(title="Morning show")
    host = await room.join("alice")
    w = host.welcome
    assert w["protocol"] == 1 and w["you"] == "alice"
    assert w["room"]["title"] == "Morning show" and w["room"]["state"] == "live"
    assert participant(w, "alice") == {
        "user_id": "alice",
        "role": "host",
        "muted": False,
        "hand_raised": False,
        "invited": False,
        "speaking": False,
        "connected": True,
    }
    assert isinstance(w["ice_servers"], list) and "👏" in w["reactions"]

    bob = await room.join("bob")
    assert participant(bob.welcome, "bob")["role"] == "listener"  # type: ignore[index]
    assert participant(bob.welcome, "alice")["role"] == "host"  # type: ignore[index]
    joined = await host.next("participant.joined")
    assert joined["participant"]["user_id"] == "bob"

    await bob.send("hand.raise")
    await host.updated("bob", hand_raised=True)
    carol = await room.join("carol")
    assert participant(carol.welcome, "bob")["hand_raised"] is True  # type: ignore[index]


async def test_hand_raise_accept_and_dismiss(room_of: Callable[..., Any]) -> None:
    room = await room_of()
    host = await room.join("alice")
    bob = await stage(room, host, "bob")
    await host.updated("bob", role="speaker")

    carol = await room.join("carol")
    await carol.send("hand.raise")
    await host.updated("carol", hand_raised=True)
    await host.send("hand.dismiss", user_id="carol")
    await carol.updated("carol", hand_raised=False, role="listener")
    await carol.send("hand.raise")
    await carol.updated("carol", hand_raised=True)
    await carol.send("hand.lower")
    # carol's own view: the host's next "hand down" event could still be the dismissal's.
    await carol.updated("carol", hand_raised=False)

    # Only a listener's raised hand can be accepted, and only by the host or a co-host.
    await host.send("hand.accept", user_id="carol", ref="a1")
    err = await host.error()
    assert err["code"] == "no_raised_hand" and err["ref"] == "a1"
    await carol.send("hand.raise")
    await bob.updated("carol", hand_raised=True)
    await bob.send("hand.accept", user_id="carol", ref="b1")
    err = await bob.error()
    assert err == {
        "type": "error",
        "code": "not_allowed",
        "message": err["message"],
        "ref": "b1",
    }
    await host.send("ping")
    await host.next("pong")
    assert not host.has("participant.updated", lambda e: e["participant"]["role"] == "speaker")


async def test_invited_only_room(room_of: Callable[..., Any]) -> None:
    room = await room_of(speaker_policy="invited_only")
    host = await room.join("alice")
    bob = await room.join("bob")
    await bob.send("hand.raise", ref="h")
    assert (await bob.error())["code"] == "hands_disabled"
    await bob.send("invite.accept")
    assert (await bob.error())["code"] == "not_invited"

    await host.send("invite.send", user_id="bob")
    invite = await bob.next("invite.received")
    assert invite == {"type": "invite.received", "from_user": "alice"}
    assert (await host.updated("bob"))["invited"] is True
    await bob.send("invite.accept")
    p = await host.updated("bob", role="speaker")
    assert p["invited"] is False and p["muted"] is False

    carol = await room.join("carol")
    await host.send("invite.send", user_id="carol")
    await carol.next("invite.received")
    await carol.send("invite.decline")
    await host.updated("carol", invited=False, role="listener")
    # Other listeners do not receive someone else's invitation.
    await asyncio.sleep(0.2)
    assert not bob.has("invite.received")


async def test_mute_rules(room_of: Callable[..., Any]) -> None:
    room = await room_of()
    host = await room.join("alice")
    bob = await stage(room, host, "bob")
    carol = await room.join("carol")

    await carol.send("mute", user_id="bob", ref="m")  # a listener trying to mute
    assert (await carol.error())["code"] == "not_allowed"
    await carol.send("mute")  # a listener has no microphone to mute
    assert (await carol.error())["code"] == "not_on_stage"
    await bob.send("mute", user_id="alice")  # a speaker muting the host
    assert (await bob.error())["code"] == "not_allowed"

    await host.send("mute", user_id="bob")
    await bob.updated("bob", muted=True)
    await host.send("unmute", ref="u")  # unmute is for oneself; the host is not muted
    await host.send("ping")
    await host.next("pong")
    await bob.send("unmute")
    await carol.updated("bob", muted=False)
    await bob.send("mute")
    await carol.updated("bob", muted=True)
    assert not host.has("error")


async def test_roles_cohost_demote_step_down(room_of: Callable[..., Any]) -> None:
    room = await room_of()
    host = await room.join("alice")
    bob = await stage(room, host, "bob")
    carol = await room.join("carol")

    await host.send("role.cohost", user_id="carol")
    assert (await host.error())["code"] == "not_a_speaker"
    await bob.send("role.cohost", user_id="bob")
    assert (await bob.error())["code"] == "not_allowed"
    await host.send("role.cohost", user_id="bob")
    await carol.updated("bob", role="cohost")

    # A co-host moderates listeners and speakers, never the host or another co-host.
    await bob.send("remove", user_id="alice", ref="r")
    err = await bob.error()
    assert err["code"] == "cannot_moderate" and err["ref"] == "r"
    await bob.send("role.demote", user_id="alice")
    assert (await bob.error())["code"] == "cannot_moderate"
    await bob.send("mute", user_id="alice")
    assert (await bob.error())["code"] == "cannot_moderate"

    await carol.send("hand.raise")
    await bob.updated("carol", hand_raised=True)
    await bob.send("hand.accept", user_id="carol")  # a co-host brings people on stage
    await host.updated("carol", role="speaker")
    await bob.send("role.demote", user_id="carol")
    await host.updated("carol", role="listener")

    await host.send("role.demote", user_id="bob")
    await carol.updated("bob", role="speaker")
    await bob.send("role.step_down")
    await carol.updated("bob", role="listener", muted=False)
    await host.send("role.step_down")
    assert (await host.error())["code"] == "host_cannot_step_down"


async def test_caps(make_server: Callable[..., LiveServer], room_of: Callable[..., Any]) -> None:
    srv = make_server(max_speakers=2, max_cohosts=1, rate_ws_message="1000/second")
    room = await room_of(server=srv)
    host = await room.join("alice")
    bob = await stage(room, host, "bob")
    await stage(room, host, "carol")
    dave = await room.join("dave")
    await dave.send("hand.raise")
    await host.updated("dave", hand_raised=True)
    await host.send("hand.accept", user_id="dave")
    assert (await host.error())["code"] == "speakers_full"
    await host.send("invite.send", user_id="dave")
    assert (await host.error())["code"] == "speakers_full"

    await host.send("role.cohost", user_id="bob")  # frees a speaker slot
    await dave.updated("bob", role="cohost")
    await host.send("hand.accept", user_id="dave")
    await bob.updated("dave", role="speaker")
    await host.send("role.cohost", user_id="dave")
    assert (await host.error())["code"] == "cohosts_full"
    # Demoting the co-host would make three speakers.
    await host.send("role.demote", user_id="bob")
    assert (await host.error())["code"] == "speakers_full"
    roles = {p["user_id"]: p["role"] for p in (await room.join("erin")).welcome["participants"]}
    assert roles == {
        "alice": "host",
        "bob": "cohost",
        "carol": "speaker",
        "dave": "speaker",
        "erin": "listener",
    }


async def test_concurrent_accepts_never_exceed_the_cap(
    make_server: Callable[..., LiveServer], room_of: Callable[..., Any]
) -> None:
    srv = make_server(max_speakers=1, rate_ws_message="1000/second")
    room = await room_of(server=srv)
    host = await room.join("alice")
    bob = await stage(room, host, "bob")
    await host.send("role.cohost", user_id="bob")
    await bob.updated("bob", role="cohost")
    hands = ["carol", "dave", "erin", "fred"]
    for user in hands:
        peer = await room.join(user)
        await peer.send("hand.raise")
        await host.updated(user, hand_raised=True)
        await bob.updated(user, hand_raised=True)
    # Both moderators accept two hands each, all at once, for the one free speaker slot.
    await asyncio.gather(
        *(mod.send("hand.accept", user_id=u) for mod, u in zip([host, bob] * 2, hands, strict=True))
    )
    for mod in (host, bob):
        await mod.send("ping")
        await mod.next("pong")
    refusals = [e for mod in (host, bob) for e in mod.events if e["type"] == "error"]
    assert [e["code"] for e in refusals] == ["speakers_full"] * 3
    late = await room.join("zed")
    speakers = [p for p in late.welcome["participants"] if p["role"] == "speaker"]
    assert len(speakers) == 1


async def test_remove_and_rejoin_refused(room_of: Callable[..., Any]) -> None:
    room = await room_of()
    host = await room.join("alice")
    bob = await room.join("bob")
    carol = await room.join("carol")
    await carol.send("remove", user_id="bob")
    assert (await carol.error())["code"] == "not_allowed"
    await host.send("remove", user_id="nobody")
    assert (await host.error())["code"] == "participant_not_found"
    await host.send("remove", user_id="alice")
    assert (await host.error())["code"] == "self_reference"

    await host.send("remove", user_id="bob")
    assert await bob.next("removed") == {"type": "removed"}
    assert (await bob.wait_closed())[0] == 4403
    left = await carol.next("participant.left")
    assert left == {"type": "participant.left", "user_id": "bob", "reason": "removed"}
    status, body = await refused(room.server.ws_url, room.id, "bob")
    assert status == 403 and body["error"]["code"] == "removed"
    assert participant((await room.join("dave")).welcome, "bob") is None


async def test_reactions_are_broadcast_and_rate_limited(
    make_server: Callable[..., LiveServer], room_of: Callable[..., Any]
) -> None:
    srv = make_server(rate_room_reaction="2/minute", rate_ws_message="1000/second")
    room = await room_of(server=srv)
    host = await room.join("alice")
    bob = await room.join("bob")
    await bob.send("react", emoji="🔥")
    assert await host.next("reaction") == {"type": "reaction", "user_id": "bob", "emoji": "🔥"}
    await bob.send("react", emoji="👏")
    await host.next("reaction")
    await bob.send("react", emoji="👏", ref="third")
    err = await bob.error()
    assert err["code"] == "rate_limited" and err["ref"] == "third"
    await bob.send("react", emoji="not-an-emoji")
    assert (await bob.error())["code"] == "invalid_message"
    await host.send("react", emoji="😂")  # the limit is per user
    await bob.next("reaction")


async def test_message_rate_limit(
    make_server: Callable[..., LiveServer], room_of: Callable[..., Any]
) -> None:
    srv = make_server(rate_ws_message="5/minute")
    room = await room_of(server=srv)
    bob = await room.join("bob")
    for _ in range(5):
        await bob.send("ping")
    for _ in range(5):
        await bob.next("pong")
    await bob.send("ping")
    assert (await bob.error())["code"] == "rate_limited"


async def test_malformed_messages_get_errors_and_change_nothing(
    room_of: Callable[..., Any],
) -> None:
    room = await room_of()
    host = await room.join("alice")
    bob = await room.join("bob")
    cases: list[tuple[str | bytes, str]] = [
        ("{not json", "malformed_json"),
        ("[1, 2]", "invalid_message"),
        ('"hello"', "invalid_message"),
        ("{}", "invalid_message"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": 7}', "unknown_type"),
        ('{"type": "remove"}', "invalid_message"),
        ('{"type": "remove", "user_id": "no spaces allowed"}', "invalid_message"),
        ('{"type": "remove", "user_id": ["x"]}', "invalid_message"),
        ('{"type": "rtc.ice", "candidate": {"candidate": 5}}', "invalid_message"),
        (b"\x00\x01binary", "invalid_message"),
    ]
    for raw, code in cases:
        await bob.send_raw(raw)
        err = await bob.error()
        assert err["code"] == code, (raw, err)
        assert err["message"]
    await bob.send_raw(json.dumps({"type": "mute", "user_id": 5, "ref": "r9"}))
    assert (await bob.error())["ref"] == "r9"
    # The room still works for everyone.
    await bob.send("hand.raise")
    await host.updated("bob", hand_raised=True)


async def test_oversized_message_closes_1009(
    make_server: Callable[..., LiveServer], room_of: Callable[..., Any]
) -> None:
    srv = make_server(ws_max_message_bytes=2048)
    room = await room_of(server=srv)
    host = await room.join("alice")
    bob = await room.join("bob")
    await bob.send("react", emoji="x" * 5000)
    assert (await bob.wait_closed())[0] == 1009
    await host.send("ping")
    await host.next("pong")


async def test_refused_joins(
    make_server: Callable[..., LiveServer], room_of: Callable[..., Any]
) -> None:
    room = await room_of()
    ws = room.server.ws_url
    status, body = await refused(ws, "no-such-room", "bob")
    assert status == 404 and body["error"]["code"] == "room_not_found"
    status, body = await refused(ws, "bad$id", "bob")
    assert status == 404
    async with room.server.client("alice") as a:
        assert (await a.put("/v1/me/blocks/mallory")).status_code == 204
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        later = await create_room(a, scheduled_for=tomorrow.isoformat())
    status, body = await refused(ws, room.id, "mallory")
    assert status == 403 and body["error"]["code"] == "blocked"
    status, body = await refused(ws, later["id"], "bob")
    assert status == 409 and body["error"]["code"] == "room_not_live"

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as exc:
        await connect(f"{ws}/v1/rooms/{room.id}/ws")
    assert exc.value.response.status_code == 401


async def test_host_ends_the_room(room_of: Callable[..., Any]) -> None:
    room = await room_of()
    host = await room.join("alice")
    bob = await room.join("bob")
    await bob.send("room.end")
    assert (await bob.error())["code"] == "not_allowed"
    await host.send("room.end")
    assert await bob.next("room.ended") == {"type": "room.ended", "reason": "ended_by_host"}
    assert (await bob.wait_closed())[0] == 1000
    assert (await host.wait_closed())[0] == 1000
    status, body = await refused(room.server.ws_url, room.id, "carol")
    assert status == 409 and body["error"]["code"] == "room_ended"
    async with room.server.client("bob") as b:
        r = (await b.get(f"/v1/rooms/{room.id}")).json()
    assert r["state"] == "ended" and r["ended_at"] and r["listener_count"] == 0


async def test_second_socket_replaces_the_first(room_of: Callable[..., Any]) -> None:
    room = await room_of()
    host = await room.join("alice")
    first = await room.join("bob")
    await first.send("hand.raise")
    await host.updated("bob", hand_raised=True)
    second = await room.join("bob")
    assert (await first.wait_closed())[0] == 4409
    assert participant(second.welcome, "bob")["hand_raised"] is True  # type: ignore[index]
    await second.send("hand.lower")
    await host.updated("bob", hand_raised=False, connected=True)


async def test_rtc_without_media_relay(
    make_server: Callable[..., LiveServer],
    room_of: Callable[..., Any],
) -> None:
    def without_media() -> list[Feature]:
        graph = GraphFeature()
        return [graph, StoriesFeature(graph), RoomsFeature(graph, None)]

    room = await room_of(server=make_server(features=without_media))
    bob = await room.join("bob")
    await bob.send("rtc.offer", sdp="v=0\r\n", ref="o")
    err = await bob.error()
    assert err["code"] == "media_unavailable" and err["ref"] == "o"
    assert "ws_url" not in bob.welcome["room"]


def metric(text: str, sample: str) -> float:
    """The value of one sample (name with its labels) in a Prometheus page, 0 when absent."""
    for line in text.splitlines():
        if line.rsplit(" ", 1)[0] == sample:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics(room_of: Callable[..., Any]) -> None:
    room = await room_of()
    async with room.server.client() as anon:

        async def page() -> str:
            return (await anon.get("/metrics")).text

        raised = 'ephemera_ws_messages_total{type="hand.raise"}'
        before = metric(await page(), raised)
        host = await room.join("alice")
        bob = await room.join("bob")
        await bob.send("hand.raise")
        await host.updated("bob", hand_raised=True)
        text = await page()
        assert metric(text, raised) == before + 1
        assert metric(text, "ephemera_room_connections") >= 2
        assert metric(text, "ephemera_live_rooms") >= 1
        await bob.close()
        await host.close()
