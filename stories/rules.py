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


@dataclass(frozen=True, slots=True)
class TrayStory:
    id: str
    created_at: float
    seen: bool


@dataclass(frozen=True, slots=True)
class TrayEntry:
    author: str
    story_count: int
    unseen_count: int
    all_seen: bool
    start_story_id: str
    latest_at: float
    story_ids: tuple[str, ...] = ()  # the stories counted, oldest first


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
        story_ids=tuple(s.id for s in ordered),
    )


def order_tray(own: TrayEntry | None, others: Iterable[TrayEntry]) -> list[TrayEntry]:
    """Own entry first, then authors with unseen stories, then fully seen ones; within each
    group the most recent story first (ties broken by author id so the order is stable)."""
    rest = sorted(others, key=lambda e: (e.all_seen, -e.latest_at, e.author))
    return ([own] if own else []) + rest


@dataclass(frozen=True, slots=True)
class TrayRef:
    """What the tray needs of one story: in its author's ``meta`` hash, and fanned out into
    each follower's tray index."""

    author: str
    id: str
    created_at: float
    expires_at: float
    audience: str


@dataclass(frozen=True)
class TrayFacts:
    """What is true between a viewer and the authors of the refs in their tray, read with
    them (so a change after the fan-out counts at once)."""

    following: frozenset[str]  # authors the viewer follows now
    excluded: frozenset[str]  # muted, blocked either way, or hiding their stories
    close_friend_of: frozenset[str]  # authors listing the viewer as a close friend
    gone: frozenset[str]  # ids of stories deleted before they expired
    seen: frozenset[str]  # ids of stories the viewer has seen


def build_tray(
    viewer: str, own: Iterable[TrayRef], refs: Iterable[TrayRef], facts: TrayFacts, now: float
) -> list[TrayEntry]:
    """The viewer's tray from their own stories and the refs of other authors (fanned out
    or pulled, duplicates allowed): only live, undeleted stories of followed authors that
    the viewer may see, minus muted, blocking, blocked and hiding authors (``order_tray``)."""
    # Blocks and hiding are in ``facts.excluded``: the audience is what is left to decide,
    # and it depends only on whether the author lists the viewer as a close friend.
    audiences = {
        close: frozenset(
            a for a in AUDIENCES if may_view(a, Relation(follows=True, close_friend=close))
        )
        for close in (False, True)
    }
    by_author: dict[str, dict[str, TrayStory]] = {}
    for r in refs:
        if (
            r.author in facts.following
            and r.author != viewer
            and r.author not in facts.excluded
            and r.id not in facts.gone
            and is_live(r.expires_at, now)
            and r.audience in audiences[r.author in facts.close_friend_of]
        ):
            story = TrayStory(r.id, r.created_at, r.id in facts.seen)
            by_author.setdefault(r.author, {})[r.id] = story
    others = [e for a, stories in by_author.items() if (e := tray_entry(a, stories.values()))]
    mine = [TrayStory(r.id, r.created_at, True) for r in own if is_live(r.expires_at, now)]
    return order_tray(tray_entry(viewer, mine), others)


def first_expiry(entries: Iterable[TrayEntry], refs: Iterable[TrayRef]) -> float | None:
    """When the first story a tray shows expires (a live tray reads again then)."""
    shown = {sid for entry in entries for sid in entry.story_ids}
    return min((r.expires_at for r in refs if r.id in shown), default=None)


def _follower(close_friend: bool) -> Relation:
    return Relation(follows=True, close_friend=close_friend)


# --- fan-out -------------------------------------------------------------------------------


def pulled(followers: int, max_fanout: int) -> bool:
    """Whether an author has too many followers to fan out to: their followers pull them."""
    return followers > max_fanout


def fanout_targets(
    followers: Sequence[str],
    audience: str,
    close_friends: Sequence[bool],
    blocked: Sequence[bool],
    hidden: Sequence[bool],
) -> list[str]:
    """The followers of a batch whose tray index gets a story (and who hear of it live):
    those who may see it now. The read checks again, so a later change still counts."""
    return [
        user
        for user, close, block, hide in zip(followers, close_friends, blocked, hidden, strict=True)
        if may_view(
            audience, Relation(follows=True, close_friend=close, blocked=block, hidden=hide)
        )
    ]


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
