from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from rooms.media.nodes import NodeRegistry
from rooms.media.service import RelayMediaService
from server.settings import Settings
from server.store import Keys, connect
from tests.media.client import Loopback
from tests.support import LiveServer, free_port


@pytest.fixture
async def make_media(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    """A real relay service (real Redis, real aiortc) driven without any WebSocket."""
    made: list[tuple[RelayMediaService, Any]] = []

    async def make(**overrides: Any) -> RelayMediaService:
        settings = make_settings(**overrides)
        assert settings.redis_url is not None
        redis = connect(settings.redis_url, settings)
        nodes = NodeRegistry(
            redis, Keys(settings.key_prefix), settings.node_id, settings.public_base_url
        )
        service = RelayMediaService(settings, nodes)
        await service.start()
        made.append((service, redis))
        return service

    yield make
    for service, redis in made:
        await service.close()
        await redis.aclose()


@pytest.fixture
async def media(make_media: Callable[..., Any]) -> RelayMediaService:
    service: RelayMediaService = await make_media()
    return service


@pytest.fixture
async def participants() -> AsyncIterator[list[Loopback]]:
    """Loopback participants created by a test, closed after it."""
    made: list[Loopback] = []
    yield made
    for p in made:
        await p.close()


@pytest.fixture
def media_server(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    """A live server whose public URL is its own (room ws_url points back at it)."""
    port = free_port()
    server = LiveServer(make_settings(public_base_url=f"http://127.0.0.1:{port}"), port=port)
    server.start()
    yield server
    server.stop()
