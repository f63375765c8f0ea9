"""HTTP endpoints of stories. Every read checks, for the caller, that the story is live and
that its audience includes them; a story the caller may not see answers 404, like one that
does not exist."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

from server.api import Api, Ctx, format_validation_error
from server.auth import valid_user_id
from server.errors import Forbidden, NotFound, ValidationFailed
from server.feature import Slot
from server.graph.api import other_user
from server.graph.schemas import PageQuery, UserPage
from stories import media, rules, signing
from stories.model import InboxItem, Story
from stories.rules import Relation
from stories.schemas import (
    ConfigOut,
    CursorQuery,
    InboxItemOut,
    InboxOut,
    MediaOut,
    MediaQuery,
    MediaStoryFields,
    ReactionIn,
    ReplyIn,
    StoriesOut,
    StoryOut,
    StoryPatch,
    TextStoryIn,
    TrayEntryOut,
    TrayOut,
    ViewerOut,
    ViewersOut,
)
from stories.service import StoriesService, media_info, new_id
from stories.upload import read_upload

api = Api("stories")
STORIES: Slot[StoriesService] = Slot("stories")
VARIANTS = ("full", "thumb")


def service(ctx: Ctx) -> StoriesService:
    return STORIES.of(ctx.request)


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def story_not_found() -> NotFound:
    return NotFound("no such story", code="story_not_found")


def checked_text(value: str, limit: int, what: str) -> str:
    text = rules.clean_text(value)
    if not text:
        raise ValidationFailed(f"{what} must not be blank", code="empty_text")
    if len(text) > limit:
        raise ValidationFailed(f"{what} is longer than {limit} characters", code="text_too_long")
    return text


def cursor_of(query: CursorQuery) -> rules.Cursor | None:
    if query.cursor is None:
        return None
    cursor = rules.decode_cursor(query.cursor)
    if cursor is None:
        raise ValidationFailed("invalid cursor", code="invalid_cursor")
    return cursor


def next_cursor(cursor: rules.Cursor | None) -> str | None:
    return rules.encode_cursor(*cursor) if cursor else None


async def visible(ctx: Ctx, story_id: str, now: float) -> tuple[Story, Relation]:
    """The live story if the caller may see it; 404 otherwise, whatever the reason."""
    store = service(ctx).store
    story = await store.load(story_id, now)
    if story is None:
        raise story_not_found()
    rel = await store.relation(ctx.user, story.author)
    if not rules.may_view(story.audience, rel):
        raise story_not_found()
    return story, rel


async def owned(ctx: Ctx, story_id: str, now: float) -> Story:
    story, rel = await visible(ctx, story_id, now)
    if not rel.is_author:
        raise Forbidden("only the story's author can do that", code="not_author")
    return story


def media_url(ctx: Ctx, story_id: str, variant: str, exp: int) -> str:
    settings = ctx.settings
    sig = signing.sign(settings.secret_key, story_id, variant, exp)
    path = f"/v1/stories/{story_id}/media/{variant}?exp={exp}&sig={sig}"
    # Absolute when the deployment says where it is reachable (`ephemera serve` does);
    # otherwise relative, which <img src> resolves against the page's own origin.
    if "public_base_url" in settings.model_fields_set:
        return settings.public_base_url.rstrip("/") + path
    return path


def story_out(ctx: Ctx, story: Story, seen: bool, view_count: int | None, now: float) -> StoryOut:
    out_media = None
    if story.media is not None:
        exp = rules.signed_url_expiry(now, story.expires_at, ctx.settings.media_url_ttl_seconds)
        out_media = MediaOut(
            url=media_url(ctx, story.id, "full", exp),
            thumbnail_url=media_url(ctx, story.id, "thumb", exp),
            content_type=story.media.content_type,
            width=story.media.width,
            height=story.media.height,
            duration=story.media.duration,
        )
    return StoryOut(
        id=story.id,
        author=story.author,
        kind=story.kind,
        text=story.text,
        background=story.background,
        caption=story.caption,
        media=out_media,
        audience=story.audience,
        allow_replies=story.allow_replies,
        allow_reactions=story.allow_reactions,
        created_at=ts(story.created_at),
        expires_at=ts(story.expires_at),
        seen=seen,
        view_count=view_count,
    )


async def single_out(ctx: Ctx, story: Story, now: float) -> StoryOut:
    [(seen, count)] = await service(ctx).store.seen_and_counts([story], ctx.user)
    return story_out(ctx, story, seen, count, now)


def item_out(item: InboxItem) -> InboxItemOut:
    return InboxItemOut(
        id=item.id,
        kind=item.kind,
        story_id=item.story_id,
        from_user=item.from_user,
        text=item.text,
        emoji=item.emoji,
        created_at=ts(item.created_at),
    )


# --- fixed paths first: they must win over /v1/stories/{story_id} ------------------------


@api.get("/v1/stories/config")
async def get_story_config(ctx: Ctx) -> ConfigOut:
    """Limits and choices a client needs to build the publish screen."""
    s = ctx.settings
    return ConfigOut(
        allowed_reactions=list(rules.ALLOWED_REACTIONS),
        max_text=s.max_story_text,
        ttl_seconds=s.story_ttl_seconds,
        max_video_seconds=s.max_video_seconds,
        max_upload_bytes=s.max_upload_bytes,
        backgrounds=list(rules.BACKGROUNDS),
        audiences=list(rules.AUDIENCES),
        image_types=sorted({m for m in media.IMAGE_FORMATS if m != "image/apng"}),
        video_types=sorted(media.VIDEO_FORMATS),
    )


@api.get("/v1/stories/tray")
async def get_tray(ctx: Ctx) -> TrayOut:
    """The caller's tray: own stories, then authors with unseen stories, then seen ones."""
    entries, _ = await service(ctx).store.tray(ctx.user, time.time())
    return TrayOut(
        entries=[
            TrayEntryOut(
                author=e.author,
                story_count=e.story_count,
                unseen_count=e.unseen_count,
                all_seen=e.all_seen,
                start_story_id=e.start_story_id,
                latest_at=ts(e.latest_at),
            )
            for e in entries
        ]
    )


