"""One room across several server processes behind one Redis (docs/relay.md, "One room on
many nodes"): any process takes any participant's socket, speakers publish to the room's
origin, listeners are placed on edges that get each packet once over the trunk, and a
dead node's participants are back on audio elsewhere."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from rooms.media.directory import Directory
from rooms.media.node import VIEW_SECONDS
from server.settings import Settings
from server.store import Keys
from tests.media.client import Inbound, RoomClient, goes_silent, hears_tone, room_socket
from tests.support import ServerProcess, auth, settings_env, wait_for

Cluster = Callable[..., list[ServerProcess]]


@pytest.fixture
def cluster(make_settings: Callable[..., Settings]) -> Iterator[Cluster]:
    """Server processes on one Redis; ``cluster(0, 50)``: two, taking at most 0 and 50
    listeners (a node at 0 serves speakers only, so listeners land on another one)."""
    env = settings_env(make_settings(room_node_timeout_seconds=3))
    started: list[ServerProcess] = []

    def start(*caps: int) -> list[ServerProcess]:
        procs = [
            ServerProcess(
                {
                    **env,
                    "EPHEMERA_NODE_ID": f"node{len(started) + i}",
                    "EPHEMERA_MEDIA_NODE_MAX_LISTENERS": str(cap),
                }
            )
            for i, cap in enumerate(caps)
        ]
        for proc in procs:
            started.append(proc)
            proc.start()
        time.sleep(VIEW_SECONDS * 2)  # every node's view of the others is up to date
        return procs

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def directory(redis: Redis, make_settings: Callable[..., Settings]) -> Directory:
    return Directory(redis, Keys(make_settings().key_prefix), 3.0)


@pytest.fixture
async def clients() -> AsyncIterator[list[RoomClient]]:
    made: list[RoomClient] = []
    yield made
    for client in made:
        await client.close()


Join = Callable[..., Awaitable[RoomClient]]


@pytest.fixture
def joiner(clients: list[RoomClient]) -> Join:
    """``joiner(room, process, user, **audio)``: a participant with their socket on that
    process, their media started (closed after the test)."""

    async def join(room: str, proc: ServerProcess, user: str, **audio: Any) -> RoomClient:
        client = RoomClient(room_socket(proc.ws_url, room), user)
        clients.append(client)
        await client.connect()
        await client.start_audio(**audio)
        return client

    return join


async def create_room(proc: ServerProcess, host: str) -> str:
    async with httpx.AsyncClient(base_url=proc.url, headers=auth(host)) as http:
        created = await http.post("/v1/rooms", json={"title": "Across processes"})
    assert created.status_code == 201, created.text
    assert "ws_url" not in created.json()
    return str(created.json()["id"])


def node_of(index: int, node_id: str | None) -> bool:
    """Whether ``node_id`` is a run of the cluster's process number ``index``."""
    return node_id is not None and node_id.startswith(f"node{index}-")


def track_of(client: RoomClient, hz: float) -> Inbound | None:
    assert client.rtc is not None
    return next((i for i in client.rtc.inbound if hears_tone(i, hz)), None)


async def traces(redis: Redis, prefix: str, node_id: str) -> list[str]:
    """Every key of this test's Redis that names ``node_id`` or holds it."""
    found = []
    async for key in redis.scan_iter(match=f"{prefix}*"):
        kind = await redis.type(key)
        members: list[Any] = []
        if kind == "hash":
            members = [*(await redis.hgetall(key)).items()]
        elif kind == "zset":
            members = await redis.zrange(key, 0, -1)
        elif kind == "set":
            members = list(await redis.smembers(key))
        if node_id in key or node_id in repr(members):
            found.append(str(key))
    return found


