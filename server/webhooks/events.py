"""Every webhook event, a pydantic model in the Standard Webhooks shape: ``{"type",
"timestamp", "data"}``. Plain data, no I/O: the rooms and stories stores build them from
the change they are writing and hand them to the outbox in the same transaction.

``key`` is the order key: events with the same key (one room, one story) are delivered one
at a time in the order they were written. Each model's JSON schema is in docs/webhooks.md
(``python -m server.webhooks.events`` prints them; a test keeps the doc in step).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Role = Literal["host", "cohost", "speaker", "listener"]


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoomData(Data):
    room_id: str
    title: str
    host: str
    state: Literal["scheduled", "live", "ended"]
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    ended_reason: str | None = Field(
        default=None, description="ended_by_host, host_left, cancelled or not_started"
    )


class ParticipantData(Data):
    room_id: str
    user_id: str
    role: Role


class ParticipantLeftData(ParticipantData):
    reason: Literal["left", "removed"]


class RoleChangedData(ParticipantData):
    previous_role: Role


class RecordingData(Data):
    room_id: str
    recording_id: str
    url: str = Field(description="where the operator's backend fetches the recording")
    content_type: str
    duration_seconds: float
    size_bytes: int


class ReminderData(Data):
    room_id: str
    title: str
    host: str
    started_at: datetime
    user_ids: list[str] = Field(description="who asked to be reminded (one batch of them)")
    batch: int = Field(description="this batch's number, from 1")
    batches: int = Field(description="how many batches this start produced")


class StoryData(Data):
    story_id: str
    author: str


class StoryPublishedData(StoryData):
    kind: Literal["text", "photo", "video"]
    audience: Literal["followers", "close_friends", "public"]
    created_at: datetime
    expires_at: datetime
    text: str | None = None
    caption: str | None = None
    content_type: str | None = None


class StoryExpiredData(StoryData):
    expired_at: datetime


class StoryReplyData(StoryData):
    item_id: str
    from_user: str
    created_at: datetime
    text: str


class StoryReactionData(StoryData):
    item_id: str
    from_user: str
    created_at: datetime
    emoji: str


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    timestamp: datetime = Field(description="when the change happened (UTC)")
    data: Data

    @property
    def key(self) -> str:
        """The order key: one room's or one story's events keep their order."""
        room_id = getattr(self.data, "room_id", None)
        if room_id is not None:
            return f"room:{room_id}"
        return f"story:{getattr(self.data, 'story_id', '')}"

    def body(self) -> str:
        """The request body as sent and signed."""
        return self.model_dump_json()


class RoomScheduled(Envelope):
    type: Literal["room.scheduled"] = "room.scheduled"
    data: RoomData


class RoomStarted(Envelope):
    type: Literal["room.started"] = "room.started"
    data: RoomData


class RoomEnded(Envelope):
    type: Literal["room.ended"] = "room.ended"
    data: RoomData


class RoomRecordingReady(Envelope):
    type: Literal["room.recording_ready"] = "room.recording_ready"
    data: RecordingData


class RoomReminder(Envelope):
    type: Literal["room.reminder"] = "room.reminder"
    data: ReminderData


class ParticipantJoined(Envelope):
    type: Literal["participant.joined"] = "participant.joined"
    data: ParticipantData


class ParticipantLeft(Envelope):
    type: Literal["participant.left"] = "participant.left"
    data: ParticipantLeftData


class ParticipantRoleChanged(Envelope):
    type: Literal["participant.role_changed"] = "participant.role_changed"
    data: RoleChangedData


class StoryPublished(Envelope):
    type: Literal["story.published"] = "story.published"
    data: StoryPublishedData


class StoryExpired(Envelope):
    type: Literal["story.expired"] = "story.expired"
    data: StoryExpiredData


class StoryReply(Envelope):
    type: Literal["story.reply"] = "story.reply"
    data: StoryReplyData


class StoryReaction(Envelope):
    type: Literal["story.reaction"] = "story.reaction"
    data: StoryReactionData


def recording_ready(
    room_id: str,
    recording_id: str,
    url: str,
    content_type: str,
    duration_seconds: float,
    size_bytes: int,
    now: float,
) -> RoomRecordingReady:
    """The event to append (``Outbox.append``) in the transaction that marks a room's
    recording as stored and readable: once per recording."""
    data = RecordingData(
        room_id=room_id,
        recording_id=recording_id,
        url=url,
        content_type=content_type,
        duration_seconds=duration_seconds,
        size_bytes=size_bytes,
    )
    return RoomRecordingReady(timestamp=at(now), data=data)


EVENT_TYPES: tuple[type[Envelope], ...] = (
    RoomScheduled,
    RoomStarted,
    RoomEnded,
    RoomRecordingReady,
    RoomReminder,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantRoleChanged,
    StoryPublished,
    StoryExpired,
    StoryReply,
    StoryReaction,
)
WebhookEvent = Annotated[
    RoomScheduled
    | RoomStarted
    | RoomEnded
    | RoomRecordingReady
    | RoomReminder
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantRoleChanged
    | StoryPublished
    | StoryExpired
    | StoryReply
    | StoryReaction,
    Field(discriminator="type"),
]
EVENT: TypeAdapter[WebhookEvent] = TypeAdapter(WebhookEvent)


def type_name(model: type[Envelope]) -> str:
    return str(model.model_fields["type"].default)


def schemas() -> dict[str, dict[str, Any]]:
    """Each event type's JSON schema, by type name (the reference in docs/webhooks.md)."""
    return {type_name(m): m.model_json_schema() for m in EVENT_TYPES}


def schemas_markdown() -> str:
    """The schemas section of docs/webhooks.md, generated."""
    parts = []
    for name, schema in schemas().items():
        text = json.dumps(schema, indent=2, sort_keys=True)
        parts.append(f"### `{name}`\n\n```json\n{text}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(schemas_markdown())
