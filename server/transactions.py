"""Check-and-set transactions on Redis: WATCH, read, decide, then MULTI/EXEC, written once.

A transaction is an ``attempt``: it WATCHes the keys it reads (as many times as it likes,
e.g. the members listed in a set it has just read), reads them on the pipeline, decides,
and returns its result with the writes to make (``None``: nothing to write). The writes
run in one MULTI/EXEC; if any watched key changed since it was watched, EXEC fails and the
whole attempt runs again on fresh data, so a decision is never applied to data it did not
see. Domain errors raised by an attempt end the transaction with nothing written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

T = TypeVar("T")
Writes = Callable[[Pipeline], None]
Attempt = Callable[[Pipeline], Awaitable[tuple[T, Writes | None]]]


async def transact(redis: Redis, attempt: Attempt[T]) -> T:
    """Run ``attempt`` and its writes atomically; retried until no watched key changed.

    Retries are not counted: each one means another writer committed, so the room (or
    whatever the keys hold) made progress; a request's Redis time budget bounds the wait.
    """
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                result, writes = await attempt(pipe)
                if writes is None:
                    await pipe.reset()
                    return result
                pipe.multi()
                writes(pipe)
                await pipe.execute()
                return result
            except WatchError:
                continue
