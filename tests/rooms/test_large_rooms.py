"""Large rooms: listeners' comings and goings as counts, moderators still see everyone; and
every room event encoded once per process whatever the number of sockets."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.rooms.helpers import Peer, create_room, join, participant
from tests.support import LiveServer

FAST = {"room_tick_seconds": 0.1, "rate_ws_message": "1000/second"}


def joined(peer: Peer, user: str) -> bool:
    return peer.has("participant.joined", lambda e: e["participant"]["user_id"] == user)


async def barrier(host: Peer, *peers: Peer, muted: bool) -> None:
    """An event to everyone after what came before it: once each peer has it, any event
    published earlier has reached them too (one channel, commit order)."""
    await host.send("mute" if muted else "unmute")
    for peer in (host, *peers):
        await peer.updated(host.user, muted=muted)


async def test_past_the_threshold_listeners_get_counts_and_moderators_everyone(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(room_listener_events_max=2, **FAST)
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    host = await join(srv.ws_url, room, "alice")
    bob, carol, dave = [await join(srv.ws_url, room, u) for u in ("bob", "carol", "dave")]
    assert joined(bob, "dave")  # 2 listeners before dave: still announced to everyone
    erin, frank, gus = [await join(srv.ws_url, room, u) for u in ("erin", "frank", "gus")]
    await barrier(host, bob, frank, muted=True)
    for user in ("erin", "frank", "gus"):
        assert joined(host, user)  # the host hears of every listener
        assert not joined(bob, user)  # the others do not ...
    # ... they get the counts instead.
    await bob.next("listeners", lambda e: e["listener_count"] == 6 and e["speaker_count"] == 1)
    assert participant(frank.welcome, "erin") is None  # a listener's welcome lists the first few

    # The host moderates a listener it was told about.
    await host.send("remove", user_id="gus")
    await gus.next("removed")
    assert (await gus.wait_closed())[0] == 4403

    # A raised hand is everyone's business; a listener made co-host gets a new welcome
    # listing every listener, and from then on hears of them.
    await frank.send("hand.raise")
    await bob.updated("frank", hand_raised=True)
    await host.send("hand.accept", user_id="frank")
    await frank.updated("frank", role="speaker")
    await host.send("role.cohost", user_id="frank")
    again = await frank.next("welcome")
    assert participant(again, "erin") is not None and participant(again, "carol") is not None
    await erin.close()
    await frank.updated("erin", connected=False)
    await host.updated("erin", connected=False)
    await barrier(host, bob, frank, muted=False)
    assert not bob.has("participant.updated", lambda e: e["participant"]["user_id"] == "erin")
    await bob.next("listeners", lambda e: e["listener_count"] == 4 and e["speaker_count"] == 2)
    for peer in (host, bob, carol, dave, frank):
        await peer.close()


async def frames_built(srv: LiveServer) -> float:
    async with httpx.AsyncClient(base_url=srv.url) as c:
        text = (await c.get("/metrics")).text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("ephemera_room_frames_total ")
    )


async def test_an_event_is_encoded_once_for_every_socket(
    make_server: Callable[..., LiveServer],
) -> None:
    # No count ticks in the window: only the host's action makes messages.
    srv = make_server(room_tick_seconds=3600, rate_ws_message="1000/second")
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    host = await join(srv.ws_url, room, "alice")
    listeners = [await join(srv.ws_url, room, f"l{i}") for i in range(6)]
    await barrier(host, *listeners, muted=True)
    for peer in (host, *listeners):
        peer.events.clear()
    before = await frames_built(srv)
    await barrier(host, *listeners, muted=False)
    await host.next("actions")  # the host may mute itself again
    after = await frames_built(srv)
    # participant.updated to 7 sockets and actions to one: two encodings, not eight.
    assert after - before == 2
    for peer in (host, *listeners):
        await peer.close()
