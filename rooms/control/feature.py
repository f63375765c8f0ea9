"""Wires the rooms control plane into the app: its endpoints, socket and per-process duties."""

from __future__ import annotations

import asyncio
import contextlib

from rooms.control import api, socket
from rooms.control.service import ROOMS, RoomsService
from rooms.media.port import MediaService
from server.background import every, stop
from server.feature import Provides, ServiceFeature, Slot
from server.graph.store import Graph
from server.platform import Platform
from server.webhooks.feature import Webhooks


class RoomsFeature(ServiceFeature[RoomsService]):
    slot: Slot[RoomsService] = ROOMS
    apis = (api.api,)
    routes = (socket.route,)

    def __init__(
        self,
        graph: Provides[Graph],
        media: Provides[MediaService] | None,
        webhooks: Provides[Webhooks] | None = None,
    ) -> None:
        super().__init__()
        self.graph = graph
        self.media = media
        self.webhooks = webhooks
        self._runner: asyncio.Task[None] | None = None

    async def start(self, platform: Platform) -> RoomsService:
        media = self.media.service if self.media is not None else None
        outbox = self.webhooks.service.outbox if self.webhooks is not None else None
        service = RoomsService(platform, self.graph.service, media, outbox)
        await service.hub.start()
        interval = service.settings.room_tick_seconds
        self._runner = asyncio.create_task(
            every(interval, service.tick, "rooms.tick"), name="rooms-tick"
        )
        return service

    async def stop(self, service: RoomsService) -> None:
        if self._runner is not None:
            await stop(self._runner)
        await service.stop()
        with contextlib.suppress(Exception):
            await service.presence.leave()
        await service.hub.stop()
