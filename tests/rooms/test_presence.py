"""Grace periods: reconnecting keeps your place, the host's place passes to a co-host."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from server.valkey import EmbeddedValkey
from tests.rooms.helpers import Peer, create_room, join, participant, refused
from tests.support import ONE_NODE, LiveServer, wait_for

FAST = {"room_tick_seconds": 0.1, "rate_ws_message": "1000/second"}


async def on_stage(host: Peer, peer: Peer) -> None:
    await peer.send("hand.raise")
    await host.updated(peer.user, hand_raised=True)
    await host.send("hand.accept", user_id=peer.user)
    await peer.updated(peer.user, role="speaker")


async def test_reconnect_within_grace_keeps_role_hand_and_mute(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(reconnect_grace_seconds=30, **FAST)
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    host = await join(srv.ws_url, room, "alice")
    bob = await join(srv.ws_url, room, "bob")
    carol = await join(srv.ws_url, room, "carol")
    await on_stage(host, carol)
    await host.send("mute", user_id="carol")
    await host.updated("carol", muted=True)
    await bob.send("hand.raise")
    await host.updated("bob", hand_raised=True)

    await bob.close()
    await carol.close()
    await host.updated("bob", connected=False, hand_raised=True)
    await host.updated("carol", connected=False, role="speaker")

    bob = await join(srv.ws_url, room, "bob")
    carol = await join(srv.ws_url, room, "carol")
    assert participant(bob.welcome, "bob") == {
        "user_id": "bob",
        "role": "listener",
        "muted": False,
        "hand_raised": True,
        "invited": False,
        "speaking": False,
        "connected": True,
    }
    me = participant(carol.welcome, "carol")
    assert me is not None and me["role"] == "speaker" and me["muted"] is True
    await host.updated("bob", connected=True, hand_raised=True)
    await carol.send("unmute")  # still a speaker: allowed to unmute
    await host.updated("carol", muted=False)
    for p in (host, bob, carol):
        await p.close()


async def test_gone_after_grace_and_back_as_a_new_listener(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(reconnect_grace_seconds=0.3, **FAST)
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    host = await join(srv.ws_url, room, "alice")
    bob = await join(srv.ws_url, room, "bob")
    await on_stage(host, bob)
    await bob.close()
    left = await host.next("participant.left")
    assert left == {"type": "participant.left", "user_id": "bob", "reason": "left"}
    bob = await join(srv.ws_url, room, "bob")
    assert participant(bob.welcome, "bob")["role"] == "listener"  # type: ignore[index]
    await bob.close()
    await host.close()


async def test_host_gone_first_cohost_takes_over(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(host_grace_seconds=0.5, **FAST)
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    host = await join(srv.ws_url, room, "alice")
    bob = await join(srv.ws_url, room, "bob")
    carol = await join(srv.ws_url, room, "carol")
    dave = await join(srv.ws_url, room, "dave")
    await on_stage(host, bob)
    await on_stage(host, carol)
    await host.send("role.cohost", user_id="bob")  # bob is the first co-host
    await dave.updated("bob", role="cohost")
    await host.send("role.cohost", user_id="carol")
    await dave.updated("carol", role="cohost")

    await host.close()
    await dave.updated("alice", connected=False)
    left = await dave.next("participant.left")
    assert left["user_id"] == "alice"
    await dave.updated("bob", role="host")
    updated = await dave.next("room.updated", lambda e: e["room"]["host"] == "bob")
    assert updated["room"]["state"] == "live"

    # The new host has the host's powers; the old host comes back as a listener.
    await bob.send("role.demote", user_id="carol")
    await dave.updated("carol", role="speaker")
    alice = await join(srv.ws_url, room, "alice")
    assert participant(alice.welcome, "alice")["role"] == "listener"  # type: ignore[index]
    assert alice.welcome["room"]["host"] == "bob"
    async with srv.client("alice") as a:
        r = await a.post(f"/v1/rooms/{room}/end")
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_host"
    async with srv.client("bob") as b:
        assert (await b.post(f"/v1/rooms/{room}/end")).status_code == 200
    assert (await dave.next("room.ended"))["reason"] == "ended_by_host"
    for p in (alice, bob, carol, dave):
        await p.close()


async def test_host_gone_without_cohost_ends_the_room(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(host_grace_seconds=0.3, **FAST)
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    host = await join(srv.ws_url, room, "alice")
    bob = await join(srv.ws_url, room, "bob")
    await on_stage(host, bob)  # a speaker does not inherit the room
    await host.close()
    ended = await bob.next("room.ended")
    assert ended == {"type": "room.ended", "reason": "host_left"}
    assert (await bob.wait_closed())[0] == 1000
    async with srv.client("bob") as b:
        assert (await b.get(f"/v1/rooms/{room}")).json()["state"] == "ended"
        assert room not in [r["id"] for r in (await b.get("/v1/rooms")).json()["rooms"]]


async def test_host_back_within_grace_stays_host(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(host_grace_seconds=30, **FAST)
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    host = await join(srv.ws_url, room, "alice")
    bob = await join(srv.ws_url, room, "bob")
    await host.close()
    await bob.updated("alice", connected=False, role="host")
    host = await join(srv.ws_url, room, "alice")
    assert participant(host.welcome, "alice")["role"] == "host"  # type: ignore[index]
    await bob.updated("alice", connected=True, role="host")
    await host.send("invite.send", user_id="bob")
    await bob.next("invite.received")
    await host.close()
    await bob.close()


async def test_host_who_never_connects_lets_the_room_end(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(host_grace_seconds=0.3, **FAST)
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]

        async def ended() -> bool:
            return bool((await a.get(f"/v1/rooms/{room}")).json()["state"] == "ended")

        await wait_for(ended, within=10)
    status, body = await refused(srv.ws_url, room, "bob")
    assert status == 409 and body["error"]["code"] == "room_ended"


@ONE_NODE
async def test_redis_outage_gives_errors_not_crashes(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    own = EmbeddedValkey(tmp_path / "own-valkey")
    own.start()
    try:
        srv = make_server(redis_url=own.url, **FAST)
        async with srv.client("alice") as a:
            room = (await create_room(a))["id"]
        host = await join(srv.ws_url, room, "alice")
        bob = await join(srv.ws_url, room, "bob")
        own.kill()
        await bob.send("hand.raise", ref="down")
        err = await bob.error()
        assert err["code"] == "store_unavailable" and err["ref"] == "down"
        status, body = await refused(srv.ws_url, room, "carol")
        assert status == 503 and body["error"]["code"] == "store_unavailable"
        own.start()  # the append-only file brings the room back

        # Events published while this process was cut off from Redis are lost, so once it
        # is back every socket gets the whole state again: a second welcome.
        again = await host.next("welcome", within=20)
        assert participant(again, "bob")["role"] == "listener"  # type: ignore[index]
        await bob.next("welcome", within=20)
        await bob.send("hand.raise")
        await host.updated("bob", hand_raised=True)
        carol = await join(srv.ws_url, room, "carol")
        assert participant(carol.welcome, "bob")["hand_raised"] is True  # type: ignore[index]
        for p in (host, bob, carol):
            await p.close()
    finally:
        own.stop()
