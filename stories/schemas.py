"""Request and response schemas of the stories API (see docs/stories.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from server.settings import Settings
from stories import media
from stories.rules import Audience, Reaction

HEX_COLOUR = r"^#[0-9A-Fa-f]{6}$"
# The schema documents the default limit; handlers enforce the configured one
# (``max_story_text``), so configure it at or below this value.
MAX_TEXT: int = Settings.model_fields["max_story_text"].default
# Text as the service accepts it (StoriesService._text): something other than blanks, at most
# MAX_TEXT characters once the blanks around it are trimmed (rules.BLANK, rules.clean_text).
_BLANK, _SOLID = r"[ \t\n\r\f\v]", r"[^ \t\n\r\f\v]"
TEXT_PATTERN = rf"^{_BLANK}*{_SOLID}(?:[\s\S]{{0,{MAX_TEXT - 2}}}{_SOLID})?{_BLANK}*$"
# Checked by the handler (codes empty_text, text_too_long, at the configured limit); the
# pattern states the same rule in the schema.
StoryText = Annotated[
    str,
    Field(
        description=f"1 to {MAX_TEXT} characters once the blanks around it are trimmed",
        json_schema_extra={"pattern": TEXT_PATTERN},
    ),
]
# "<score>~<member>": a time in seconds as repr() writes it (timestamps never need an exponent,
# and without one every value the pattern admits is a finite float), then a user or item id
# (rules.encode_cursor).
CURSOR = r"^-?[0-9]{1,20}(\.[0-9]{1,20})?~[A-Za-z0-9_.-]{1,64}$"


def _form_bool(value: object) -> object:
    """Form fields are text: only "true" and "false" are booleans (as the schema says)."""
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError('expected "true" or "false"')
        return value == "true"
    return value


FormBool = Annotated[bool, BeforeValidator(_form_bool)]


class Strict(BaseModel):
    """JSON bodies: no unknown fields, no type coercion (0 is not false)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class TextStoryIn(Strict):
    text: StoryText
    background: str | None = Field(default=None, pattern=HEX_COLOUR)
    audience: Audience = "followers"
    allow_replies: bool = True
    allow_reactions: bool = True


class MediaStoryFields(BaseModel):
    """The text fields of the multipart upload (the file itself is the ``file`` part); form
    fields are strings, so "true"/"false" are read as booleans. An empty field is refused like
    any other invalid value: leave a field out to get its default."""

    model_config = ConfigDict(extra="forbid")

    # Multipart has no null: an absent caption is no caption.
    caption: StoryText | SkipJsonSchema[None] = None
    audience: Audience = "followers"
    allow_replies: FormBool = True
    allow_reactions: FormBool = True


class StoryPatch(Strict):
    allow_replies: bool | None = None
    allow_reactions: bool | None = None


class ReplyIn(Strict):
    text: StoryText


class ReactionIn(Strict):
    emoji: Reaction


class CursorQuery(BaseModel):
    cursor: str | None = Field(default=None, pattern=CURSOR)
    limit: int = Field(default=50, ge=1, le=200)


class TrayEventsQuery(BaseModel):
    # EventSource cannot send headers: browsers pass the bearer token here instead.
    token: str | None = Field(default=None, min_length=1, max_length=4096)


class MediaQuery(BaseModel):
    exp: int = Field(ge=0)
    sig: str = Field(pattern=r"^[A-Za-z0-9_-]{43}$")


class MediaOut(BaseModel):
    url: str
    thumbnail_url: str
    content_type: str
    width: int
    height: int
    duration: float | None


class StoryOut(BaseModel):
    id: str
    author: str
    kind: Literal["text", "photo", "video"]
    text: str | None
    background: str | None
    caption: str | None
    media: MediaOut | None
    audience: Audience
    allow_replies: bool
    allow_reactions: bool
    created_at: datetime
    expires_at: datetime
    seen: bool = Field(description="whether the caller has seen it (always true for the author)")
    view_count: int | None = Field(description="only for the author")


class StoriesOut(BaseModel):
    stories: list[StoryOut]


class TrayEntryOut(BaseModel):
    author: str
    story_count: int
    unseen_count: int
    all_seen: bool
    start_story_id: str
    latest_at: datetime


class TrayOut(BaseModel):
    entries: list[TrayEntryOut]


class ViewerOut(BaseModel):
    user_id: str
    seen_at: datetime


class ViewersOut(BaseModel):
    viewers: list[ViewerOut]
    view_count: int
    next_cursor: str | None


class InboxItemOut(BaseModel):
    id: str
    kind: Literal["reply", "reaction"]
    story_id: str
    from_user: str
    text: str | None
    emoji: str | None
    created_at: datetime


class InboxOut(BaseModel):
    items: list[InboxItemOut]
    next_cursor: str | None


class ConfigOut(BaseModel):
    allowed_reactions: list[str]
    max_text: int
    ttl_seconds: int
    max_video_seconds: float
    max_upload_bytes: int
    backgrounds: list[str]
    audiences: list[str]
    image_types: list[str]
    video_types: list[str]


# --- what OpenAPI says of the two routes that are not JSON --------------------------------

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
            "encoding": {
                "file": {"contentType": ", ".join(sorted(media.IMAGE_TYPES + media.VIDEO_TYPES))}
            },
        }
    },
}
UPLOAD_RESPONSES: dict[int, dict[str, Any]] = {
    415: {"description": "Not an accepted image or video type, or an unknown codec"},
}
MEDIA_RESPONSES: dict[int, dict[str, Any]] = {
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
}

TRAY_EVENTS_RESPONSES: dict[int, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `tray` (the tray, at once and after every change), "
        "`story.published` ({author, story_id}), `: ping` heartbeats, `expired` when the "
        "token runs out (docs/stories.md, 'Live tray')",
        "content": {"text/event-stream": {}},
    },
    401: {"description": "No valid token (`?token=` or `Authorization: Bearer`)"},
    429: {"description": "Too many live trays open for this user on this server"},
}
