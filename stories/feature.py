"""Wires the stories feature into the app: endpoints, the service, the tray index (kept in
step with the graph), the fan-out consumers, the live trays and the expiry sweeper."""

from __future__ import annotations

import asyncio

from PIL import Image

from server.background import stop
from server.feature import Provides, ServiceFeature, Slot
from server.graph.store import Graph
from server.platform import Platform
from server.webhooks.feature import Webhooks
from stories.api import STORIES, api
from stories.fanout import FANOUT_SHARDS, Fanout
from stories.live import LiveTrays
from stories.service import StoriesService
from stories.storage import LocalStorage
from stories.store import StoryStore
from stories.sweeper import Sweeper
from stories.trays import TrayIndex


class StoriesFeature(ServiceFeature[StoriesService]):
    slot: Slot[StoriesService] = STORIES
    apis = (api,)

    def __init__(self, graph: Provides[Graph], webhooks: Provides[Webhooks] | None = None) -> None:
        super().__init__()
        self.graph = graph
        self.webhooks = webhooks
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, platform: Platform) -> StoriesService:
        settings = platform.settings
        # Pillow's own decompression-bomb guard, lowered to our cap (media.py also checks it
        # explicitly per upload, and turns Pillow's warning into an error).
        Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
        graph = self.graph.service
        outbox = self.webhooks.service.outbox if self.webhooks is not None else None
        store = StoryStore(
            platform.redis,
            platform.keys,
            settings.story_grace_seconds,
            graph,
            platform.clock,
            outbox,
        )
        trays = TrayIndex(store, settings.stories_tray_pull_max)
        fanout = Fanout(trays, settings, consumer=platform.node.id)
        for shard in range(FANOUT_SHARDS):
            await fanout.create_group(shard)
        live = LiveTrays(platform.redis, store, platform.node.id)
        await live.start()
        storage = LocalStorage(settings.data_dir / "media")
        service = StoriesService(store, fanout, live, storage, settings, platform.limiter)
        graph.listen(trays)
        sweeper = Sweeper(service, settings.sweep_interval_seconds)
        self._tasks = [
            asyncio.create_task(sweeper.run(), name="stories-sweeper"),
            asyncio.create_task(fanout.run(), name="stories-fanout"),
        ]
        return service

    async def stop(self, service: StoriesService) -> None:
        self.graph.service.unlisten(service.trays)
        for task in self._tasks:
            await stop(task)
        await service.live.stop()