@api.get("/v1/stories/inbox")
async def get_inbox(ctx: Ctx, query: CursorQuery) -> InboxOut:
    """Replies and reactions to the caller's live stories, newest first."""
    items, nxt = await service(ctx).store.inbox_page(
        ctx.user, cursor_of(query), query.limit, time.time()
    )
    return InboxOut(items=[item_out(i) for i in items], next_cursor=next_cursor(nxt))


@api.post("/v1/stories", status=201)
async def publish_text_story(ctx: Ctx, body: TextStoryIn) -> StoryOut:
    """Publish a text story on a background colour."""
    s = ctx.settings
    text = checked_text(body.text, s.max_story_text, "text")
    now = time.time()
    svc = service(ctx)
    # Only a publish that can succeed uses up the quota: refusals come first.
    await svc.check_room(ctx.user, s.max_active_stories, now)
    await ctx.limiter.hit(s.rate_publish, "story_publish", ctx.user)
    story = Story(
        id=new_id(),
        author=ctx.user,
        kind="text",
        audience=body.audience,
        allow_replies=body.allow_replies,
        allow_reactions=body.allow_reactions,
        created_at=now,
        expires_at=now + s.story_ttl_seconds,
        text=text,
        background=(body.background or rules.BACKGROUNDS[0]).upper(),
    )
    await svc.publish(story, None, s.max_active_stories, now)
    return story_out(ctx, story, True, 0, now)


ACCEPTED_TYPES = sorted(
    m for m in (*media.IMAGE_FORMATS, *media.VIDEO_FORMATS) if m != "image/apng"
)
FILE_PART = {
    "type": "string",
    "format": "binary",
    "minLength": 1,
    "description": "JPEG, PNG, WebP or GIF image, or MP4/WebM video; "
    "the type is sniffed from the bytes",
}


def media_form_schema() -> dict[str, Any]:
    """The multipart form: the file part, and the text fields as the model that validates
    them documents them (one source for both)."""
    schema = MediaStoryFields.model_json_schema()
    fields = {
        name: {k: v for k, v in prop.items() if (k, v) != ("default", None)}
        for name, prop in schema["properties"].items()
    }
    return {
        "type": "object",
        "required": ["file"],
        "additionalProperties": False,
        "properties": {"file": FILE_PART, **fields},
    }


MULTIPART_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": media_form_schema(),
            "encoding": {"file": {"contentType": ", ".join(ACCEPTED_TYPES)}},
        }
    },
}


async def read_media_form(ctx: Ctx) -> tuple[MediaStoryFields, str | None, media.Processed]:
    """The upload, its fields validated and its media processed; refusals leave nothing."""
    s = ctx.settings
    upload = await read_upload(ctx.request, s.max_upload_bytes)
    try:
        try:
            fields = MediaStoryFields.model_validate(upload.fields)
        except ValidationError as exc:
            raise ValidationFailed(format_validation_error(exc)) from None
        caption = None
        if fields.caption is not None:
            caption = checked_text(fields.caption, s.max_story_text, "caption")
        processed = await asyncio.to_thread(
            media.process, upload.fp, s.max_image_pixels, s.max_video_seconds
        )
    finally:
        await upload.close()
    return fields, caption, processed


