"""Room state on the wire: records and metadata turned into ``Room``, ``RoomPreview``,
participants and actions (docs/protocol.md). Plain code, no I/O: the store never builds
wire shapes; whoever answers a client presents what the store read.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rooms.control.actions import Allowed
from rooms.control.events import Actions, Participant
from rooms.control.schemas import Room, RoomPreview
from rooms.control.state import Meta, Record
from server import links

Counts = tuple[int, int]  # (listeners, on stage)
PREVIEW = set(RoomPreview.model_fields)
MEMBER_FIELDS = ("user_id", "role", "muted", "hand_raised", "invited")  # the rest is not shown


def ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


def room(meta: Meta, counts: Counts, base_url: str, reminders: int = 0) -> Room:
    return Room(
        id=meta.id,
        title=meta.title,
        description=meta.description,
        language=meta.language,
        host=meta.host,
        speaker_policy=meta.speaker_policy,
        state=meta.state,
        scheduled_for=ts(meta.scheduled_for),
        started_at=ts(meta.started_at),
        ended_at=ts(meta.ended_at),
        ended_reason=meta.ended_reason or None,
        recorded=meta.recorded,
        created_at=ts(meta.created_at),
        listener_count=counts[0],
        speaker_count=counts[1],
        share_url=links.absolute(base_url, links.room_path(meta.id)),
        reminder_count=reminders,
    )


def preview(meta: Meta, counts: Counts) -> RoomPreview:
    """What anyone may see of a room (link previews): a part of the Room."""
    shown = room(meta, counts, base_url="")
    return RoomPreview.model_validate(shown.model_dump(include=PREVIEW))


def participant(rec: Record) -> Participant:
    m = rec.member
    return Participant(**{f: getattr(m, f) for f in MEMBER_FIELDS}, connected=rec.connected)


def actions(allowed: Allowed) -> Actions:
    return Actions(self=list(allowed.own), targets={k: list(v) for k, v in allowed.targets})
