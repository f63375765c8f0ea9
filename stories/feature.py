"""Wires the stories feature into the app: endpoints, the service and the expiry sweeper."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from PIL import Image

from server.background import stop
from server.feature import AppState, Feature
from stories.api import api
from stories.service import StoriesService
from stories.storage import LocalStorage
from stories.store import StoryStore
from stories.sweeper import Sweeper


@contextlib.asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    settings = state.settings
    # Pillow's own decompression-bomb guard, lowered to our cap (media.py also checks it
    # explicitly per upload, and turns Pillow's warning into an error).
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
    service = StoriesService(
        store=StoryStore(state.redis, state.keys, settings.story_grace_seconds),
        storage=LocalStorage(settings.data_dir / "media"),
    )
    state.services["stories"] = service
    sweeper = Sweeper(service, settings.sweep_interval_seconds)
    task = asyncio.create_task(sweeper.run(), name="stories-sweeper")
    try:
        yield
    finally:
        await stop(task)


feature = Feature(name="stories", apis=[api], lifespan=lifespan)
