"""Two real uvicorn processes behind one Redis serve one room."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest

from server.settings import Settings
from tests.rooms.helpers import Peer, join, participant, refused
from tests.support import ServerProcess, auth, settings_env


@pytest.fixture
def processes(make_settings: Callable[..., Settings]) -> Iterator[list[ServerProcess]]:
    settings = make_settings(
        room_tick_seconds=0.2,
        node_heartbeat_seconds=0.3,
        node_ttl_seconds=1.5,
        host_grace_seconds=0.5,
        max_speakers=1,
        rate_ws_message="1000/second",
    )
    env = settings_env(settings)
    started: list[ServerProcess] = []
    for node in ("node-a", "node-b"):
        started.append(ServerProcess({**env, "EPHEMERA_NODE_ID": node}).start())
    yield started
    for proc in started:
        proc.stop()


async def create(base_url: str, host: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, headers=auth(host), timeout=10) as c:
        r = await c.post("/v1/rooms", json={"title": "Across processes"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


async def test_listener_on_b_sees_a_hand_raised_on_a(processes: list[ServerProcess]) -> None:
    a, b = processes
    room = await create(a.url, "alice")
    host = await join(a.ws_url, room, "alice")
    bob = await join(b.ws_url, room, "bob")  # a listener on process B
    carol = await join(a.ws_url, room, "carol")  # raises a hand on process A
    assert participant(bob.welcome, "alice")["role"] == "host"  # type: ignore[index]
    await bob.next("participant.joined", lambda e: e["participant"]["user_id"] == "carol")

    await carol.send("hand.raise")
    seen = await bob.updated("carol", hand_raised=True)
    assert seen["role"] == "listener"

    # Moderation crosses processes too: the host on A removes a listener on B.
    dave = await join(b.ws_url, room, "dave")
    await host.send("remove", user_id="dave")
    await dave.next("removed")
    assert (await dave.wait_closed())[0] == 4403
    status, body = await refused(b.ws_url, room, "dave")
    assert status == 403 and body["error"]["code"] == "removed"
    for p in (host, bob, carol):
        await p.close()


async def test_cap_holds_when_both_processes_accept_at_once(
    processes: list[ServerProcess],
) -> None:
    a, b = processes
    room = await create(a.url, "alice")
    host = await join(a.ws_url, room, "alice")
    cohost = await join(b.ws_url, room, "bob")
    await cohost.send("hand.raise")
    await host.updated("bob", hand_raised=True)
    await host.send("hand.accept", user_id="bob")
    await host.updated("bob", role="speaker")
    await host.send("role.cohost", user_id="bob")
    await host.updated("bob", role="cohost")

    hands: list[Peer] = []
    for user, proc in (("carol", a), ("dave", b)):
        peer = await join(proc.ws_url, room, user)
        await peer.send("hand.raise")
        await host.updated(user, hand_raised=True)
        hands.append(peer)
    # max_speakers=1: the host (on A) and the co-host (on B) accept different hands at once.
    await asyncio.gather(
        host.send("hand.accept", user_id="carol"), cohost.send("hand.accept", user_id="dave")
    )
    err = await asyncio.wait_for(_first_error(host, cohost), timeout=10)
    assert err["code"] == "speakers_full"
    late = await join(b.ws_url, room, "zed")
    speakers = [p for p in late.welcome["participants"] if p["role"] == "speaker"]
    assert len(speakers) == 1
    for p in (host, cohost, late, *hands):
        await p.close()


async def _first_error(*peers: Peer) -> dict[str, object]:
    while True:
        for p in peers:
            for i, e in enumerate(p.events):
                if e["type"] == "error":
                    return p.events.pop(i)
        await asyncio.sleep(0.05)


async def test_a_crashed_process_hands_the_room_on(processes: list[ServerProcess]) -> None:
    """Process A dies with the host's socket: the node registry declares A dead, B starts
    the grace periods of A's participants, the host's runs out, and the first co-host (on
    B) becomes host."""
    a, b = processes
    room = await create(b.url, "alice")
    host = await join(a.ws_url, room, "alice")
    bob = await join(b.ws_url, room, "bob")
    await bob.send("hand.raise")
    await host.updated("bob", hand_raised=True)
    await host.send("hand.accept", user_id="bob")
    await host.updated("bob", role="speaker")
    await host.send("role.cohost", user_id="bob")
    await bob.updated("bob", role="cohost")

    assert a.proc is not None
    a.proc.kill()  # no clean shutdown: nothing marks alice's socket closed
    a.proc.wait()
    await bob.updated("alice", connected=False, within=20)
    await bob.updated("bob", role="host", within=20)
    carol = await join(b.ws_url, room, "carol")
    assert carol.welcome["room"]["host"] == "bob"
    assert participant(carol.welcome, "alice") is None
    for p in (bob, carol, host):
        await p.close()


async def test_restart_keeps_places(processes: list[ServerProcess]) -> None:
    """Process A shuts down (1012): its participants keep their places and carry on on B."""
    a, b = processes
    room = await create(b.url, "alice")
    host = await join(b.ws_url, room, "alice")
    bob = await join(a.ws_url, room, "bob")
    await bob.send("hand.raise")
    await host.updated("bob", hand_raised=True)
    await host.send("hand.accept", user_id="bob")
    await host.updated("bob", role="speaker")
    a.stop()
    assert (await bob.wait_closed())[0] == 1012
    await host.updated("bob", connected=False, role="speaker")
    bob = await join(b.ws_url, room, "bob")
    assert participant(bob.welcome, "bob")["role"] == "speaker"  # type: ignore[index]
    await host.updated("bob", connected=True, role="speaker")
    for p in (host, bob):
        await p.close()
