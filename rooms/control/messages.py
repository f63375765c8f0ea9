"""Every client -> server message of the room socket, as a schema (docs/protocol.md).

``decode`` turns a text frame into a validated message or raises ``ValidationFailed`` with a
stable code (``malformed_json``, ``invalid_message``, ``unknown_type``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator

from rooms.control.events import utf8
from rooms.control.rules import REACTIONS
from server.errors import ValidationFailed

# A user id as in server.auth.USER_ID.
UserId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


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
        "recording.start",
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


def wire(message: BaseModel) -> dict[str, Any]:
    """A client message as the relay receives it (``rtc.*``): JSON-ready, without ``ref``."""
    return message.model_dump(mode="json", exclude={"ref"})


def parse(text: str) -> Any:
    """The JSON value of a text frame; raises ``ValidationFailed`` for anything else."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ValidationFailed("the message is not valid JSON", code="malformed_json") from None
    # JSON can escape a lone UTF-16 surrogate ("\\ud800"): that is not text, and nothing
    # holding it could be stored, published or sent back.
    if "\\u" in text and not is_text(data):
        raise ValidationFailed(
            "strings must be Unicode text (no lone surrogates)", code="invalid_message"
        )
    return data


def validate(data: Any) -> Message:
    """The message ``data`` holds; raises ``ValidationFailed`` with a stable code."""
    try:
        return MESSAGE.validate_python(data)
    except ValidationError as exc:
        code, message = invalid(exc)
        raise ValidationFailed(message, code=code) from None


def invalid(exc: ValidationError) -> tuple[str, str]:
    """A stable code and a short explanation for a message that fails the schema."""
    errors = exc.errors()
    if any(e["type"] in ("union_tag_invalid", "union_tag_not_found") for e in errors):
        if any(e["type"] == "union_tag_not_found" for e in errors):
            return "invalid_message", 'a message needs a "type"'
        return "unknown_type", "unknown message type"
    if any(e["type"] == "model_type" and not e["loc"] for e in errors):
        return "invalid_message", "a message is a JSON object"
    parts = [f"{'.'.join(str(x) for x in e['loc'][1:]) or 'message'}: {e['msg']}" for e in errors]
    return "invalid_message", "; ".join(parts[:3])


def is_text(value: Any) -> bool:
    """Whether every string in a JSON value is Unicode text (no lone surrogates)."""
    try:
        return utf8(json.dumps(value, ensure_ascii=False))
    except RecursionError:
        return False
