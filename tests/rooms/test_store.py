"""The Redis side of the control plane, on the session's real Valkey: the transaction helper
decides again when a watched key changed, and the indexes follow the records they index."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from rooms.control.rules import SpeakerPolicy
from rooms.control.store import RoomStore, entry
from server.clock import ManualClock
from server.settings import Settings
from server.store import Keys
from server.transactions import Writes, transact


async def test_a_concurrent_write_makes_the_transaction_decide_again(redis: Redis) -> None:
    key = "t:{tx}:counter"
    await redis.set(key, 1)
    seen: list[int] = []

    async def attempt(p: Pipeline) -> tuple[int, Writes | None]:
        await p.watch(key)
        value = int(str(await p.get(key)))
        seen.append(value)
        if len(seen) == 1:
            await redis.incr(key)  # another writer commits between our read and our EXEC

        def writes(p: Pipeline) -> None:
            p.set(key, value * 10)

        return value, writes

    assert await transact(redis, attempt) == 2
    assert seen == [1, 2] and await redis.get(key) == "20"

    async def nothing(p: Pipeline) -> tuple[str, Writes | None]:
        await p.watch(key)
        return "unchanged", None

    assert await transact(redis, nothing) == "unchanged"
    assert await redis.get(key) == "20"


async def test_connections_are_listed_where_they_are(
    redis: Redis, make_settings: Callable[..., Settings]
) -> None:
    """Connected: in the node's list; disconnected: in the grace lease table, until then."""
    settings = make_settings(reconnect_grace_seconds=30, host_grace_seconds=60)
    clock = ManualClock(1_000_000.0)

    store = RoomStore(redis, Keys(settings.key_prefix), settings, clock)
    meta = await store.create("alice", "Room", "", "en", SpeakerPolicy.ANYONE_CAN_REQUEST, None)
    room = meta.id

    async def grace() -> dict[str, float]:
        members = [str(m) for m in await redis.zrange(store.grace.key, 0, -1)]
        return {m: float(await redis.zscore(store.grace.key, m) or 0) for m in members}

    async def on(node: str) -> set[str]:
        return {str(m) for m in await redis.smembers(store.node_conns(node))}

    # The host's place is held from the start, for the host grace period.
    assert await grace() == {entry(room, "alice", "created"): 1_000_060_000}
    await store.join(room, "alice", "c1", "n1")
    await store.join(room, "bob", "c2", "n1")
    assert await grace() == {}
    assert await on("n1") == {entry(room, "alice", "c1"), entry(room, "bob", "c2")}

    clock.advance(5)
    await store.disconnect(room, "bob", "c2", "n1")
    assert await on("n1") == {entry(room, "alice", "c1")}
    assert await grace() == {entry(room, "bob", "c2"): 1_000_035_000}

    await store.join(room, "bob", "c3", "n2")  # back, through another node
    assert await grace() == {}
    assert await on("n2") == {entry(room, "bob", "c3")}
    await store.join(room, "bob", "c4", "n1")  # and again: the newer socket replaces it
    assert await on("n2") == set()
    assert await on("n1") == {entry(room, "alice", "c1"), entry(room, "bob", "c4")}

    await store.act(room, "alice", "remove", "bob")
    assert await on("n1") == {entry(room, "alice", "c1")}
    await store.end_by_host(room, "alice")
    assert await store.record(room, "alice") is None
