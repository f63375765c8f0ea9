"""HTTP endpoints of stories: each parses the request, calls one ``StoriesService`` use case
and presents its answer (``presenters``). Who may do what is the service's business."""

from __future__ import annotations

import jwt
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from server.api import Api, Ctx, format_validation_error
from server.auth import bearer_from_header, verify_token
from server.errors import ValidationFailed
from server.feature import Slot
from server.graph.schemas import PageQuery, UserPage
from stories import presenters, rules
from stories.model import Options
from stories.presenters import inbox_out, media_links, story_out, viewers_out
from stories.schemas import (
    MEDIA_RESPONSES,
    MULTIPART_BODY,
    TRAY_EVENTS_RESPONSES,
    UPLOAD_RESPONSES,
    ConfigOut,
    CursorQuery,
    InboxItemOut,
    InboxOut,
    MediaQuery,
    MediaStoryFields,
    ReactionIn,
    ReplyIn,
    StoriesOut,
    StoryOut,
    StoryPatch,
    TextStoryIn,
    TrayEventsQuery,
    TrayOut,
    ViewersOut,
)
from stories.service import StoriesService
from stories.sse import HEADERS, tray_stream
from stories.upload import read_upload

api = Api("stories")
STORIES: Slot[StoriesService] = Slot("stories")


def service(ctx: Ctx) -> StoriesService:
    return STORIES.of(ctx.request)


def cursor_of(query: CursorQuery) -> rules.Cursor | None:
    if query.cursor is None:
        return None
    cursor = rules.decode_cursor(query.cursor)
    if cursor is None:
        raise ValidationFailed("invalid cursor", code="invalid_cursor")
    return cursor


def options_of(body: TextStoryIn | MediaStoryFields) -> Options:
    return Options(body.audience, body.allow_replies, body.allow_reactions)


# --- fixed paths first: they must win over /v1/stories/{story_id} ------------------------


@api.get("/v1/stories/config")
async def get_story_config(ctx: Ctx) -> ConfigOut:
    """Limits and choices a client needs to build the publish screen."""
    return presenters.config_out(ctx.settings)


@api.get("/v1/stories/tray")
async def get_tray(ctx: Ctx) -> TrayOut:
    """The caller's tray: own stories, then authors with unseen stories, then seen ones."""
    return presenters.tray_out(await service(ctx).tray(ctx.user))


def stream_caller(request: Request, token: str | None) -> tuple[str, float]:
    """Who opens a live stream, and until when their token is valid: the token comes in
    ``?token=`` (EventSource cannot set headers) or as a bearer header."""
    settings = request.state.platform.settings
    raw = token or bearer_from_header(request.headers.get("authorization"))
    user = verify_token(settings.secret_key, raw, settings.token_leeway_seconds)
    claims = jwt.decode(raw, options={"verify_signature": False})  # verified just above
    return user, float(claims["exp"]) + settings.token_leeway_seconds


@api.get("/v1/stories/tray/events", auth=False, responses=TRAY_EVENTS_RESPONSES)
async def tray_events(ctx: Ctx, query: TrayEventsQuery) -> Response:
    """The caller's tray, live: Server-Sent Events, token in `?token=` or a bearer header."""
    user, until = stream_caller(ctx.request, query.token)
    svc = service(ctx)
    watcher = await svc.live.attach(user)  # refusals (429, 503) are still HTTP answers
    return StreamingResponse(
        tray_stream(svc, watcher, until),
        media_type="text/event-stream",
        headers=HEADERS,
        background=BackgroundTask(svc.live.detach, watcher),
    )


@api.get("/v1/stories/inbox")
async def get_inbox(ctx: Ctx, query: CursorQuery) -> InboxOut:
    """Replies and reactions to the caller's live stories, newest first."""
    items, nxt = await service(ctx).inbox(ctx.user, cursor_of(query), query.limit)
    return inbox_out(items, nxt)


@api.post("/v1/stories", status=201)
async def publish_text_story(ctx: Ctx, body: TextStoryIn) -> StoryOut:
    """Publish a text story on a background colour."""
    svc = service(ctx)
    view = await svc.publish_text(ctx.user, body.text, body.background, options_of(body))
    return story_out(view, media_links(ctx.settings))


@api.post("/v1/stories/media", status=201, request_body=MULTIPART_BODY, responses=UPLOAD_RESPONSES)
async def publish_media_story(ctx: Ctx) -> StoryOut:
    """Publish a photo or video story (multipart upload, size-capped while streaming)."""
    svc = service(ctx)
    # Early refusals, before the upload is read; the quota is counted only once it passed.
    await svc.ready_to_publish(ctx.user)
    upload = await read_upload(ctx.request, ctx.settings.max_upload_bytes)
    try:
        try:
            fields = MediaStoryFields.model_validate(upload.fields)
        except ValidationError as exc:
            raise ValidationFailed(format_validation_error(exc)) from None
        view = await svc.publish_media(ctx.user, fields.caption, options_of(fields), upload.fp)
    finally:
        await upload.close()
    return story_out(view, media_links(ctx.settings))


