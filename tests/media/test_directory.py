"""Where rooms' media is (rooms.media.directory) and messages between nodes (rooms.media.bus),
on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from rooms.media.bus import Bus
from rooms.media.directory import Directory, Where
from server.settings import Settings
from server.store import Keys
from tests.support import wait_for


@pytest.fixture
def keys(make_settings: Callable[..., Settings]) -> Keys:
    return Keys(make_settings().key_prefix)


async def everything(redis: Redis, keys: Keys) -> list[str]:
    return sorted([str(k) async for k in redis.scan_iter(match=keys("*"))])


async def test_one_origin_per_room_until_its_lease_runs_out(redis: Redis, keys: Keys) -> None:
    directory = Directory(redis, keys, lease_seconds=0.3)
    assert await directory.where("r1") == Where(None, {})
    assert await directory.claim("r1", "a") == "a"
    assert await directory.claim("r1", "b") == "a"  # a live origin is kept
    assert await directory.renew(["r1"], "a") == []
    assert (await directory.where("r1")).origin == "a"
    await asyncio.sleep(0.4)  # a stopped renewing (it hung, or died)
    assert (await directory.where("r1")).origin is None
    assert await directory.claim("r1", "b") == "b"
    assert await directory.renew(["r1"], "a") == ["r1"]  # a learns it lost the room
    assert (await directory.where("r1")).origin == "b"


async def test_records_edges_and_forgetting_a_node(redis: Redis, keys: Keys) -> None:
    directory = Directory(redis, keys, lease_seconds=5)
    key = bytes(range(28))
    assert await directory.claim("r1", "a") == "a"
    await directory.publish_origin("r1", "a", key)
    await directory.publish_sources("r1", "a", {1234: "alice", 99: "bob"})
    record = await directory.origin_record("r1", "a")
    assert record is not None and record.key == key
    assert record.sources == {1234: "alice", 99: "bob"}
    assert await directory.origin_record("r1", "b") is None
    await directory.add_edge("r1", "b", ("10.0.0.2", 4000))
    await directory.add_edge("r1", "c", ("10.0.0.3", 4001))
    await directory.add_edge("r2", "b", ("10.0.0.2", 4002))
    where = await directory.where("r1")
    assert where.origin == "a" and where.serving == ["a", "b", "c"]
    assert where.edges["b"] == "10.0.0.2:4000"

    # b dies: whoever cleans up after it removes all it held, and nothing else.
    assert await directory.forget_node("b") == ["r1", "r2"]
    assert (await directory.where("r1")).serving == ["a", "c"]
    assert (await directory.where("r2")).serving == []
    # a dies too (its origin lease still running): its lease and record go.
    assert await directory.forget_node("a") == ["r1"]
    assert (await directory.where("r1")).origin is None
    assert await directory.origin_record("r1", "a") is None
    await directory.remove_edge("r1", "c")
    await directory.forget_room("r1", "c")
    assert await everything(redis, keys) == []


async def test_requests_answers_rooms_and_who_listens(redis: Redis, keys: Keys) -> None:
    a, b = Bus(redis, keys, "a"), Bus(redis, keys, "b")
    heard: dict[str, list[tuple[str | None, dict[str, Any]]]] = {"a": [], "b": []}

    def handler(bus: Bus) -> Callable[[str | None, dict[str, Any]], None]:
        def handle(room: str | None, message: dict[str, Any]) -> None:
            heard[bus.node_id].append((room, message))
            if room is None and message.get("op") == "signal":
                answer = {"echo": message["x"]}
                asyncio.get_running_loop().create_task(bus.reply(message, answer))

        return handle

    a.handler, b.handler = handler(a), handler(b)
    await a.start()
    await b.start()
    try:
        answer = await a.call("b", {"op": "signal", "x": 7}, within=5)
        assert answer["echo"] == 7 and answer["op"] == "result"
        with pytest.raises(TimeoutError):
            await a.call("nobody", {"op": "signal", "x": 1}, within=0.2)
        await b.join("r1")
        await a.announce("r1", {"op": "end"})
        await a.announce("r2", {"op": "end"})
        await wait_for(lambda: ("r1", {"op": "end"}) in heard["b"])
        assert await a.listening(["a", "b", "gone"]) == {"a": True, "b": True, "gone": False}
    finally:
        await b.stop()
        await asyncio.sleep(0.1)
        assert await a.listening(["b"]) == {"b": False}  # its process would have exited
        await a.stop()
    assert not [m for r, m in heard["b"] if r == "r2"]
