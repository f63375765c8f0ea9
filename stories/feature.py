"""Wires the stories feature into the app: endpoints, the service and the expiry sweeper."""

from __future__ import annotations

import asyncio

from PIL import Image

from server.background import stop
from server.feature import Provides, ServiceFeature, Slot
from server.graph.store import Graph
from server.platform import Platform
from server.webhooks.feature import Webhooks
from stories.api import STORIES, api
from stories.service import StoriesService
from stories.storage import LocalStorage
from stories.store import StoryStore
from stories.sweeper import Sweeper


class StoriesFeature(ServiceFeature[StoriesService]):
    slot: Slot[StoriesService] = STORIES
    apis = (api,)

    def __init__(self, graph: Provides[Graph], webhooks: Provides[Webhooks] | None = None) -> None:
        super().__init__()
        self.graph = graph
        self.webhooks = webhooks
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, platform: Platform) -> StoriesService:
        settings = platform.settings
        # Pillow's own decompression-bomb guard, lowered to our cap (media.py also checks it
        # explicitly per upload, and turns Pillow's warning into an error).
        Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
        clock = platform.clock
        outbox = self.webhooks.service.outbox if self.webhooks is not None else None
        store = StoryStore(
            platform.redis,
            platform.keys,
            settings.story_grace_seconds,
            self.graph.service,
            clock,
            outbox,
        )
        storage = LocalStorage(settings.data_dir / "media")
        service = StoriesService(store, storage, settings, platform.limiter, clock)
        sweeper = Sweeper(service, settings.sweep_interval_seconds)
        self._sweeper = asyncio.create_task(sweeper.run(), name="stories-sweeper")
        return service

    async def stop(self, service: StoriesService) -> None:
        if self._sweeper is not None:
            await stop(self._sweeper)
