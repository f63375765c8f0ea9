"""Story domain rules as plain functions: who may see what, the tray order, expiry, cursors.

No I/O here: the store gathers the facts (relations, timestamps, seen flags) and these
functions decide. Everything is unit-tested directly in ``tests/stories/test_rules.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

Audience = Literal["followers", "close_friends", "public"]
Kind = Literal["text", "photo", "video"]
AUDIENCES: tuple[Audience, ...] = ("followers", "close_friends", "public")

# One emoji each, as the clients render them in the reaction bar.
Reaction = Literal["❤️", "😂", "😮", "😢", "👏", "🔥"]
ALLOWED_REACTIONS: tuple[str, ...] = get_args(Reaction)
# Background colours offered for text stories; the first is the default.
BACKGROUNDS: tuple[str, ...] = (
    "#1D9BF0",
    "#794BC4",
    "#F91880",
    "#FF7A00",
    "#00BA7C",
    "#FFD400",
    "#0F1419",
)
# A video whose container rounds its length up by a frame is still "60 s".
VIDEO_DURATION_TOLERANCE = 0.1


@dataclass(frozen=True)
class Relation:
    """What is true between one viewer and one author, as far as stories care."""

    is_author: bool = False
    follows: bool = False  # the viewer follows the author
    close_friend: bool = False  # the author lists the viewer as a close friend
    blocked: bool = False  # either of them blocked the other
    hidden: bool = False  # the author hides their stories from the viewer


def may_view(audience: str, rel: Relation) -> bool:
    """Whether a viewer may see a (live) story with this audience."""
    if rel.is_author:
        return True
    if rel.blocked or rel.hidden:
        return False
    if audience == "public":
        return True
    if audience == "close_friends":
        return rel.close_friend
    return rel.follows


# Blank means only these characters: the same set in Python and in the schema's pattern.
BLANK = " \t\n\r\f\v"


def clean_text(text: str) -> str:
    """Text as stored: without surrounding blanks (empty if it was all blank)."""
    return text.strip(BLANK)


def is_live(expires_at: float, now: float) -> bool:
    """Redis expires keys lazily, so every read asks this as well."""
    return expires_at > now


def video_too_long(duration: float, max_seconds: float) -> bool:
    return duration > max_seconds + VIDEO_DURATION_TOLERANCE


def redis_expire_at(expires_at: float, grace_seconds: int) -> int:
    """The EXPIREAT time of a story's keys: a grace period lets the sweeper still read them."""
    return math.ceil(expires_at) + grace_seconds


def signed_url_expiry(now: float, story_expires_at: float, ttl: int, bucket: int = 60) -> int:
    """When a media URL stops working: ``ttl`` from now, rounded up to a ``bucket`` so the
    same URL (and the browser's cache of it) is reused for a while, never past the story."""
    exp = (math.floor(now) // bucket + 1) * bucket + ttl
    return min(exp, math.floor(story_expires_at))


# --- the tray ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrayStory:
    id: str
    created_at: float
    seen: bool


@dataclass(frozen=True)
class TrayEntry:
    author: str
    story_count: int
    unseen_count: int
    all_seen: bool
    start_story_id: str
    latest_at: float


def tray_entry(author: str, stories: Iterable[TrayStory]) -> TrayEntry | None:
    """One author's ring: start at the oldest unseen story, or the oldest when all are seen."""
    ordered = sorted(stories, key=lambda s: (s.created_at, s.id))
    if not ordered:
        return None
    unseen = [s for s in ordered if not s.seen]
    start = unseen[0] if unseen else ordered[0]
    return TrayEntry(
        author=author,
        story_count=len(ordered),
        unseen_count=len(unseen),
        all_seen=not unseen,
        start_story_id=start.id,
        latest_at=ordered[-1].created_at,
    )


def order_tray(own: TrayEntry | None, others: Iterable[TrayEntry]) -> list[TrayEntry]:
    """Own entry first, then authors with unseen stories, then fully seen ones; within each
    group the most recent story first (ties broken by author id so the order is stable)."""
    rest = sorted(others, key=lambda e: (e.all_seen, -e.latest_at, e.author))
    return ([own] if own else []) + rest


# --- newest-first pagination over sorted sets ---------------------------------------------

Cursor = tuple[float, str]


def encode_cursor(score: float, member: str) -> str:
    return f"{score!r}~{member}"


def decode_cursor(raw: str) -> Cursor | None:
    """``None`` when the cursor is not one we issued."""
    score, sep, member = raw.partition("~")
    if not sep or not member:
        return None
    try:
        value = float(score)
    except ValueError:
        return None
    return (value, member) if math.isfinite(value) else None


def after_cursor(
    items: Sequence[tuple[str, float]], cursor: Cursor | None
) -> list[tuple[str, float]]:
    """Items that come after ``cursor`` in ZREVRANGEBYSCORE order (score desc, member desc)."""
    if cursor is None:
        return list(items)
    score, member = cursor
    return [(m, s) for m, s in items if s < score or (s == score and m < member)]
