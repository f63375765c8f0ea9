"""The ``actions`` each participant is told (welcome and ``actions`` events), over a real
server and Redis: a client can show exactly the controls the server would accept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.rooms.helpers import Peer, create_room, join
from tests.support import LiveServer

FAST = {"rate_ws_message": "1000/second"}
Actions = dict[str, Any]
# What a moderator may do about a raised hand while there is a free speaker seat.
MODERATE_A_HAND = ["hand.accept", "hand.dismiss", "invite.send", "remove"]


async def room_on(srv: LiveServer, **body: Any) -> str:
    async with srv.client("alice") as a:
        return str((await create_room(a, **body))["id"])


async def told(peer: Peer) -> Actions:
    """The next ``actions`` event of ``peer``."""
    return dict((await peer.next("actions"))["actions"])


async def quiet(peer: Peer) -> None:
    """Every event caused so far has reached ``peer`` (a round trip through the server)."""
    await peer.send("ping")
    await peer.next("pong")


async def test_actions_follow_hands_seats_and_roles(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(max_speakers=1, max_cohosts=1, **FAST)
    room = await room_on(srv)
    host = await join(srv.ws_url, room, "alice")
    mine = host.welcome["actions"]
    assert mine["self"] == ["mute", "room.end", "recording.start"]
    assert mine["targets"]["listener:hand"] == MODERATE_A_HAND
    assert mine["targets"]["host"] == []

    bob = await join(srv.ws_url, room, "bob")
    assert bob.welcome["actions"]["self"] == ["hand.raise"]
    assert all(m == [] for m in bob.welcome["actions"]["targets"].values())
    await bob.send("hand.raise")
    assert (await told(bob))["self"] == ["hand.lower"]
    await bob.send("hand.raise")  # nothing changes: no event
    await quiet(bob)
    assert not bob.has("actions")

    carol = await join(srv.ws_url, room, "carol")
    await carol.send("hand.raise")
    await told(carol)
    await host.send("hand.accept", user_id="bob")  # the one speaker seat
    assert (await told(bob))["self"] == ["mute", "role.step_down"]
    full = await told(host)
    assert full["targets"]["listener:hand"] == ["hand.dismiss", "remove"]
    assert full["targets"]["speaker"] == ["role.cohost", "role.demote", "mute", "remove"]
    await quiet(carol)
    assert not carol.has("actions")  # a raised hand is a raised hand, seat or no seat

    await host.send("role.cohost", user_id="bob")  # frees the seat, fills the co-hosts'
    cohost = await told(bob)
    assert cohost["self"] == ["mute", "role.step_down", "recording.start"]
    assert cohost["targets"]["listener:hand"] == MODERATE_A_HAND
    assert cohost["targets"]["host"] == [] and cohost["targets"]["cohost"] == []
    assert (await told(host))["targets"]["listener:hand"][0] == "hand.accept"
    for p in (host, bob, carol):
        await p.close()


async def test_invitations_in_an_invited_only_room(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(max_speakers=1, **FAST)
    room = await room_on(srv, speaker_policy="invited_only")
    host = await join(srv.ws_url, room, "alice")
    bob = await join(srv.ws_url, room, "bob")
    carol = await join(srv.ws_url, room, "carol")
    assert bob.welcome["actions"]["self"] == []  # no hands in this room
    await host.send("invite.send", user_id="bob")
    await bob.next("invite.received")
    assert (await told(bob))["self"] == ["invite.accept", "invite.decline"]
    await host.send("invite.send", user_id="carol")
    assert (await told(carol))["self"] == ["invite.accept", "invite.decline"]

    await bob.send("invite.accept")  # takes the one seat: carol can only decline now
    assert (await told(bob))["self"] == ["mute", "role.step_down"]
    assert (await told(carol))["self"] == ["invite.decline"]
    await bob.send("role.step_down")  # the seat is free again
    assert (await told(carol))["self"] == ["invite.accept", "invite.decline"]
    assert (await told(bob))["self"] == []

    # Back in the room after a reconnection, the welcome says the same.
    await carol.close()
    carol = await join(srv.ws_url, room, "carol")
    assert carol.welcome["actions"]["self"] == ["invite.accept", "invite.decline"]
    for p in (host, bob, carol):
        await p.close()
