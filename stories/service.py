"""The stories use cases: each checks who is asking, builds what it writes and reads the time
from the injected clock. The routes (``api``) only parse, call one of these and present.

Every read checks, for the caller, that the story is live and that its audience includes
them; a story the caller may not see is ``story_not_found``, like one that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import replace
from typing import IO, Any

from redis.asyncio.cluster import RedisCluster

from server.auth import valid_user_id
from server.clock import Clock
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.graph.rules import other_user
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.store import REDIS_DOWN
from stories import media, rules, signing
from stories.fanout import Fanout
from stories.live import LiveTrays
from stories.media import Processed
from stories.model import (
    TRAY_CHANGED,
    Blob,
    FanoutJob,
    InboxItem,
    LiveEvent,
    MediaGrant,
    MediaInfo,
    Options,
    Story,
    StoryView,
    ViewerPage,
    ref_of,
    tray_member,
)
from stories.rules import Cursor, Relation, TrayEntry
from stories.storage import BlobStorage
from stories.store import StoryStore
from stories.trays import TrayIndex, TrayRead

VARIANTS = ("full", "thumb")
# Replies and reactions, as their refusals name them.
ANSWERS = {"reply": ("reply to", "replies"), "reaction": ("react to", "reactions")}


def new_id() -> str:
    """16 URL-safe characters (96 random bits)."""
    return secrets.token_urlsafe(12)


def story_not_found() -> NotFound:
    return NotFound("no such story", code="story_not_found")


def media_not_found() -> NotFound:
    return NotFound("no such media", code="media_not_found")


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


class StoriesService:
    def __init__(
        self,
        store: StoryStore,
        fanout: Fanout,
        live: LiveTrays,
        storage: BlobStorage,
        settings: Settings,
        limiter: RateLimiter,
    ) -> None:
        self.store = store
        self.fanout = fanout
        self.live = live
        self.trays: TrayIndex = fanout.trays
        self.storage = storage
        self.settings = settings
        self.limiter = limiter
        self.clock: Clock = store.clock

    # --- who may see and do what ----------------------------------------------------------

    async def _visible(self, viewer: str, story_id: str) -> tuple[Story, Relation]:
        """The live story if ``viewer`` may see it; ``story_not_found`` whatever the reason."""
        story = await self.store.load(story_id)
        if story is None:
            raise story_not_found()
        rel = await self.store.relation(viewer, story.author)
        if not rules.may_view(story.audience, rel):
            raise story_not_found()
        return story, rel

    async def _owned(self, user: str, story_id: str) -> Story:
        story, rel = await self._visible(user, story_id)
        if not rel.is_author:
            raise Forbidden("only the story's author can do that", code="not_author")
        return story

    async def _answerable(self, user: str, story_id: str, kind: str) -> Story:
        """A story ``user`` may answer with a ``kind`` of inbox item (reply or reaction)."""
        story, rel = await self._visible(user, story_id)
        verb, plural = ANSWERS[kind]
        if rel.is_author:
            raise Forbidden(f"you cannot {verb} your own story", code="own_story")
        if not (story.allow_replies if kind == "reply" else story.allow_reactions):
            raise Forbidden(
                f"the author turned {plural} off for this story", code=f"{plural}_disabled"
            )
        return story

    def _text(self, value: str, what: str) -> str:
        """Text as stored, once the blanks around it are trimmed (``rules.clean_text``)."""
        text = rules.clean_text(value)
        limit = self.settings.max_story_text
        if not text:
            raise ValidationFailed(f"{what} must not be blank", code="empty_text")
        if len(text) > limit:
            raise ValidationFailed(
                f"{what} is longer than {limit} characters", code="text_too_long"
            )
        return text

    # --- reading ------------------------------------------------------------------------

    async def _views(self, viewer: str, stories: list[Story]) -> list[StoryView]:
        at = self.clock.now()
        flags = await self.store.seen_and_counts(stories, viewer)
        return [StoryView(s, seen, n, at) for s, (seen, n) in zip(stories, flags, strict=True)]

    async def story(self, viewer: str, story_id: str) -> StoryView:
        """One live story the viewer may see."""
        story, _ = await self._visible(viewer, story_id)
        [view] = await self._views(viewer, [story])
        return view

    async def author_stories(self, viewer: str, author: str) -> list[StoryView]:
        """The author's live stories that the viewer may see, oldest first."""
        valid_user_id(author)
        rel = await self.store.relation(viewer, author)
        if rel.blocked or rel.hidden:  # an empty list, like a user without stories
            return []
        live = await self.store.author_stories(author)
        return await self._views(viewer, [s for s in live if rules.may_view(s.audience, rel)])

    async def tray(self, viewer: str) -> list[TrayEntry]:
        """Own stories, then authors with unseen stories, then seen ones (``rules.order_tray``)."""
        return (await self.trays.read(viewer)).entries

    async def tray_read(self, viewer: str) -> TrayRead:
        """The tray with what the live tray needs besides (the pulled authors it asked)."""
        return await self.trays.read(viewer)

    async def shared(self, author: str, story_id: str) -> StoryView | None:
        """The story as anyone holding its share link sees it: only a live public story by
        ``author``; None in every other case, so a link never tells whether a private story
        exists."""
        story = await self.store.load(story_id)
        if story is None or story.author != author or story.audience != "public":
            return None
        return StoryView(story, seen=False, view_count=None, at=self.clock.now())

    async def media(self, story_id: str, variant: str, exp: int, sig: str) -> MediaGrant:
        """The file a signed media URL names; ``media_not_found`` for a wrong signature, an
        expired story or a missing file, ``url_expired`` when only the URL's time is up."""
        secret = self.settings.secret_key
        if variant not in VARIANTS or not signing.verify(secret, story_id, variant, exp, sig):
            raise media_not_found()
        story = await self.store.load(story_id)
        if story is None or story.media is None or variant not in story.media.blobs:
            raise media_not_found()
        now = self.clock.now()
        if exp <= now:
            raise Forbidden(
                "this media link has expired; fetch the story again", code="url_expired"
            )
        blob = story.media.blobs[variant]
        if not await self.storage.exists(blob.key):
            raise media_not_found()
        max_age = max(0, int(min(exp, story.expires_at) - now))
        return MediaGrant(self.storage.path(blob.key), blob.content_type, max_age)

    # --- publishing ---------------------------------------------------------------------

    async def publish_text(
        self, author: str, text: str, background: str | None, options: Options
    ) -> StoryView:
        """A text story on a background colour (the first of ``rules.BACKGROUNDS`` if none)."""
        text = self._text(text, "text")
        # Only a publish that can succeed uses up the quota: refusals come first.
        await self._check_room(author)
        await self.limiter.hit(self.settings.rate_publish, "story_publish", author)
        story = self._new_story(author, "text", options)
        colour = (background or rules.BACKGROUNDS[0]).upper()
        story = replace(story, text=text, background=colour)
        await self._publish(story, None)
        return StoryView(story, seen=True, view_count=0, at=story.created_at)

    async def ready_to_publish(self, author: str) -> None:
        """Refusals due before an upload is read: a full story count, a used-up quota (counted
        only by ``publish_media``, once the upload passed)."""
        await self._check_room(author)
        await self.limiter.check(self.settings.rate_publish, "story_publish", author)

    async def publish_media(
        self, author: str, caption: str | None, options: Options, upload: IO[bytes]
    ) -> StoryView:
        """A photo or video story from an untrusted upload (sniffed, cleaned, re-encoded)."""
        s = self.settings
        caption = None if caption is None else self._text(caption, "caption")
        processed = await asyncio.to_thread(
            media.process, upload, s.max_image_pixels, s.max_video_seconds
        )
        await self.limiter.hit(s.rate_publish, "story_publish", author)
        story = self._new_story(author, processed.kind, options)
        story = replace(story, caption=caption, media=media_info(story.id, processed))
        await self._publish(story, processed)
        return StoryView(story, seen=True, view_count=0, at=story.created_at)

    def _new_story(self, author: str, kind: str, options: Options) -> Story:
        now = self.clock.now()
        return Story(
            id=new_id(),
            author=author,
            kind=kind,
            audience=options.audience,
            allow_replies=options.allow_replies,
            allow_reactions=options.allow_reactions,
            created_at=now,
            expires_at=now + self.settings.story_ttl_seconds,
        )

    async def _check_room(self, author: str) -> None:
        """Early refusal, before an upload is processed (``_publish`` re-checks atomically)."""
        max_active = self.settings.max_active_stories
        if await self.store.count_live(author) >= max_active:
            raise too_many(max_active)

    async def _publish(self, story: Story, processed: Processed | None) -> None:
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
            mode = await self.fanout.mode(story.author)
            reserved = await self._reserve_and_fan_out(story, mode)
        except BaseException:
            with contextlib.suppress(*REDIS_DOWN, OSError):
                await self.purge(story.id, author=story.author, retract=False)
            raise
        if not reserved:  # refused: no tray ever had it (its fan-out stops at once)
            with contextlib.suppress(*REDIS_DOWN, OSError):
                await self.purge(story.id, author=story.author, shown=False)
            raise too_many(self.settings.max_active_stories)

    async def _reserve_and_fan_out(self, story: Story, mode: str | None) -> bool:
        """Reserve the story and queue its fan-out in one round trip: Redis runs the job's
        XADD after the reserve script, so the consumer finds the story reserved, or refused
        (then it stops at once). On a Cluster the two are on different nodes (and a cluster
        pipeline refuses scripts): one after the other, a process dying in between leaving
        the story unfanned."""
        limit = self.settings.max_active_stories
        if isinstance(self.store.r, RedisCluster):
            if not await self.store.reserve(story, limit):
                return False
            async with self.store.r.pipeline(transaction=False) as p:
                self._queue_fan_out(p, story, mode)
                await p.execute()
            return True
        async with self.store.r.pipeline(transaction=False) as p:
            await self.store.reserve(story, limit, client=p)
            self._queue_fan_out(p, story, mode)
            reserved, *_ = await p.execute()
        return bool(reserved)

    def _queue_fan_out(self, p: Any, story: Story, mode: str | None) -> None:
        if mode != "pull":
            member = tray_member(ref_of(story))
            job = FanoutJob("publish", story.author, "0", member, story.expires_at)
            self.fanout.queue(p, job)
        if mode is not None:  # followers pull it: one message for every live tray
            event = LiveEvent("story.published", story.author, story.id).encode()
            p.spublish(self.store.posts_channel(story.author), event)
        p.spublish(self.store.events_channel(story.author), TRAY_CHANGED)

    async def purge(
        self,
        story_id: str,
        author: str | None = None,
        retract: bool = True,
        shown: bool = True,
        expired: bool = False,
    ) -> Story | None:
        """Remove a story's keys and blobs (deleting, expiring); repeating it is harmless. A
        story deleted before it expired is tombstoned (trays stop showing it at once) and,
        with ``retract``, its refs are taken out of followers' trays; a story never
        ``shown`` (its publish was refused) needs neither. ``expired``: by the sweeper."""
        story = await self.store.purge(story_id, author, tombstone=shown, expired=expired)
        await self.storage.delete_story(story_id)
        if shown and story is not None and rules.is_live(story.expires_at, self.clock.now()):
            if retract:
                await self.fanout.retract(story)
            await self.trays.notify(story.author)
            await self.store.r.spublish(self.store.posts_channel(story.author), TRAY_CHANGED)
        return story

    # --- the author's -------------------------------------------------------------------

    async def update(
        self, user: str, story_id: str, allow_replies: bool | None, allow_reactions: bool | None
    ) -> StoryView:
        """Turn replies or reactions on or off (author only); None leaves a flag as it is."""
        story = await self._owned(user, story_id)
        asked = {"allow_replies": allow_replies, "allow_reactions": allow_reactions}
        flags = {name: on for name, on in asked.items() if on is not None}
        if flags and not await self.store.update_flags(story.id, flags):
            raise story_not_found()
        story = await self.store.load(story.id) or story
        [view] = await self._views(user, [story])
        return view

    async def delete(self, user: str, story_id: str) -> None:
        """Delete a story and its media now (author only)."""
        story = await self._owned(user, story_id)
        await self.purge(story.id)

    async def viewers(
        self, user: str, story_id: str, cursor: Cursor | None, limit: int
    ) -> ViewerPage:
        """Who has seen the story, newest first (author only)."""
        story = await self._owned(user, story_id)
        return await self.store.viewers_page(story, cursor, limit)

    async def inbox(
        self, user: str, cursor: Cursor | None, limit: int
    ) -> tuple[list[InboxItem], Cursor | None]:
        """Replies and reactions to the user's live stories, newest first."""
        return await self.store.inbox_page(user, cursor, limit)

    # --- the viewer's -------------------------------------------------------------------

    async def mark_seen(self, viewer: str, story_id: str) -> None:
        """Idempotent; the first view is the one counted, and authors never count."""
        story, rel = await self._visible(viewer, story_id)
        if not rel.is_author:
            await self.store.mark_seen(story, viewer)

    async def reply(self, user: str, story_id: str, text: str) -> InboxItem:
        story = await self._answerable(user, story_id, "reply")
        text = self._text(text, "text")
        await self.limiter.hit(self.settings.rate_reply, "story_reply", user)
        return await self._deliver(story, user, "reply", text=text)

    async def react(self, user: str, story_id: str, emoji: str) -> InboxItem:
        story = await self._answerable(user, story_id, "reaction")
        await self.limiter.hit(self.settings.rate_react, "story_react", user)
        return await self._deliver(story, user, "reaction", emoji=emoji)

    async def _deliver(
        self, story: Story, user: str, kind: str, text: str | None = None, emoji: str | None = None
    ) -> InboxItem:
        item = InboxItem(
            id=new_id(),
            kind=kind,
            story_id=story.id,
            from_user=user,
            created_at=self.clock.now(),
            story_expires_at=story.expires_at,
            text=text,
            emoji=emoji,
        )
        await self.store.add_inbox_item(story.author, item)
        return item

    # --- mutes and the hide list --------------------------------------------------------

    async def mutes(self, user: str, offset: int, limit: int) -> tuple[list[str], int | None]:
        """Authors whose stories the user muted (kept out of the tray), newest first."""
        return await self.store.mutes_page(user, offset, limit)

    async def mute(self, user: str, author: str, on: bool) -> None:
        """Muting keeps an author out of the user's tray; following is unchanged."""
        await self.store.set_muted(user, other_user(user, author), on)
        await self.trays.notify(user)

    async def hidden(self, author: str, offset: int, limit: int) -> tuple[list[str], int | None]:
        """Users the author hides their stories from, newest first."""
        return await self.store.hidden_page(author, offset, limit)

    async def hide(self, author: str, user: str, on: bool) -> None:
        """Hide all the author's stories, present and future, from a user (or stop)."""
        await self.store.set_hidden(author, other_user(author, user), on)
        if on:
            await self.trays.notify(user)
        else:
            await self.trays.may_see_more(user, author)
