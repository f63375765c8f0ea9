"""The lease primitive and the node registry, on the session's real Valkey."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.leases import LeaseTable
from server.nodes import Node, NodeRegistry
from server.store import Keys
from server.valkey import EmbeddedValkey


@pytest.fixture
async def redis(valkey: EmbeddedValkey) -> AsyncIterator[Redis]:
    client = Redis.from_url(valkey.url, decode_responses=True)
    yield client
    await client.aclose()


def fresh(name: str) -> str:
    return f"t{uuid.uuid4().hex[:8]}:{{{name}}}"


async def test_due_members_are_taken_once_until_the_lease_runs_out(redis: Redis) -> None:
    table = LeaseTable(redis, fresh("q"))
    now = 1_000_000.0
    for i in range(5):
        await table.put(f"m{i}", now - 10 + i)
    await table.put("later", now + 100)
    first = await table.take_due("a", lease=30, limit=3, now=now)
    second = await table.take_due("b", lease=30, limit=10, now=now)
    assert len(first) == 3 and sorted(first + second) == [f"m{i}" for i in range(5)]
    assert await table.take_due("c", lease=30, limit=10, now=now + 29) == []
    # Whoever took them died: after the lease they come due again.
    assert sorted(await table.take_due("c", lease=30, limit=10, now=now + 31)) == sorted(
        first + second
    )
    await table.done(*first, *second)
    assert await table.take_due("d", lease=30, limit=10, now=now + 1000) == ["later"]


async def test_named_leases_are_held_renewed_and_taken_over(redis: Redis) -> None:
    tag = fresh("rooms")
    table = LeaseTable(redis, tag + ":lease", tag + ":holder")
    now = 2_000_000.0
    assert await table.take(["r1"], "n1", lease=15, now=now) == ["n1"]
    assert await table.take(["r1", "r2"], "n2", lease=15, now=now + 1) == ["n1", "n2"]
    # The holder renews; others still cannot take it.
    assert await table.take(["r1"], "n1", lease=15, now=now + 10) == ["n1"]
    assert await table.take(["r1"], "n2", lease=15, now=now + 20) == ["n1"]
    # n1 stopped renewing: once its lease ran out, n2 takes the room.
    assert await table.take(["r1"], "n2", lease=15, now=now + 26) == ["n2"]
    assert await table.release("n1", "r1") == 0
    assert await table.release("n2", "r1", "r2") == 2
    assert await table.take(["r1"], "n3", lease=15, now=now + 27) == ["n3"]


async def test_node_registry_liveness_and_predecessors(redis: Redis) -> None:
    keys = Keys(f"t{uuid.uuid4().hex[:8]}:")

    def registry(node_id: str, url: str) -> NodeRegistry:
        return NodeRegistry(redis, keys, Node(node_id, url), heartbeat_seconds=60, ttl_seconds=15)

    a, b = registry("a", "http://a"), registry("b", "http://b")
    assert await a.start() == [] and await b.start() == []
    assert set(await a.nodes()) == {"a", "b"}
    assert (await a.nodes())["b"].url == "http://b"
    # b restarts as b2 at the same URL: its earlier run is dead at once.
    b2 = registry("b2", "http://b")
    assert await b2.start() == ["b"]
    assert set(await a.nodes()) == {"a", "b2"}
    assert await a.take_dead(lease=30) == ["b"]
    assert await b2.take_dead(lease=30) == []  # a holds the clean-up lease
    await a.forget("b")
    for r in (a, b, b2):
        await r.stop()
    assert await a.nodes() == {}


async def test_a_dead_node_is_cleaned_up_by_every_hook_once_then_forgotten(
    redis: Redis,
) -> None:
    keys = Keys(f"t{uuid.uuid4().hex[:8]}:")

    def registry(node_id: str, url: str) -> NodeRegistry:
        return NodeRegistry(redis, keys, Node(node_id, url), heartbeat_seconds=60, ttl_seconds=15)

    a, c = registry("a", "http://a"), registry("c", "http://c")
    cleaned: list[tuple[str, str]] = []
    failing = [True]

    async def rooms_hook(node_id: str) -> None:
        cleaned.append(("rooms", node_id))

    async def media_hook(node_id: str) -> None:
        if failing[0]:
            raise ConnectionError("Redis went away mid-way")
        cleaned.append(("media", node_id))

    c.on_dead(rooms_hook)
    c.on_dead(media_hook)
    await a.start()
    await c.start()
    b2 = registry("b2", "http://a")  # a restarts as b2: a is dead at once
    await b2.start()
    # The hook failed: a is not forgotten, and stays leased to c (retried once that runs out).
    with pytest.raises(ConnectionError):
        await c.reap()
    assert cleaned == [("rooms", "a")]
    assert await b2.reap() == []
    holders = keys("nodes", "{nodes}", "holder")
    assert await redis.hget(holders, "a") == "c"
    # Every hook succeeds this time: a is forgotten.
    failing[0] = False
    await redis.zadd(a.alive.key, {"a": 0})  # c's clean-up lease ran out
    assert await c.reap() == ["a"]
    assert cleaned == [("rooms", "a"), ("rooms", "a"), ("media", "a")]
    assert await redis.hget(holders, "a") is None and await c.reap() == []
    for r in (c, b2):
        await r.stop()
