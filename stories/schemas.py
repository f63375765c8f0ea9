"""Request and response schemas of the stories API (see docs/stories.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stories.rules import Audience

HEX_COLOUR = r"^#[0-9A-Fa-f]{6}$"
# Hard ceilings for the schema; the configured limits (settings) are checked by the handlers.
TEXT_CEILING = 10_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextStoryIn(Strict):
    text: str = Field(min_length=1, max_length=TEXT_CEILING)
    background: str | None = Field(default=None, pattern=HEX_COLOUR)
    audience: Audience = "followers"
    allow_replies: bool = True
    allow_reactions: bool = True


class MediaStoryFields(Strict):
    """The text fields of the multipart upload (the file itself is the ``file`` part)."""

    caption: str | None = Field(default=None, max_length=TEXT_CEILING)
    audience: Audience = "followers"
    allow_replies: bool = True
    allow_reactions: bool = True


class StoryPatch(Strict):
    allow_replies: bool | None = None
    allow_reactions: bool | None = None


class ReplyIn(Strict):
    text: str = Field(min_length=1, max_length=TEXT_CEILING)


class ReactionIn(Strict):
    emoji: str = Field(min_length=1, max_length=16)


class CursorQuery(BaseModel):
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=200)


class MediaQuery(BaseModel):
    exp: int = Field(ge=0)
    sig: str = Field(min_length=1, max_length=100)


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
