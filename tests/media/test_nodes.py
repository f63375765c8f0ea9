"""The node registry and the room -> node map, on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from rooms.media.nodes import NodeRegistry, room_ws_url, ws_base
from server.settings import Settings
from server.store import Keys, connect
from tests.support import wait_for


@pytest.fixture
async def make_node(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    settings = make_settings()
    assert settings.redis_url is not None
    redis = connect(settings.redis_url, settings)
    nodes: list[NodeRegistry] = []

    async def make(node_id: str, url: str, **kw: Any) -> NodeRegistry:
        node = NodeRegistry(redis, Keys(settings.key_prefix), node_id, url, **kw)
        await node.start()
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.stop()
    await redis.aclose()


def test_ws_urls() -> None:
    assert ws_base("http://a:1/") == "ws://a:1"
    assert ws_base("https://rooms.example") == "wss://rooms.example"
    assert room_ws_url("http://10.0.0.2:8000", "r1") == "ws://10.0.0.2:8000/v1/rooms/r1/ws"


async def test_the_first_claim_wins_and_others_are_pointed_to_it(make_node: Any) -> None:
    a = await make_node("node-a", "http://10.0.0.1:8000")
    b = await make_node("node-b", "https://b.example")
    owners = await asyncio.gather(*(n.claim("room1") for n in (a, b, a, b)))
    assert len(set(owners)) == 1  # atomic: one owner whoever asks
    owner = owners[0]
    other = b if owner == "node-a" else a
    expected = "ws://10.0.0.1:8000" if owner == "node-a" else "wss://b.example"
    assert await other.room_ws_url("room1") == f"{expected}/v1/rooms/room1/ws"
    assert await a.nodes() == {"node-a": "http://10.0.0.1:8000", "node-b": "https://b.example"}


async def test_a_dead_nodes_rooms_are_taken_over(make_node: Any) -> None:
    a = await make_node("node-a", "http://a", heartbeat_seconds=60, ttl_seconds=0.3)
    b = await make_node("node-b", "http://b")
    assert await a.claim("room1") == "node-a"
    assert await b.claim("room1") == "node-a"
    # a stops heartbeating (crashed): once its lease runs out, b takes the room.
    await wait_for(lambda: _not_listed(b, "node-a"), within=5)
    assert await b.claim("room1") == "node-b"
    assert await b.room_ws_url("room1") == "ws://b/v1/rooms/room1/ws"


async def _not_listed(node: NodeRegistry, node_id: str) -> bool:
    return node_id not in await node.nodes()


async def test_release_and_stop_hand_rooms_back(make_node: Any) -> None:
    a = await make_node("node-a", "http://a")
    b = await make_node("node-b", "http://b")
    assert await a.claim("room1") == "node-a"
    assert await a.claim("room2") == "node-a"
    await b.release("room1")  # not b's to release: no effect
    assert await b.claim("room1") == "node-a"
    await a.release("room1")
    assert await b.claim("room1") == "node-b"
    await a.stop()  # a graceful shutdown leaves the registry and frees room2 at once
    assert "node-a" not in await b.nodes()
    assert await b.claim("room2") == "node-b"


async def test_a_restarted_node_takes_its_rooms_back_at_once(make_node: Any) -> None:
    old = await make_node("node-a-1", "http://a", heartbeat_seconds=60)
    assert await old.claim("room1") == "node-a-1"
    # The process crashed (no release) and came back at the same address before its
    # lease ran out: clients sent to http://a must not be told to go elsewhere.
    new = await make_node("node-a-2", "http://a")
    other = await make_node("node-b", "http://b")
    assert await other.claim("room1") == "node-a-1"
    assert await new.claim("room1") == "node-a-2"
    assert await other.claim("room1") == "node-a-2"
