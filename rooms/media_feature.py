"""Wires the media relay into the app (registers services["media"])."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

from rooms.media import RelayMediaService
from rooms.nodes import NodeRegistry
from server.feature import AppState, Feature


def media_service(state: AppState) -> RelayMediaService:
    """The relay of this app instance (typed access to ``state.services["media"]``)."""
    service: RelayMediaService = state.services["media"]
    return service


@contextlib.asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    settings = state.settings
    nodes = NodeRegistry(
        state.redis,
        state.keys,
        # Unique per process run, even when processes share one configured node id.
        f"{settings.node_id}-{secrets.token_hex(3)}",
        settings.media_node_url or settings.public_base_url,
        heartbeat_seconds=settings.node_heartbeat_seconds,
        ttl_seconds=settings.node_ttl_seconds,
    )
    service = RelayMediaService(settings, nodes, state.services)
    await service.start()
    state.services["media"] = service
    try:
        yield
    finally:
        # Every peer connection closes and the rooms are handed back before Redis closes.
        await service.close()
        state.services.pop("media", None)


feature = Feature(name="media", lifespan=lifespan)
