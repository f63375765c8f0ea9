"""Every server -> client message of the room socket, as a typed model (docs/protocol.md).

The store, the reducer, the socket, the service and the media relay build messages only
through these models; ``wire()`` is their JSON form and ``encode`` their text. On a room's
pub/sub channel an event travels in an envelope ``{"to": user_id | null, "event": {...}}``
(``to`` addresses one participant, or ``MODERATORS`` the room's host and co-hosts); the hub
reads it back into its model (``EVENT``).
Types starting with ``_`` are for the server processes only and never reach a client.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rooms.control.rules import Role
from rooms.control.schemas import EndedReason, Room

# The address of events for the room's host and co-hosts (no user id can start with "@").
MODERATORS = "@moderators"


class Event(BaseModel):
    """A server -> client message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The message as JSON-ready data."""
        return self.model_dump(mode="json")


class Participant(BaseModel):
    """A participant on the wire; live speaking comes in ``speaking`` events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    role: Role
    muted: bool
    hand_raised: bool
    invited: bool
    speaking: bool = False  # always false in snapshots and participant events
    connected: bool


class Actions(BaseModel):
    """What a participant may send now (``rooms.control.actions``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    self: list[str]  # messages about themselves
    targets: dict[str, list[str]]  # target key -> messages naming a participant in that state


class Welcome(Event):
    """The whole state, first on every socket; again after the server lost events."""

    type: Literal["welcome"] = "welcome"
    protocol: int
    you: str
    room: Room
    participants: list[Participant]
    ice_servers: list[dict[str, Any]]
    reactions: list[str]
    actions: Actions


class ParticipantJoined(Event):
    """Someone joined (in a large room, a listener: to moderators only)."""

    type: Literal["participant.joined"] = "participant.joined"
    participant: Participant


class ParticipantUpdated(Event):
    """A participant's new state, whole: role, mute, hand, invitation, connection."""

    type: Literal["participant.updated"] = "participant.updated"
    participant: Participant


class ParticipantLeft(Event):
    """Someone is gone: their grace period ran out, or they were removed."""

    type: Literal["participant.left"] = "participant.left"
    user_id: str
    reason: Literal["left", "removed"]


class InviteReceived(Event):
    """To one listener: a moderator invites them to speak."""

    type: Literal["invite.received"] = "invite.received"
    from_user: str


class ActionsChanged(Event):
    """To one participant: what they may send changed."""

    type: Literal["actions"] = "actions"
    actions: Actions


class Reaction(Event):
    """Someone reacted (changes no state)."""

    type: Literal["reaction"] = "reaction"
    user_id: str
    emoji: str


class Speaking(Event):
    """Who is speaking now (from the media relay)."""

    type: Literal["speaking"] = "speaking"
    user_ids: list[str]


class RoomUpdated(Event):
    """The room changed: a new host (counts travel in ``listeners``)."""

    type: Literal["room.updated"] = "room.updated"
    room: Room


class RecordingStarted(Event):
    """The room is being recorded from now on (``room.recorded`` is true)."""

    type: Literal["recording.started"] = "recording.started"
    by: str  # who started it


class Listeners(Event):
    """The room's counts, to everyone, at most once a ``room_tick_seconds`` when they changed:
    how listeners' comings and goings reach everyone but moderators in a large room."""

    type: Literal["listeners"] = "listeners"
    listener_count: int
    speaker_count: int


class RoomEnded(Event):
    """The room ended; the socket closes next."""

    type: Literal["room.ended"] = "room.ended"
    reason: EndedReason


class Removed(Event):
    """To one participant: they were removed; the socket closes next."""

    type: Literal["removed"] = "removed"


class Error(Event):
    """The answer to a message that was refused or malformed."""

    type: Literal["error"] = "error"
    code: str
    message: str
    ref: str | None = None  # the ``ref`` of the message this answers, when it had one

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Pong(Event):
    """The answer to ``ping``."""

    type: Literal["pong"] = "pong"


class RtcOffer(Event):
    """The relay renegotiates the participant's peer connection."""

    type: Literal["rtc.offer"] = "rtc.offer"
    sdp: str
    publish: bool  # whether the participant may send audio now


class RtcAnswer(Event):
    """The relay's answer to the participant's ``rtc.offer``."""

    type: Literal["rtc.answer"] = "rtc.answer"
    sdp: str


class RtcIce(Event):
    """An ICE candidate of the relay (in practice none: they are all in its SDP)."""

    type: Literal["rtc.ice"] = "rtc.ice"
    candidate: dict[str, Any] | None


class RtcRestart(Event):
    """The media node serving the participant went away, they may speak now and speakers
    are served elsewhere, or a node can take them after ``media_full`` / ``media_busy``:
    close the peer connection, open a new one and send ``rtc.offer``."""

    type: Literal["rtc.restart"] = "rtc.restart"
    publish: bool  # whether the participant may send audio now


class Replaced(Event):
    """Server processes only: the user connected again, so socket ``conn`` must close."""

    type: Literal["_replaced"] = "_replaced"
    conn: str


ServerEvent = Annotated[
    Welcome
    | ParticipantJoined
    | ParticipantUpdated
    | ParticipantLeft
    | InviteReceived
    | ActionsChanged
    | Reaction
    | Speaking
    | RoomUpdated
    | RecordingStarted
    | Listeners
    | RoomEnded
    | Removed
    | Error
    | Pong
    | RtcOffer
    | RtcAnswer
    | RtcIce
    | RtcRestart
    | Replaced,
    Field(discriminator="type"),
]
EVENT = TypeAdapter[ServerEvent](ServerEvent)
MODELS: tuple[type[Event], ...] = get_args(get_args(ServerEvent)[0])


def type_of(model: type[Event]) -> str:
    return str(model.model_fields["type"].default)


def encode(value: Event | Any) -> str:
    """JSON text that can always go on the wire (an event, or any JSON-ready value): UTF-8
    where possible; ``\\u`` escapes when a string cannot be encoded (a lone surrogate)."""
    data = value.wire() if isinstance(value, Event) else value
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii() and not utf8(text):
        text = json.dumps(data, separators=(",", ":"))
    return text


def utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
