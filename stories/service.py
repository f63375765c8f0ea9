"""Operations that span Redis and the blob store: publishing, deleting, expiring a story."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass

import structlog

from server.errors import Conflict
from server.store import REDIS_DOWN
from stories.media import Processed
from stories.model import Blob, MediaInfo, Story
from stories.storage import BlobStorage
from stories.store import StoryStore

log = structlog.get_logger(__name__)


def new_id() -> str:
    """16 URL-safe characters (96 random bits)."""
    return secrets.token_urlsafe(12)


def too_many(max_active: int) -> Conflict:
    return Conflict(
        f"you already have {max_active} live stories; delete one or wait for one to expire",
        code="too_many_stories",
    )


def media_info(story_id: str, p: Processed) -> MediaInfo:
    return MediaInfo(
        content_type=p.content_type,
        width=p.width,
        height=p.height,
        duration=p.duration,
        blobs={
            "full": Blob(key=f"{story_id}/full.{p.full.ext}", content_type=p.full.content_type),
            "thumb": Blob(key=f"{story_id}/thumb.{p.thumb.ext}", content_type=p.thumb.content_type),
        },
    )


@dataclass
class StoriesService:
    store: StoryStore
    storage: BlobStorage

    async def check_room(self, author: str, max_active: int, now: float) -> None:
        """Early refusal, before an upload is processed (``publish`` re-checks atomically)."""
        if await self.store.count_live(author, now) >= max_active:
            raise too_many(max_active)

    async def publish(
        self, story: Story, processed: Processed | None, max_active: int, now: float
    ) -> None:
        try:
            if processed is not None and story.media is not None:
                # The sweeper's entry goes before any blob: whatever happens next, the
                # blobs are found and removed at expiry at the latest. (``save`` writes it
                # too, for text stories.)
                await self.store.mark_due(story.id, story.expires_at)
                await self.storage.put(story.media.blobs["full"].key, processed.full.data)
                await self.storage.put(story.media.blobs["thumb"].key, processed.thumb.data)
            # The hash first: once the story is in its author's index (reserve), every
            # reader that finds its id also finds the story.
            await self.store.save(story)
            if not await self.store.reserve(story, max_active, now):
                raise too_many(max_active)
        except BaseException:
            with contextlib.suppress(*REDIS_DOWN, OSError):
                await self.delete(story.id, author=story.author)
            raise

    async def delete(self, story_id: str, author: str | None = None) -> Story | None:
        """Remove a story's keys and blobs; repeating it is harmless."""
        story = await self.store.purge(story_id, author=author)
        await self.storage.delete_story(story_id)
        return story
