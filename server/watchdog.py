"""The Redis watchdog: pings on a client of its own and opens the app's circuit while Redis
does not answer, so requests fail at once instead of each waiting out its budget."""

from __future__ import annotations

import asyncio

import structlog
from redis.asyncio import Redis

from server import metrics
from server.background import every
from server.store import REDIS_DOWN, circuit

log = structlog.get_logger(__name__)


# The watchdog's ping may take this long; the circuit opens on the second failure in a row,
# so a busy event loop delaying one reply does not turn requests away.
PING_TIMEOUT = 1.0
FAILURES_TO_OPEN = 2


async def watch_redis(redis: Redis, probe: Redis, interval: float) -> None:
    """Ping Redis (on a client of its own) every ``redis_watchdog_interval`` seconds.

    While pings fail the app's circuit is open, so requests answer 503 at once instead of
    each waiting out its Redis budget; the first ping that succeeds closes it again
    (redis-py reconnects by itself). Outages and recoveries are logged once and shown by
    the ``ephemera_redis_up`` gauge.
    """
    breaker = circuit(redis)
    failures = 0

    async def ping() -> None:
        nonlocal failures
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                await probe.ping()
            if failures:
                log.info("redis.recovered")
            failures = 0
        except (TimeoutError, *REDIS_DOWN) as exc:
            if not failures:
                log.error("redis.down", error=repr(exc))
            failures += 1
        breaker.open = failures >= FAILURES_TO_OPEN
        metrics.REDIS_UP.set(0 if failures else 1)

    await every(interval, ping, "redis.watchdog")
