"""Wire shapes: HTTP bodies and answers, and every client WebSocket message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, model_validator

from rooms.control.rules import REACTIONS, SpeakerPolicy

RoomState = Literal["scheduled", "live", "ended"]
EndedReason = Literal["ended_by_host", "host_left", "cancelled", "not_started"]
# A user id as in server.auth.USER_ID.
UserId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
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


class ListQuery(BaseModel):
    state: Literal["live", "scheduled"] = "live"
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
    created_at: datetime
    listener_count: int
    speaker_count: int  # everyone on stage: host, co-hosts and speakers
    share_url: str  # {public base}/rooms/{id}: the page that unfurls and opens the room


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


# ---- WebSocket: client -> server ----


class ClientMessage(BaseModel):
    # Echoed in the error that answers this message.
    ref: Annotated[str, Field(max_length=64)] | None = None


class Bare(ClientMessage):
    type: Literal[
        "hand.raise",
        "hand.lower",
        "invite.accept",
        "invite.decline",
        "role.step_down",
        "unmute",
        "room.end",
        "ping",
    ]


class Targeted(ClientMessage):
    type: Literal[
        "hand.accept",
        "hand.dismiss",
        "invite.send",
        "role.cohost",
        "role.demote",
        "remove",
    ]
    user_id: UserId


class Mute(ClientMessage):
    type: Literal["mute"]
    user_id: UserId | None = None  # absent: mute yourself


class React(ClientMessage):
    type: Literal["react"]
    emoji: Annotated[str, Field(max_length=16)]

    @model_validator(mode="after")
    def known_emoji(self) -> React:
        if self.emoji not in REACTIONS:
            raise ValueError(f"emoji must be one of {' '.join(REACTIONS)}")
        return self


Sdp = Annotated[str, Field(min_length=1, max_length=32_000)]


class RtcDescription(ClientMessage):
    type: Literal["rtc.offer", "rtc.answer"]
    sdp: Sdp


class IceCandidate(BaseModel):
    candidate: Annotated[str, Field(max_length=1024)]
    sdpMid: Annotated[str, Field(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=64)] | None = None


class RtcIce(ClientMessage):
    type: Literal["rtc.ice"]
    candidate: IceCandidate | None  # null: end of candidates


Message = Annotated[
    Bare | Targeted | Mute | React | RtcDescription | RtcIce, Field(discriminator="type")
]
MESSAGE = TypeAdapter[Message](Message)

CLIENT_TYPES: tuple[str, ...] = tuple(
    t
    for model in (Bare, Targeted, Mute, React, RtcDescription, RtcIce)
    for t in model.model_fields["type"].annotation.__args__  # type: ignore[union-attr]
)


def wire(message: BaseModel) -> dict[str, Any]:
    """A client message as the relay receives it (``rtc.*``): JSON-ready, without ``ref``."""
    return message.model_dump(mode="json", exclude={"ref"})