# --- the mute and hide lists -------------------------------------------------------------


@api.get("/v1/me/story-mutes")
async def list_story_mutes(ctx: Ctx, query: PageQuery) -> UserPage:
    """Authors whose stories the caller muted (kept out of the tray), newest first."""
    users, nxt = await service(ctx).mutes(ctx.user, query.cursor, query.limit)
    return UserPage(users=users, next_cursor=nxt)


@api.put("/v1/me/story-mutes/{user_id}")
async def mute_stories(ctx: Ctx, user_id: str) -> None:
    """Mute a user's stories: they leave the caller's tray; following is unchanged."""
    await service(ctx).mute(ctx.user, user_id, True)


@api.delete("/v1/me/story-mutes/{user_id}")
async def unmute_stories(ctx: Ctx, user_id: str) -> None:
    """Unmute a user's stories."""
    await service(ctx).mute(ctx.user, user_id, False)


@api.get("/v1/me/story-hidden")
async def list_story_hidden(ctx: Ctx, query: PageQuery) -> UserPage:
    """Users the caller hides their stories from, newest first."""
    users, nxt = await service(ctx).hidden(ctx.user, query.cursor, query.limit)
    return UserPage(users=users, next_cursor=nxt)


@api.put("/v1/me/story-hidden/{user_id}")
async def hide_stories_from(ctx: Ctx, user_id: str) -> None:
    """Hide all the caller's stories (present and future) from a user."""
    await service(ctx).hide(ctx.user, user_id, True)


@api.delete("/v1/me/story-hidden/{user_id}")
async def unhide_stories_from(ctx: Ctx, user_id: str) -> None:
    """Stop hiding the caller's stories from a user."""
    await service(ctx).hide(ctx.user, user_id, False)


# --- one author, one story ---------------------------------------------------------------


@api.get("/v1/users/{user_id}/stories")
async def list_user_stories(ctx: Ctx, user_id: str) -> StoriesOut:
    """A user's live stories that the caller may see, oldest first."""
    views = await service(ctx).author_stories(ctx.user, user_id)
    links = media_links(ctx.settings)
    return StoriesOut(stories=[story_out(v, links) for v in views])


@api.get("/v1/stories/{story_id}")
async def get_story(ctx: Ctx, story_id: str) -> StoryOut:
    """One live story the caller may see."""
    view = await service(ctx).story(ctx.user, story_id)
    return story_out(view, media_links(ctx.settings))


@api.patch("/v1/stories/{story_id}")
async def update_story(ctx: Ctx, story_id: str, body: StoryPatch) -> StoryOut:
    """Turn replies or reactions on or off (author only)."""
    svc = service(ctx)
    view = await svc.update(ctx.user, story_id, body.allow_replies, body.allow_reactions)
    return story_out(view, media_links(ctx.settings))


@api.delete("/v1/stories/{story_id}")
async def delete_story(ctx: Ctx, story_id: str) -> None:
    """Delete a story and its media now (author only)."""
    await service(ctx).delete(ctx.user, story_id)


@api.post("/v1/stories/{story_id}/seen")
async def mark_story_seen(ctx: Ctx, story_id: str) -> None:
    """Mark a story seen by the caller (idempotent; the first view is the one counted)."""
    await service(ctx).mark_seen(ctx.user, story_id)


@api.get("/v1/stories/{story_id}/viewers")
async def list_story_viewers(ctx: Ctx, story_id: str, query: CursorQuery) -> ViewersOut:
    """Who has seen the story, newest first (author only)."""
    page = await service(ctx).viewers(ctx.user, story_id, cursor_of(query), query.limit)
    return viewers_out(page)


@api.post("/v1/stories/{story_id}/replies", status=201)
async def reply_to_story(ctx: Ctx, story_id: str, body: ReplyIn) -> InboxItemOut:
    """Reply to a story with text; it reaches the author's inbox."""
    return presenters.item_out(await service(ctx).reply(ctx.user, story_id, body.text))


@api.post("/v1/stories/{story_id}/reactions", status=201)
async def react_to_story(ctx: Ctx, story_id: str, body: ReactionIn) -> InboxItemOut:
    """React to a story with one of the allowed emoji; it reaches the author's inbox."""
    return presenters.item_out(await service(ctx).react(ctx.user, story_id, body.emoji))


@api.get("/v1/stories/{story_id}/media/{variant}", auth=False, responses=MEDIA_RESPONSES)
async def get_story_media(ctx: Ctx, story_id: str, variant: str, query: MediaQuery) -> Response:
    """A story's media file, by the signed URL in the story (no bearer token needed)."""
    grant = await service(ctx).media(story_id, variant, query.exp, query.sig)
    headers = presenters.media_headers(grant.max_age)
    return FileResponse(grant.path, media_type=grant.content_type, headers=headers)