async def test_listeners_on_other_processes_hear_the_speaker(
    cluster: Cluster, joiner: Join, directory: Directory
) -> None:
    a, b = cluster(0, 50)  # a takes no listeners: they all go to b
    room = await create_room(a, "alice")

    join = functools.partial(joiner, room)

    alice = await join(a, "alice", speak=True, tone=440)  # the first offer: a is the origin
    bob = await join(a, "bob")  # his socket on a, his media on b: signaling through Redis
    carol = await join(b, "carol")
    dave = await join(b, "dave", tone=660)  # a listener with a microphone ready
    for listener in (bob, carol, dave):
        await wait_for(lambda c=listener: c.rtc is not None and c.rtc.hears_tone(440), 30)
    where = await directory.where(room)
    assert node_of(0, where.origin) and len(where.edges) == 1
    assert node_of(1, next(iter(where.edges)))

    # Speaking is computed once, on the origin, and reaches everyone.
    for listener in (bob, carol):
        await listener.event("speaking", lambda e: e["user_ids"] == ["alice"], within=10)

    # A listener on the edge becomes a speaker: moved to the origin, heard everywhere.
    await dave.act("hand.raise")
    await alice.event("participant.updated", lambda e: e["participant"]["hand_raised"])
    await alice.act("hand.accept", user_id="dave")
    await wait_for(lambda: len(dave.restarts) == 1, within=10)
    for listener in (alice, bob, carol):
        await wait_for(lambda c=listener: c.rtc is not None and c.rtc.hears_tone(660), 30)

    # The host mutes dave: the edge's listeners stop getting him, alice is still heard.
    dave_on_b = track_of(carol, 660)
    assert dave_on_b is not None
    await alice.act("mute", user_id="dave")
    assert await goes_silent(dave_on_b)
    assert carol.rtc is not None and carol.rtc.hears_tone(440)

    # A participant removed through another process loses their media on the edge.
    await alice.act("remove", user_id="carol")
    await wait_for(lambda: carol.closed_code == 4403, within=10)
    await wait_for(lambda: carol.rtc is not None and carol.rtc.pc.connectionState == "closed")
    assert bob.rtc is not None
    before = bob.rtc.packets
    await wait_for(lambda: bob.rtc is not None and bob.rtc.packets > before + 25, within=10)


async def test_a_listener_moves_when_its_edge_dies(
    cluster: Cluster,
    clients: list[RoomClient],
    directory: Directory,
    redis: Redis,
    make_settings: Callable[..., Settings],
) -> None:
    procs = cluster(0, 5, 5)
    room = await create_room(procs[0], "alice")
    alice = RoomClient(room_socket(procs[0].ws_url, room), "alice")
    bob = RoomClient(room_socket(procs[0].ws_url, room), "bob")
    clients += [alice, bob]
    for client in (alice, bob):
        await client.connect()
    await alice.start_audio(speak=True)
    await bob.start_audio()
    await wait_for(lambda: bob.rtc is not None and bob.rtc.hears_tone(440), within=30)
    [edge] = (await directory.where(room)).edges
    index = 1 if node_of(1, edge) else 2
    assert node_of(index, edge)

    dying = procs[index].proc
    assert dying is not None
    dying.kill()  # no goodbye: its sockets, peers and Redis connections vanish
    killed = time.monotonic()
    await wait_for(lambda: len(bob.restarts) == 1, within=30)
    await wait_for(lambda: bob.rtc is not None and bob.rtc.hears_tone(440), within=30)
    back, told = time.monotonic() - killed, bob.restarts[0] - killed
    print(f"\nedge killed: told after {told:.2f} s, on audio again after {back:.2f} s")
    assert any(node_of(3 - index, n) for n in (await directory.where(room)).edges)

    # Nothing of the dead node is left in Redis once its lease ran out and it was reaped.
    prefix = make_settings().key_prefix

    async def forgotten() -> bool:
        return not await traces(redis, prefix, edge)

    await wait_for(forgotten, within=30, interval=0.5)


async def test_the_room_moves_when_its_origin_dies(
    cluster: Cluster, joiner: Join, directory: Directory
) -> None:
    # The origin (o) serves one listener; the speaker's socket is on s (which takes no
    # listeners); the third process is an edge.
    o, s, _ = cluster(1, 0, 5)
    room = await create_room(o, "alice")

    join = functools.partial(joiner, room)

    first = await join(o, "first")  # the first offer: o claims the room
    await wait_for(lambda: first.rtc is not None and first.rtc.answers_received == 1)
    alice = await join(s, "alice", speak=True, tone=440)
    bob = await join(s, "bob")  # o is full: bob's media is on e
    await wait_for(lambda: bob.rtc is not None and bob.rtc.hears_tone(440), within=30)
    where = await directory.where(room)
    assert node_of(0, where.origin) and all(node_of(2, n) for n in where.edges)

    assert o.proc is not None
    o.proc.kill()
    killed = time.monotonic()
    await wait_for(lambda: len(alice.restarts) == 1, within=30)  # the speaker republishes
    listening = bob.rtc
    assert listening is not None

    def resumed() -> bool:  # packets from after the kill, and the tone in them
        last = max((i.last_packet_at or 0 for i in listening.inbound), default=0)
        return last > killed + 1.0 and listening.hears_tone(440)

    await wait_for(resumed, within=30)
    took = time.monotonic() - killed
    print(f"\norigin killed: the edge's listener hears the speaker again after {took:.2f} s")
    assert bob.rtc is listening and not bob.restarts  # it kept its connection to the edge
    assert node_of(1, (await directory.where(room)).origin)
