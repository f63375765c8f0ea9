"""The Redis client: explicit timeouts, retries and health checks, so an outage fails fast."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.settings import Settings

# What an unreachable or dead Redis looks like to callers; turned into 503 by the app.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


def connect(url: str, settings: Settings) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        health_check_interval=settings.redis_health_check_interval,
        # One quick retry covers a connection the server closed while idle; more would only
        # delay the 503 during a real outage.
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        max_connections=200,
    )


class Keys:
    """Every Redis key name in one place, under the configured prefix."""

    def __init__(self, prefix: str) -> None:
        self.p = prefix

    def __call__(self, *parts: str) -> str:
        return self.p + ":".join(parts)


@dataclass
class RedisHealth:
    """What the watchdog last saw of Redis (one per app instance)."""

    up: bool = True
