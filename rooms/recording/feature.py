"""Wires recording into the app: the service, its recorders' tick and pump, the expiry
sweeper, and the ended-rooms listing of the control plane."""

from __future__ import annotations

import asyncio

from rooms.control.service import RoomsService
from rooms.media.router import MediaRouter
from rooms.recording.api import RECORDING, api
from rooms.recording.recorder import PUMP_SECONDS
from rooms.recording.service import TICK_SECONDS, RecordingService
from rooms.recording.store import RecordingStore
from server.background import every, stop
from server.feature import Provides, ServiceFeature, Slot
from server.graph.store import Graph
from server.platform import Platform
from server.webhooks.feature import Webhooks
from stories.storage import LocalStorage


class RecordingFeature(ServiceFeature[RecordingService]):
    slot: Slot[RecordingService] = RECORDING
    apis = (api,)

    def __init__(
        self,
        graph: Provides[Graph],
        rooms: Provides[RoomsService],
        media: Provides[MediaRouter] | None,
        webhooks: Provides[Webhooks] | None = None,
    ) -> None:
        super().__init__()
        self.graph = graph
        self.rooms = rooms
        self.media = media
        self.webhooks = webhooks
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, platform: Platform) -> RecordingService:
        settings = platform.settings
        rooms = self.rooms.service
        outbox = self.webhooks.service.outbox if self.webhooks is not None else None
        service = RecordingService(
            RecordingStore(platform.redis, platform.keys, outbox),
            LocalStorage(settings.data_dir / "recordings"),
            rooms.store,
            self.graph.service,
            settings,
            platform.clock,
            self.media.service.node.service if self.media is not None else None,
            platform.node.id,
        )
        rooms.replays = service
        self._tasks = [
            asyncio.create_task(every(TICK_SECONDS, service.tick, "recording.tick")),
            asyncio.create_task(every(PUMP_SECONDS, service.pump, "recording.pump")),
            asyncio.create_task(
                every(settings.sweep_interval_seconds, service.sweep_once, "recording.sweep")
            ),
        ]
        return service

    async def stop(self, service: RecordingService) -> None:
        for task in self._tasks:
            await stop(task)
        await service.stop()
        self.rooms.service.replays = None
