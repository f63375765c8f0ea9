"""Two server processes behind one Redis: a room's media lives on one of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from server.settings import Settings
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
    on_a = f"{a.ws_url}/v1/rooms/{room_id}/ws"
    assert created.json()["ws_url"] == on_a  # the node that first served the room holds it
    assert await room_ws_url(b, room_id, "bob") == on_a  # asking node B points to A

    clients: list[RoomClient] = []
    try:
        # A client that signals on B anyway is told where the room's audio is.
        stray = RoomClient(f"{b.ws_url}/v1/rooms/{room_id}/ws", "bob")
        clients.append(stray)
        await stray.connect()
        await stray.start_audio()
        error = await stray.event("error", lambda e: e["code"] == "wrong_node")
        assert on_a in error["message"]

        alice = RoomClient(on_a, "alice")
        bob = RoomClient(await room_ws_url(b, room_id, "bob"), "bob")
        clients += [alice, bob]
        await alice.connect()
        await alice.start_audio(speak=True)
        await bob.connect()
        await bob.start_audio()
        await wait_for(lambda: bob.rtc is not None and bob.rtc.hears_tone(440), within=20)
    finally:
        for c in clients:
            await c.close()

    # Node A shuts down: it hands the room back, and B takes the media over.
    a.stop()
    assert await room_ws_url(b, room_id, "bob") == f"{b.ws_url}/v1/rooms/{room_id}/ws"
