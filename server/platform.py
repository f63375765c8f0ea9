"""What every feature is built on: one ``Platform`` per app instance."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from server.clock import Clock
from server.nodes import Node, NodeRegistry
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.store import Keys


@dataclass(frozen=True)
class Platform:
    """What every feature is built on, one per app instance (never module globals)."""

    settings: Settings
    redis: Redis
    keys: Keys
    limiter: RateLimiter
    clock: Clock
    node: Node
    nodes: NodeRegistry  # the live nodes, this one included (started and stopped with it)
