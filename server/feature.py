"""How a feature (stories, rooms) plugs into the app: its endpoints, routes and lifespan."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from starlette.routing import BaseRoute

from server.api import Api
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.store import Keys


@dataclass
class AppState:
    """Shared clients for one app instance (lifespan state, never module globals)."""

    settings: Settings
    redis: Redis
    keys: Keys
    limiter: RateLimiter
    # Feature services by name, e.g. services["rooms"]; each feature offers a typed getter.
    services: dict[str, Any] = field(default_factory=dict)
    redis_up: bool = True


@dataclass
class Feature:
    name: str
    apis: list[Api] = field(default_factory=list)
    routes: list[BaseRoute] = field(default_factory=list)
    # Entered after Redis is connected, exited before it closes: start background tasks here.
    lifespan: Callable[[AppState], AbstractAsyncContextManager[None]] | None = None
