"""Wires the media relay into the app: this node's relay, started before the control plane."""

from __future__ import annotations

import functools

from rooms.control import hub
from rooms.media.nodes import NodeRegistry
from rooms.media.service import RelayMediaService
from server.feature import ServiceFeature, Slot
from server.platform import Platform

MEDIA: Slot[RelayMediaService] = Slot("media")


class MediaFeature(ServiceFeature[RelayMediaService]):
    slot = MEDIA

    async def start(self, platform: Platform) -> RelayMediaService:
        settings = platform.settings
        nodes = NodeRegistry(
            platform.redis,
            platform.keys,
            platform.node.id,
            platform.node.url,
            heartbeat_seconds=settings.node_heartbeat_seconds,
            ttl_seconds=settings.node_ttl_seconds,
        )
        publish = functools.partial(hub.publish, platform.redis, platform.keys)
        service = RelayMediaService(settings, nodes, publish)
        await service.start()
        return service

    async def stop(self, service: RelayMediaService) -> None:
        # Every peer connection closes and the rooms are handed back before Redis closes.
        await service.close()
