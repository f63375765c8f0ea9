"""HTTP endpoints of rooms: create, schedule, edit, start, cancel, end, discover, preview,
reminders, and the card image of share links."""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from rooms.control import card, presenters, share
from rooms.control.schemas import (
    CardQuery,
    CreateRoom,
    EditRoom,
    ListQuery,
    Reminder,
    Room,
    RoomList,
    RoomPreview,
)
from rooms.control.service import ROOMS, RoomsService
from rooms.control.state import Meta
from rooms.control.store import ROOM_ID, RoomStore, checked_id
from server.api import Api, Ctx
from server.errors import Forbidden, NotFound
from server.graph.store import Graph

api = Api("rooms")


def service(ctx: Ctx) -> RoomsService:
    return ROOMS.of(ctx.request)


def store(ctx: Ctx) -> RoomStore:
    return service(ctx).store


def graph(ctx: Ctx) -> Graph:
    return ROOMS.of(ctx.request).graph


async def visible(ctx: Ctx, room_id: str) -> Meta:
    """The room, unless its host has blocked the caller."""
    meta = await store(ctx).require(checked_id(room_id))
    if meta.host != ctx.user and await graph(ctx).has_blocked(meta.host, ctx.user):
        raise Forbidden("the host has blocked you", code="blocked")
    return meta


@api.post("/v1/rooms", status=201)
async def create_room(ctx: Ctx, body: CreateRoom) -> Room:
    """Create a room: live at once, or scheduled when ``scheduled_for`` is given."""
    await ctx.limiter.hit(ctx.settings.rate_room_create, "room_create", ctx.user)
    s = store(ctx)
    when = body.scheduled_for.timestamp() if body.scheduled_for else None
    meta = await s.create(
        ctx.user, body.title, body.description, body.language, body.policy(), when, body.record
    )
    return await service(ctx).room(meta)


@api.get("/v1/rooms")
async def list_rooms(ctx: Ctx, query: ListQuery) -> RoomList:
    """Live or scheduled rooms, those hosted by people the caller follows first; or ended
    rooms with a replay to listen to, newest first."""
    if query.state == "ended":
        replays = service(ctx).replays
        metas = await replays.replays(ctx.user, query.limit) if replays is not None else []
        return RoomList(rooms=await service(ctx).rooms(metas))
    g = graph(ctx)
    followed = await g.following(ctx.user)
    s = store(ctx)
    metas = await s.listing(query.state, followed, query.limit)
    hosts = sorted({m.host for m in metas} - {ctx.user})
    blocked = await asyncio.gather(*(g.is_blocked_between(h, ctx.user) for h in hosts))
    hidden = {h for h, b in zip(hosts, blocked, strict=True) if b}
    return RoomList(rooms=await service(ctx).rooms([m for m in metas if m.host not in hidden]))


@api.get("/v1/rooms/{room_id}")
async def get_room(ctx: Ctx, room_id: str) -> Room:
    """One room."""
    return await service(ctx).room(await visible(ctx, room_id))


@api.get("/v1/rooms/{room_id}/preview", auth=False)
async def preview_room(ctx: Ctx, room_id: str) -> RoomPreview:
    """Public metadata of a room for link previews (no token needed)."""
    s = store(ctx)
    meta = await s.require(checked_id(room_id))
    return presenters.preview(meta, (await s.counts([meta.id]))[0])


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak or strong, or ``*``)."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags


@api.get(
    "/v1/rooms/{room_id}/card.png",
    auth=False,
    responses={
        200: {"description": "A 1200x630 PNG", "content": {"image/png": {}}},
        304: {"description": "Not modified (If-None-Match names the current card)"},
    },
)
async def room_card(ctx: Ctx, room_id: str, query: CardQuery) -> Response:
    """The room's card for link previews: title, host, state, listeners (no token needed)."""
    cards = card.DirCardStore(ctx.settings.data_dir / "cards")
    facts = await share.load_facts(store(ctx), room_id)
    if facts is None:
        if ROOM_ID.match(room_id):
            await cards.drop(room_id)
        raise NotFound("no such room", code="room_not_found")
    data, key = await card.card_png(cards, facts)
    headers = {
        "ETag": f'"{key}"',
        "Cache-Control": f"public, max-age={share.card_max_age(facts)}",
        "X-Content-Type-Options": "nosniff",
    }
    if etag_matches(ctx.request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/png", headers=headers)


@api.patch("/v1/rooms/{room_id}")
async def edit_room(ctx: Ctx, room_id: str, body: EditRoom) -> Room:
    """Edit a scheduled room (host only)."""
    changes = body.model_dump(exclude_none=True)
    if "title" in changes:
        changes["title"] = changes["title"].strip()
    if body.scheduled_for is not None:
        changes["scheduled_for"] = body.scheduled_for.timestamp()
    if changes.pop("record", None):
        changes["recorded"] = True
    meta = await store(ctx).edit(checked_id(room_id), ctx.user, changes)
    return await service(ctx).room(meta)


@api.post("/v1/rooms/{room_id}/start")
async def start_room(ctx: Ctx, room_id: str) -> Room:
    """Start a scheduled room now (host only)."""
    meta = await store(ctx).start(checked_id(room_id), ctx.user)
    return await service(ctx).room(meta)


@api.post("/v1/rooms/{room_id}/cancel")
async def cancel_room(ctx: Ctx, room_id: str) -> Room:
    """Cancel a scheduled room (host only)."""
    meta = await store(ctx).cancel(checked_id(room_id), ctx.user)
    return await service(ctx).room(meta)


@api.post("/v1/rooms/{room_id}/end")
async def end_room(ctx: Ctx, room_id: str) -> Room:
    """End a live room for everyone (host only)."""
    meta = await store(ctx).end_by_host(checked_id(room_id), ctx.user)
    return await service(ctx).room(meta)


@api.get("/v1/rooms/{room_id}/reminder")
async def get_reminder(ctx: Ctx, room_id: str) -> Reminder:
    """Whether the caller asked to be reminded when the room starts, and how many did."""
    meta = await visible(ctx, room_id)
    reminded, count = await store(ctx).reminded(meta.id, ctx.user)
    return Reminder(room_id=meta.id, reminded=reminded, reminder_count=count)


@api.put("/v1/rooms/{room_id}/reminder")
async def set_reminder(ctx: Ctx, room_id: str) -> Reminder:
    """Remind the caller when this scheduled room starts (a ``room.reminder`` webhook event
    names them); idempotent. ``409 room_not_scheduled`` once the room is live or ended."""
    meta = await visible(ctx, room_id)
    count = await store(ctx).remind(meta.id, ctx.user, on=True)
    return Reminder(room_id=meta.id, reminded=True, reminder_count=count)


@api.delete("/v1/rooms/{room_id}/reminder")
async def drop_reminder(ctx: Ctx, room_id: str) -> Reminder:
    """Take back the caller's reminder of a scheduled room; idempotent."""
    meta = await visible(ctx, room_id)
    count = await store(ctx).remind(meta.id, ctx.user, on=False)
    return Reminder(room_id=meta.id, reminded=False, reminder_count=count)
