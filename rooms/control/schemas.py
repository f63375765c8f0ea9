"""HTTP bodies and answers of the rooms API (the socket's messages: ``messages``, ``events``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field

from rooms.control.rules import SpeakerPolicy

RoomState = Literal["scheduled", "live", "ended"]
EndedReason = Literal["ended_by_host", "host_left", "cancelled", "not_started"]
Title = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]
Description = Annotated[str, Field(max_length=500)]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]


# ---- HTTP ----


class CreateRoom(BaseModel):
    title: Title
    description: Description = ""
    language: Language = "en"
    speaker_policy: SpeakerPolicy | None = None
    # Accepted as an alias of speaker_policy: "everyone" = anyone_can_request.
    speakers: Literal["everyone", "invited"] | None = None
    scheduled_for: AwareDatetime | None = None
    record: bool = False  # record the room's stage audio (live HLS, then a replay)

    def policy(self) -> SpeakerPolicy:
        if self.speaker_policy is not None:
            return self.speaker_policy
        if self.speakers == "invited":
            return SpeakerPolicy.INVITED_ONLY
        return SpeakerPolicy.ANYONE_CAN_REQUEST


class EditRoom(BaseModel):
    title: Title | None = None
    description: Description | None = None
    language: Language | None = None
    scheduled_for: AwareDatetime | None = None
    speaker_policy: SpeakerPolicy | None = None
    record: Literal[True] | None = None  # a scheduled room may be set to be recorded


class ListQuery(BaseModel):
    # ended: rooms with a replay to listen to (rooms.recording)
    state: Literal["live", "scheduled", "ended"] = "live"
    limit: int = Field(default=50, ge=1, le=100)


class CardQuery(BaseModel):
    # The card's key as put in og:image URLs, so that unfurlers caching by URL fetch a new
    # card when the room changes; the current card is served whatever it says.
    v: Annotated[str, Field(max_length=64)] | None = None


class Room(BaseModel):
    id: str
    title: str
    description: str
    language: str
    host: str
    speaker_policy: SpeakerPolicy
    state: RoomState
    scheduled_for: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    # Why an ended room ended: the host ended or cancelled it, the host left for good, or a
    # scheduled room was never started (scheduled_room_expiry_seconds after its time).
    ended_reason: EndedReason | None = None
    recorded: bool = False  # its stage audio is recorded: GET /v1/rooms/{id}/recording
    created_at: datetime
    listener_count: int
    speaker_count: int  # everyone on stage: host, co-hosts and speakers
    share_url: str  # {public base}/rooms/{id}: the page that unfurls and opens the room
    # How many people asked to be reminded when the scheduled room starts (0 once it has).
    reminder_count: int = 0


class Reminder(BaseModel):
    """The caller's reminder of a scheduled room."""

    room_id: str
    reminded: bool
    reminder_count: int


class RoomList(BaseModel):
    rooms: list[Room]


class RoomPreview(BaseModel):
    id: str
    title: str
    host: str
    state: RoomState
    listener_count: int
    speaker_count: int
    started_at: datetime | None
    scheduled_for: datetime | None
