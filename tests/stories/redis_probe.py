"""What tests and the benchmark measure of Redis: round trips and commands per call (a
counting connection class), and whether the fan-out has finished."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection

from stories.fanout import FANOUT_SHARDS


@dataclass
class Counts:
    """Round trips (one per command or per pipeline sent) and commands, so far."""

    round_trips: int = 0
    commands: int = 0


def counting(base: type[AbstractConnection], counts: Counts) -> type[AbstractConnection]:
    """``base`` counting into ``counts``: ``send_packed_command`` is one round trip (to one
    node); ``pack_command`` runs once per command, pipelines included."""

    class Counting(base):  # type: ignore[valid-type, misc]
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            counts.round_trips += 1
            await super().send_packed_command(command, check_health)

        def pack_command(self, *args: Any) -> Any:
            counts.commands += 1
            return super().pack_command(*args)

    return Counting


def counting_redis(url: str, counts: Counts) -> Redis:
    """A client whose connections count into ``counts``."""
    r = Redis.from_url(url, decode_responses=True)
    r.connection_pool.connection_class = counting(r.connection_pool.connection_class, counts)
    return r


async def counting_cluster(url: str, counts: Counts) -> RedisCluster:
    """A cluster client whose connections to every node count into ``counts`` (RedisCluster
    takes no connection class: each node's is swapped once the nodes are known, and the
    connections made to discover them are dropped)."""
    r = RedisCluster.from_url(url, decode_responses=True)
    await r.initialize()
    for node in r.get_nodes():
        await node.disconnect()
        node._connections.clear()
        node._free.clear()
        node.connection_class = cast(type[Connection], counting(node.connection_class, counts))
    return r


def fanout_streams(prefix: str) -> list[str]:
    return [f"{prefix}st:fanout:{{fanout-{k}}}" for k in range(FANOUT_SHARDS)]


async def wait_fanned_out(redis: Redis, prefix: str, within: float = 10.0) -> None:
    """Wait until every fan-out batch queued so far is done: the streams only hold work not
    done yet (a batch leaves its stream as it is acknowledged)."""
    deadline = time.monotonic() + within
    while True:
        async with redis.pipeline(transaction=False) as p:
            for key in fanout_streams(prefix):
                p.xlen(key)
            if not any(await p.execute()):
                return
        assert time.monotonic() < deadline, "the fan-out did not finish"
        await asyncio.sleep(0.01)