@api.post(
    "/v1/stories/media",
    status=201,
    request_body=MULTIPART_BODY,
    responses={
        415: {"description": "Not an accepted image or video type, or an unknown codec"},
    },
)
async def publish_media_story(ctx: Ctx) -> StoryOut:
    """Publish a photo or video story (multipart upload, size-capped while streaming)."""
    s = ctx.settings
    svc = service(ctx)
    # Early refusals, before the upload is read; the quota is counted only once it passed.
    await svc.check_room(ctx.user, s.max_active_stories, time.time())
    await ctx.limiter.check(s.rate_publish, "story_publish", ctx.user)
    fields, caption, processed = await read_media_form(ctx)
    await ctx.limiter.hit(s.rate_publish, "story_publish", ctx.user)
    now = time.time()
    sid = new_id()
    story = Story(
        id=sid,
        author=ctx.user,
        kind=processed.kind,
        audience=fields.audience,
        allow_replies=fields.allow_replies,
        allow_reactions=fields.allow_reactions,
        created_at=now,
        expires_at=now + s.story_ttl_seconds,
        caption=caption,
        media=media_info(sid, processed),
    )
    await svc.publish(story, processed, s.max_active_stories, now)
    return story_out(ctx, story, True, 0, now)


# --- the mute and hide lists -------------------------------------------------------------


@api.get("/v1/me/story-mutes")
async def list_story_mutes(ctx: Ctx, query: PageQuery) -> UserPage:
    """Authors whose stories the caller muted (kept out of the tray), newest first."""
    store = service(ctx).store
    users, nxt = await store.list_page(store.mutes_key(ctx.user), query.cursor, query.limit)
    return UserPage(users=users, next_cursor=nxt)


@api.put("/v1/me/story-mutes/{user_id}")
async def mute_stories(ctx: Ctx, user_id: str) -> None:
    """Mute a user's stories: they leave the caller's tray; following is unchanged."""
    store = service(ctx).store
    await store.set_muted(ctx.user, other_user(ctx, user_id), True)


@api.delete("/v1/me/story-mutes/{user_id}")
async def unmute_stories(ctx: Ctx, user_id: str) -> None:
    """Unmute a user's stories."""
    store = service(ctx).store
    await store.set_muted(ctx.user, other_user(ctx, user_id), False)


@api.get("/v1/me/story-hidden")
async def list_story_hidden(ctx: Ctx, query: PageQuery) -> UserPage:
    """Users the caller hides their stories from, newest first."""
    store = service(ctx).store
    users, nxt = await store.list_page(store.hidden_key(ctx.user), query.cursor, query.limit)
    return UserPage(users=users, next_cursor=nxt)


@api.put("/v1/me/story-hidden/{user_id}")
async def hide_stories_from(ctx: Ctx, user_id: str) -> None:
    """Hide all the caller's stories (present and future) from a user."""
    store = service(ctx).store
    await store.set_hidden(ctx.user, other_user(ctx, user_id), True)


@api.delete("/v1/me/story-hidden/{user_id}")
async def unhide_stories_from(ctx: Ctx, user_id: str) -> None:
    """Stop hiding the caller's stories from a user."""
    store = service(ctx).store
    await store.set_hidden(ctx.user, other_user(ctx, user_id), False)


# --- one author, one story ---------------------------------------------------------------


@api.get("/v1/users/{user_id}/stories")
async def list_user_stories(ctx: Ctx, user_id: str) -> StoriesOut:
    """A user's live stories that the caller may see, oldest first."""
    valid_user_id(user_id)
    store = service(ctx).store
    now = time.time()
    rel = await store.relation(ctx.user, user_id)
    if rel.blocked or rel.hidden:  # an empty list, like a user without stories
        return StoriesOut(stories=[])
    stories = [
        s for s in await store.author_stories(user_id, now) if rules.may_view(s.audience, rel)
    ]
    flags = await store.seen_and_counts(stories, ctx.user)
    return StoriesOut(
        stories=[
            story_out(ctx, s, seen, n, now) for s, (seen, n) in zip(stories, flags, strict=True)
        ]
    )


@api.get("/v1/stories/{story_id}")
async def get_story(ctx: Ctx, story_id: str) -> StoryOut:
    """One live story the caller may see."""
    now = time.time()
    story, _ = await visible(ctx, story_id, now)
    return await single_out(ctx, story, now)


@api.patch("/v1/stories/{story_id}")
async def update_story(ctx: Ctx, story_id: str, body: StoryPatch) -> StoryOut:
    """Turn replies or reactions on or off (author only)."""
    now = time.time()
    story = await owned(ctx, story_id, now)
    fields = body.model_dump(exclude_none=True)
    if fields and not await service(ctx).store.update_flags(story.id, fields):
        raise story_not_found()
    story = await service(ctx).store.load(story.id, now) or story
    return await single_out(ctx, story, now)


