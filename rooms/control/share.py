"""What a room's share link unfurls into: the facts anyone holding the link may see, the
description line (worded like Spaces cards), the page metadata and the card's cache key.

Only the title, the host, the state (with the scheduled time) and the listener count are
public, as in ``GET /v1/rooms/{id}/preview``: never the description, the participants or
anything about removed users.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from rooms.control.state import Meta
from rooms.control.store import ROOM_ID, RoomStore
from server import links
from server.unfurl import Image, PageMeta

CARD_SIZE = (1200, 630)
# Part of every card's cache key: bump it when the drawing changes.
CARD_VERSION = 1


@dataclass(frozen=True)
class RoomFacts:
    id: str
    title: str
    host: str
    state: str  # "live", "scheduled", "ended" or "cancelled"
    scheduled_for: float  # epoch seconds; 0 unless scheduled
    listeners: int  # 0 unless live
    # Hook for room recordings (not built yet): set it from the room's recording field
    # once rooms have one; until then no room is described as recorded.
    recorded: bool = False


def facts_of(meta: Meta, listeners: int) -> RoomFacts:
    cancelled = meta.state == "ended" and meta.ended_reason == "cancelled"
    return RoomFacts(
        id=meta.id,
        title=meta.title,
        host=meta.host,
        state="cancelled" if cancelled else meta.state,
        scheduled_for=meta.scheduled_for if meta.state == "scheduled" else 0.0,
        listeners=listeners if meta.state == "live" else 0,
    )


async def load_facts(store: RoomStore, room_id: str) -> RoomFacts | None:
    """The room's public facts, or None if there is no such room (any more)."""
    if not ROOM_ID.match(room_id):
        return None
    meta = await store.meta(room_id)
    if meta is None:
        return None
    [(listeners, _)] = await store.counts([room_id])
    return facts_of(meta, listeners)


def when(epoch: float) -> str:
    """``Mon 1 Dec, 09:00 UTC``: unambiguous for every reader of a shared link."""
    at = datetime.fromtimestamp(epoch, UTC)
    return f"{at:%a} {at.day} {at:%b}, {at:%H:%M} UTC"


def status(f: RoomFacts) -> str:
    return {
        "live": "Live now",
        "scheduled": f"Scheduled for {when(f.scheduled_for)}",
        "ended": "Ended",
        "cancelled": "Cancelled",
    }.get(f.state, "Ended")


def count_bucket(n: int) -> int:
    """The count a card shows: exact below 10, then rounded down to its leading digit
    (41 -> 40, 1234 -> 1000), so a card is not redrawn for every listener who joins."""
    if n < 10:
        return n
    magnitude = 10 ** (len(str(n)) - 1)
    return n // magnitude * magnitude


def card_count(n: int) -> str:
    bucket = count_bucket(n)
    return f"{bucket:,} listening" if bucket < 10 else f"{bucket:,}+ listening"


def describe(f: RoomFacts) -> str:
    """``Live now · hosted by @alice · 41 listening``; ``Cancelled`` for a cancelled room."""
    if f.state == "cancelled":
        return "Cancelled"
    parts = [status(f), f"hosted by @{f.host}"]
    if f.state == "live" and f.listeners > 0:
        parts.append(f"{f.listeners:,} listening")
    if f.recorded:
        parts.append("Recorded")
    return " · ".join(parts)


def card_key(f: RoomFacts) -> str:
    """Everything the card shows, hashed: a new key whenever the picture would change."""
    visible = [CARD_VERSION, f.title, f.host, f.state, f.scheduled_for, f.recorded]
    visible.append(count_bucket(f.listeners) if f.state == "live" else 0)
    return hashlib.sha256(json.dumps(visible).encode()).hexdigest()[:24]


def card_max_age(f: RoomFacts) -> int:
    """How long a card may be cached: live counts move, an ended room's card never does."""
    return {"live": 60, "scheduled": 300}.get(f.state, 86400)


def page_meta(f: RoomFacts, base_url: str) -> PageMeta:
    description = describe(f)
    card = links.absolute(base_url, links.room_card_path(f.id)) + f"?v={card_key(f)}"
    width, height = CARD_SIZE
    return PageMeta(
        title=f.title,
        description=description,
        url=links.absolute(base_url, links.room_path(f.id)),
        image=Image(card, f"{f.title}: {description}", width, height, "image/png"),
        author=f.host,
        oembed=True,
        cache_age=card_max_age(f),
    )
