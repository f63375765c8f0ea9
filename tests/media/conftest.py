from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from rooms.media.service import RelayMediaService
from server.settings import Settings
from tests.media.client import Loopback
from tests.support import LiveServer, free_port


@pytest.fixture
async def make_media(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    """A real relay service (real aiortc) on its own, driven without any WebSocket."""
    made: list[RelayMediaService] = []

    async def make(**overrides: Any) -> RelayMediaService:
        service = RelayMediaService(make_settings(**overrides))
        made.append(service)
        return service

    yield make
    for service in made:
        await service.close()


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
    """A live server whose public URL is its own."""
    port = free_port()
    server = LiveServer(make_settings(public_base_url=f"http://127.0.0.1:{port}"), port=port)
    server.start()
    yield server
    server.stop()
