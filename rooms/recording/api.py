"""HTTP endpoints of recordings: the recording of a room, its signed files, deleting a
replay, and a host's replays (their profile). ``GET /v1/rooms?state=ended`` lists every
replay (rooms/control/api.py, through ``RoomsService.replays``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.responses import FileResponse, Response

from rooms.control.api import service as rooms_service
from rooms.control.schemas import RoomList
from rooms.control.store import checked_id
from rooms.recording.service import RecordingService
from server.api import Api, Ctx
from server.auth import valid_user_id
from server.feature import Slot
from stories.schemas import MediaQuery

api = Api("recordings")
RECORDING: Slot[RecordingService] = Slot("recording")
FILE_RESPONSES: dict[int, dict[str, Any]] = {
    200: {
        "description": "The playlist, a segment or the download (range requests supported)",
        "content": {"application/vnd.apple.mpegurl": {}, "audio/mp4": {}},
    },
    403: {"description": "The signed URL has expired; get the recording again for a new one"},
}


class RecordingOut(BaseModel):
    state: Literal["live", "ready", "deleted"]
    hls_url: str | None  # the HLS playlist: live (growing) while the room is live, then VOD
    download_url: str | None  # one .m4a, once the replay is ready
    duration_seconds: float
    started_at: datetime  # position 0 of the recording
    expires_at: datetime | None  # when a ready replay is deleted


class ReplaysQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=100)


def service(ctx: Ctx) -> RecordingService:
    return RECORDING.of(ctx.request)


@api.get("/v1/rooms/{room_id}/recording")
async def get_recording(ctx: Ctx, room_id: str) -> RecordingOut:
    """A room's recording: its state and short-lived signed URLs (404 if it has none)."""
    svc = service(ctx)
    rec, state = await svc.recording(ctx.user, checked_id(room_id))
    links = svc.links(rec, state, svc.clock.now())
    expires = datetime.fromtimestamp(rec.expires_at, UTC) if state == "ready" else None
    duration = rec.duration if state != "deleted" else 0.0
    return RecordingOut(
        state=state,
        hls_url=links.hls_url,
        download_url=links.download_url,
        duration_seconds=duration,
        started_at=datetime.fromtimestamp(rec.started_at, UTC),
        expires_at=expires,
    )


@api.delete("/v1/rooms/{room_id}/recording", status=204)
async def delete_recording(ctx: Ctx, room_id: str) -> None:
    """Delete a replay now (host only): every URL of it answers 404 from now on."""
    await service(ctx).delete(ctx.user, checked_id(room_id))


@api.get("/v1/rooms/{room_id}/recording/{name}", auth=False, responses=FILE_RESPONSES)
async def recording_file(ctx: Ctx, room_id: str, name: str, query: MediaQuery) -> Response:
    """A file of a recording by its signed URL (no bearer token needed): the playlist
    (its links signed too), the init section, a segment, or the ``.m4a`` download."""
    grant = await service(ctx).file(checked_id(room_id), name, query.exp, query.sig)
    headers = {
        "Cache-Control": grant.cache_control,
        "X-Content-Type-Options": "nosniff",
        "Access-Control-Allow-Origin": "*",  # the signature is the permission
    }
    if grant.text is not None:
        return Response(grant.text, media_type=grant.content_type, headers=headers)
    return FileResponse(grant.path, media_type=grant.content_type, headers=headers)


@api.get("/v1/users/{user_id}/replays")
async def user_replays(ctx: Ctx, user_id: str, query: ReplaysQuery) -> RoomList:
    """The replays a user hosted (their profile), newest first."""
    host = valid_user_id(user_id)
    metas = await service(ctx).replays(ctx.user, query.limit, host=host)
    return RoomList(rooms=await rooms_service(ctx).rooms(metas))
