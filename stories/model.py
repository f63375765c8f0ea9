"""A story and an inbox item: dataclasses, their Redis hash encoding, and a story as one
caller sees it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stories.rules import Cursor, TrayRef


@dataclass(frozen=True)
class Blob:
    """One stored file of a story's media (``full`` or ``thumb``)."""

    key: str
    content_type: str


@dataclass(frozen=True)
class MediaInfo:
    content_type: str
    width: int
    height: int
    duration: float | None
    blobs: dict[str, Blob] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "content_type": self.content_type,
                "width": self.width,
                "height": self.height,
                "duration": self.duration,
                "blobs": {v: [b.key, b.content_type] for v, b in self.blobs.items()},
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> MediaInfo:
        d = json.loads(raw)
        return cls(
            content_type=d["content_type"],
            width=int(d["width"]),
            height=int(d["height"]),
            duration=d["duration"],
            blobs={v: Blob(key=k, content_type=t) for v, (k, t) in d["blobs"].items()},
        )


@dataclass(frozen=True)
class Story:
    id: str
    author: str
    kind: str
    audience: str
    allow_replies: bool
    allow_reactions: bool
    created_at: float
    expires_at: float
    text: str | None = None
    background: str | None = None
    caption: str | None = None
    media: MediaInfo | None = None

    def to_hash(self) -> dict[str, str]:
        h = {
            "id": self.id,
            "author": self.author,
            "kind": self.kind,
            "audience": self.audience,
            "allow_replies": "1" if self.allow_replies else "0",
            "allow_reactions": "1" if self.allow_reactions else "0",
            "created_at": repr(self.created_at),
            "expires_at": repr(self.expires_at),
        }
        optional = {"text": self.text, "background": self.background, "caption": self.caption}
        h.update({k: v for k, v in optional.items() if v is not None})
        if self.media is not None:
            h["media"] = self.media.to_json()
        return h

    @classmethod
    def from_hash(cls, h: Mapping[Any, Any]) -> Story | None:
        """``None`` for an empty or partial hash (a key that expired or is half-deleted)."""
        try:
            return cls(
                id=h["id"],
                author=h["author"],
                kind=h["kind"],
                audience=h["audience"],
                allow_replies=h["allow_replies"] == "1",
                allow_reactions=h["allow_reactions"] == "1",
                created_at=float(h["created_at"]),
                expires_at=float(h["expires_at"]),
                text=h.get("text"),
                background=h.get("background"),
                caption=h.get("caption"),
                media=MediaInfo.from_json(h["media"]) if h.get("media") else None,
            )
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class InboxItem:
    id: str
    kind: str  # "reply" | "reaction"
    story_id: str
    from_user: str
    created_at: float
    story_expires_at: float
    text: str | None = None
    emoji: str | None = None

    def to_hash(self) -> dict[str, str]:
        h = {
            "id": self.id,
            "kind": self.kind,
            "story_id": self.story_id,
            "from_user": self.from_user,
            "created_at": repr(self.created_at),
            "story_expires_at": repr(self.story_expires_at),
        }
        if self.text is not None:
            h["text"] = self.text
        if self.emoji is not None:
            h["emoji"] = self.emoji
        return h

    @classmethod
    def from_hash(cls, h: Mapping[Any, Any]) -> InboxItem | None:
        try:
            return cls(
                id=h["id"],
                kind=h["kind"],
                story_id=h["story_id"],
                from_user=h["from_user"],
                created_at=float(h["created_at"]),
                story_expires_at=float(h["story_expires_at"]),
                text=h.get("text"),
                emoji=h.get("emoji"),
            )
        except (KeyError, ValueError):
            return None


# A tray index member names its author, story, creation time and audience (one letter, so
# members stay under Redis's 64-byte compact-encoding limit); the score is the expiry.
AUDIENCE_CODES = {"followers": "f", "close_friends": "c", "public": "p"}
AUDIENCE_OF_CODE = {code: audience for audience, code in AUDIENCE_CODES.items()}