@api.delete("/v1/stories/{story_id}")
async def delete_story(ctx: Ctx, story_id: str) -> None:
    """Delete a story and its media now (author only)."""
    story = await owned(ctx, story_id, time.time())
    await service(ctx).delete(story.id)


@api.post("/v1/stories/{story_id}/seen")
async def mark_story_seen(ctx: Ctx, story_id: str) -> None:
    """Mark a story seen by the caller (idempotent; the first view is the one counted)."""
    now = time.time()
    story, rel = await visible(ctx, story_id, now)
    if not rel.is_author:  # authors do not count towards their own views
        await service(ctx).store.mark_seen(story, ctx.user, now)


@api.get("/v1/stories/{story_id}/viewers")
async def list_story_viewers(ctx: Ctx, story_id: str, query: CursorQuery) -> ViewersOut:
    """Who has seen the story, newest first (author only)."""
    story = await owned(ctx, story_id, time.time())
    page = await service(ctx).store.viewers_page(story, cursor_of(query), query.limit)
    return ViewersOut(
        viewers=[ViewerOut(user_id=u, seen_at=ts(t)) for u, t in page.viewers],
        view_count=page.view_count,
        next_cursor=next_cursor(page.next_cursor),
    )


async def _deliver(
    ctx: Ctx, story: Story, kind: str, text: str | None, emoji: str | None
) -> InboxItemOut:
    item = InboxItem(
        id=new_id(),
        kind=kind,
        story_id=story.id,
        from_user=ctx.user,
        created_at=time.time(),
        story_expires_at=story.expires_at,
        text=text,
        emoji=emoji,
    )
    await service(ctx).store.add_inbox_item(story.author, item)
    return item_out(item)


@api.post("/v1/stories/{story_id}/replies", status=201)
async def reply_to_story(ctx: Ctx, story_id: str, body: ReplyIn) -> InboxItemOut:
    """Reply to a story with text; it reaches the author's inbox."""
    s = ctx.settings
    story, rel = await visible(ctx, story_id, time.time())
    if rel.is_author:
        raise Forbidden("you cannot reply to your own story", code="own_story")
    if not story.allow_replies:
        raise Forbidden("the author turned replies off for this story", code="replies_disabled")
    text = checked_text(body.text, s.max_story_text, "text")
    await ctx.limiter.hit(s.rate_reply, "story_reply", ctx.user)
    return await _deliver(ctx, story, "reply", text, None)


@api.post("/v1/stories/{story_id}/reactions", status=201)
async def react_to_story(ctx: Ctx, story_id: str, body: ReactionIn) -> InboxItemOut:
    """React to a story with one of the allowed emoji; it reaches the author's inbox."""
    s = ctx.settings
    story, rel = await visible(ctx, story_id, time.time())
    if rel.is_author:
        raise Forbidden("you cannot react to your own story", code="own_story")
    if not story.allow_reactions:
        raise Forbidden("the author turned reactions off for this story", code="reactions_disabled")
    await ctx.limiter.hit(s.rate_react, "story_react", ctx.user)
    return await _deliver(ctx, story, "reaction", None, body.emoji)


@api.get(
    "/v1/stories/{story_id}/media/{variant}",
    auth=False,
    responses={
        200: {
            "description": "The image or video (range requests supported)",
            "content": {
                "image/jpeg": {},
                "image/webp": {},
                "video/mp4": {},
                "video/webm": {},
            },
        },
        403: {"description": "The signed URL has expired; fetch the story again for a new one"},
    },
)
async def get_story_media(ctx: Ctx, story_id: str, variant: str, query: MediaQuery) -> Response:
    """A story's media file, by the signed URL in the story (no bearer token needed)."""
    settings = ctx.settings
    not_found = NotFound("no such media", code="media_not_found")
    if variant not in VARIANTS or not signing.verify(
        settings.secret_key, story_id, variant, query.exp, query.sig
    ):
        raise not_found
    now = time.time()
    svc = service(ctx)
    story = await svc.store.load(story_id, now)
    if story is None or story.media is None or variant not in story.media.blobs:
        raise not_found
    if query.exp <= now:
        raise Forbidden("this media link has expired; fetch the story again", code="url_expired")
    blob = story.media.blobs[variant]
    if not await svc.storage.exists(blob.key):
        raise not_found
    max_age = max(0, int(min(query.exp, story.expires_at) - now))
    headers = {
        "Cache-Control": f"private, max-age={max_age}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    return svc.storage.response(blob.key, blob.content_type, headers)
