"""Two server processes behind one Redis: a room's media lives on one of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from server.settings import Settings
from server.store import Keys, connect
from tests.media.client import RoomClient
from tests.support import ServerProcess, auth, settings_env, wait_for


@pytest.fixture
def nodes(make_settings: Callable[..., Settings]) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = settings_env(make_settings())
    a = ServerProcess({**env, "EPHEMERA_NODE_ID": "node-a"})
    b = ServerProcess({**env, "EPHEMERA_NODE_ID": "node-b"})
    a.start()
    try:
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


async def room_ws_url(node: ServerProcess, room_id: str, user: str) -> str:
    async with httpx.AsyncClient(base_url=node.url, headers=auth(user)) as http:
        answer = await http.get(f"/v1/rooms/{room_id}")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ws_url"])


async def test_clients_joining_through_another_node_are_sent_to_the_media_node(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = nodes
    async with httpx.AsyncClient(base_url=a.url, headers=auth("alice")) as http:
        created = await http.post("/v1/rooms", json={"title": "Two nodes"})
    assert created.status_code == 201, created.text
    room_id = created.json()["id"]
    advertised = created.json()["ws_url"]
    assert await room_ws_url(b, room_id, "bob") == advertised  # every node names the same one
    media, other = (a, b) if advertised.startswith(f"{a.ws_url}/") else (b, a)
    assert advertised == f"{media.ws_url}/v1/rooms/{room_id}/ws"

    clients: list[RoomClient] = []
    try:
        alice = RoomClient(advertised, "alice")
        clients.append(alice)
        await alice.connect()
        await alice.start_audio(speak=True)  # the first offer: the media node claims the room

        # A client that signals on the other node anyway is told where the room's audio is.
        stray = RoomClient(f"{other.ws_url}/v1/rooms/{room_id}/ws", "bob")
        clients.append(stray)
        await stray.connect()
        await stray.start_audio()
        error = await stray.event("error", lambda e: e["code"] == "wrong_node")
        assert advertised in error["message"]

        bob = RoomClient(await room_ws_url(other, room_id, "bob"), "bob")
        clients.append(bob)
        await bob.connect()
        await bob.start_audio()
        await wait_for(lambda: bob.rtc is not None and bob.rtc.hears_tone(440), within=20)
    finally:
        for c in clients:
            await c.close()

    # The media node shuts down: it hands the room back, and the other node serves it.
    media.stop()
    assert await room_ws_url(other, room_id, "bob") == f"{other.ws_url}/v1/rooms/{room_id}/ws"


async def test_reading_a_room_claims_nothing(
    nodes: tuple[ServerProcess, ServerProcess], make_settings: Callable[..., Settings]
) -> None:
    """Listings, room reads, welcomes and count refreshes only look at who serves a room;
    the room is claimed by the node where a participant first sends ``rtc.offer``."""
    a, b = nodes
    settings = make_settings()
    assert settings.redis_url is not None
    redis = connect(settings.redis_url, settings)
    claim_key = Keys(settings.key_prefix)("media", "{nodes}", "room", "")
    listeners: list[RoomClient] = []
    try:
        async with httpx.AsyncClient(base_url=b.url, headers=auth("alice")) as http:
            room_id = (await http.post("/v1/rooms", json={"title": "Reads"})).json()["id"]
        for node, user in ((a, "bob"), (b, "carol")):
            async with httpx.AsyncClient(base_url=node.url, headers=auth(user)) as http:
                assert (await http.get("/v1/rooms")).status_code == 200
                assert (await http.get(f"/v1/rooms/{room_id}/preview")).status_code == 200
            listener = RoomClient(f"{node.ws_url}/v1/rooms/{room_id}/ws", user)
            listeners.append(listener)
            await listener.connect()
        advertised = await room_ws_url(a, room_id, "bob")
        assert advertised == await room_ws_url(b, room_id, "carol")
        # The counts changed: every node's tick (1 s) sends them (``listeners``).
        for listener in listeners:
            await listener.event("listeners", lambda e: e["listener_count"] == 2)
        assert await redis.get(claim_key + room_id) is None

        host = RoomClient(advertised, "alice")
        listeners.append(host)
        await host.connect()
        await host.start_audio(speak=True)

        async def claimed() -> bool:
            owner = await redis.get(claim_key + room_id)
            urls = Keys(settings.key_prefix)("media", "{nodes}", "urls")
            return owner is not None and advertised.startswith(
                str(await redis.hget(urls, owner)).replace("http://", "ws://") + "/"
            )

        await wait_for(claimed, within=10)
    finally:
        for client in listeners:
            await client.close()
        await redis.aclose()
