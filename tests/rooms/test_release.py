"""Whatever ends a room socket, its participant is released: the grace period starts, the
connection gauge comes down, and a host's room passes on or ends."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import httpx

from server.valkey import EmbeddedValkey
from tests.rooms.helpers import Peer, create_room, join
from tests.support import LiveServer, wait_for

FAST = {"room_tick_seconds": 0.1, "rate_ws_message": "1000/second"}
# Frames a client can send whose JSON holds a lone UTF-16 surrogate (escaped: a socket only
# carries UTF-8, but JSON's \u escapes can name half a character).
SURROGATES = [
    '{"type": "ping", "ref": "\\ud800"}',
    '{"type": "hand.raise", "ref": "ok\\udfff"}',
    '{"type": "mute", "user_id": "\\ud83d"}',
    '{"type": "react", "emoji": "\\ud83d", "ref": "r"}',
    '{"type": "hand.raise", "\\udc00": 1}',
    '{"type": "rtc.offer", "sdp": "v=0\\r\\n\\ud800"}',
    '["\\ud800"]',
]


async def connections(srv: LiveServer) -> float:
    async with httpx.AsyncClient(base_url=srv.url) as c:
        text = (await c.get("/metrics")).text
    match = re.search(r"^ephemera_room_connections (\S+)$", text, re.M)
    assert match is not None
    return float(match.group(1))


async def has_connections(srv: LiveServer, n: int) -> bool:
    return await connections(srv) == n


async def on_stage(host: Peer, peer: Peer) -> None:
    await peer.send("hand.raise")
    await host.updated(peer.user, hand_raised=True)
    await host.send("hand.accept", user_id=peer.user)
    await peer.updated(peer.user, role="speaker")


async def test_lone_surrogates_are_refused_and_the_sender_is_released(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(reconnect_grace_seconds=0.5, **FAST)
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    host = await join(srv.ws_url, room, "alice")
    bob = await join(srv.ws_url, room, "bob")
    for frame in SURROGATES:
        await bob.send_raw(frame)
        err = await bob.error()
        assert err["code"] == "invalid_message", err
        assert "ref" not in err or err["ref"] == "r"
    await bob.send("ping", ref="still here")
    await bob.next("pong")
    assert await connections(srv) == 2

    await bob.close()
    await host.updated("bob", connected=False)
    left = await host.next("participant.left")
    assert left == {"type": "participant.left", "user_id": "bob", "reason": "left"}
    await wait_for(lambda: has_connections(srv, 1))
    await host.close()
    await wait_for(lambda: has_connections(srv, 0))


async def test_a_host_who_sent_surrogates_and_left_hands_the_room_over(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(host_grace_seconds=0.5, **FAST)
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    host = await join(srv.ws_url, room, "alice")
    bob = await join(srv.ws_url, room, "bob")
    await on_stage(host, bob)
    await host.send("role.cohost", user_id="bob")
    await bob.updated("bob", role="cohost")
    await host.send_raw(SURROGATES[0])
    assert (await host.error())["code"] == "invalid_message"
    await host.close()
    await bob.updated("alice", connected=False)
    await bob.updated("bob", role="host")
    async with srv.client("bob") as b:
        assert (await b.get(f"/v1/rooms/{room}")).json()["host"] == "bob"
    await bob.close()


async def test_sockets_closed_during_an_outage_are_released_when_redis_is_back(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    own = EmbeddedValkey(tmp_path / "own-valkey")
    own.start()
    try:
        srv = make_server(
            redis_url=own.url, reconnect_grace_seconds=0.5, host_grace_seconds=0.5, **FAST
        )
        async with srv.client("alice") as a:
            room = (await create_room(a))["id"]
        host = await join(srv.ws_url, room, "alice")
        bob = await join(srv.ws_url, room, "bob")
        carol = await join(srv.ws_url, room, "carol")
        await on_stage(host, bob)
        await host.send("role.cohost", user_id="bob")
        await bob.updated("bob", role="cohost")

        own.kill()
        await carol.close()  # a listener and the host leave while Redis is gone
        await host.close()
        await wait_for(lambda: has_connections(srv, 1))  # only bob's socket is local
        # Give the server time to try (and fail) to record the closes before Redis is back;
        # the test cannot fail by waiting longer or shorter, only miss the outage.
        await asyncio.sleep(1.5)
        own.start()

        async with srv.client("bob") as b:

            async def settled() -> bool:
                # Both grace periods run out, in either order (whichever close is recorded
                # first once Redis is back): the host's hands the room over, carol's ends.
                r = await b.get(f"/v1/rooms/{room}")
                shown = r.json() if r.status_code == 200 else {}
                return shown.get("host") == "bob" and shown.get("listener_count") == 0

            await wait_for(settled, within=20)
            r = await b.get(f"/v1/rooms/{room}")
            assert r.json()["state"] == "live"
        await bob.close()
    finally:
        own.stop()