def meta_value(ref: TrayRef) -> str:
    """A ref as its author's ``meta`` hash holds it (the field is the story id)."""
    return f"{ref.created_at!r} {ref.expires_at!r} {ref.audience}"


def ref_from_meta(author: str, story_id: str, raw: str) -> TrayRef | None:
    try:
        created, expires, audience = raw.split(" ")
        return TrayRef(author, story_id, float(created), float(expires), audience)
    except ValueError:
        return None


def tray_member(ref: TrayRef) -> str:
    """A ref as a member of a tray index (scored by ``ref.expires_at``)."""
    return f"{ref.author}|{ref.id}|{ref.created_at!r}|{AUDIENCE_CODES[ref.audience]}"


def ref_from_member(member: str, expires_at: float) -> TrayRef | None:
    try:
        author, story_id, created, code = member.split("|")
        return TrayRef(author, story_id, float(created), expires_at, AUDIENCE_OF_CODE[code])
    except (ValueError, KeyError):
        return None


def ref_of(story: Story) -> TrayRef:
    return TrayRef(story.author, story.id, story.created_at, story.expires_at, story.audience)


@dataclass(frozen=True)
class FanoutJob:
    """One batch of a fan-out, as a fan-out stream entry: ``publish`` writes a story's ref
    into followers' tray indexes, ``retract`` takes it out again, ``promote`` adds a pulled
    author to their followers' pull sets. ``cursor`` is where the batch starts in the
    author's followers (a ZSCAN cursor; "0" is the start)."""

    kind: str
    author: str
    cursor: str = "0"
    member: str = ""  # the ref's tray member (publish, retract)
    expires_at: float = 0.0

    @property
    def ref(self) -> TrayRef | None:
        return ref_from_member(self.member, self.expires_at) if self.member else None

    def to_fields(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "author": self.author,
            "cursor": self.cursor,
            "member": self.member,
            "expires_at": repr(self.expires_at),
        }

    @classmethod
    def from_fields(cls, f: Mapping[str, str]) -> FanoutJob | None:
        try:
            return cls(f["kind"], f["author"], f["cursor"], f["member"], float(f["expires_at"]))
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class LiveEvent:
    """What a viewer's live tray channel carries: ``story.published`` (a followed author
    published a story the viewer may see) or ``tray.changed`` (anything else that changes
    the tray: a story deleted, a follow, a mute, the viewer's own stories)."""

    type: str
    author: str = ""
    story_id: str = ""

    def encode(self) -> str:
        return json.dumps({"type": self.type, "author": self.author, "story_id": self.story_id})

    @classmethod
    def decode(cls, raw: str) -> LiveEvent | None:
        try:
            d = json.loads(raw)
            return cls(str(d["type"]), str(d["author"]), str(d["story_id"]))
        except (ValueError, KeyError, TypeError):
            return None


TRAY_CHANGED = LiveEvent("tray.changed").encode()


@dataclass(frozen=True)
class Options:
    """What an author chooses for any story: who sees it and how they may answer."""

    audience: str
    allow_replies: bool
    allow_reactions: bool


@dataclass(frozen=True)
class StoryView:
    """A story as one caller sees it at one moment: ``at`` is when it was read, what the
    signed media URLs handed out with it count their lifetime from."""

    story: Story
    seen: bool
    view_count: int | None  # only for the author
    at: float


@dataclass(frozen=True)
class ViewerPage:
    """Who saw a story, newest first, with the view count the author sees."""

    viewers: list[tuple[str, float]]  # user id, first seen at
    view_count: int
    next_cursor: Cursor | None


@dataclass(frozen=True)
class MediaGrant:
    """A media file a signed URL may fetch now, and for how long it may be cached."""

    path: Path
    content_type: str
    max_age: int
