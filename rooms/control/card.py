"""A room's card image (1200x630 PNG, drawn with Pillow) and where drawn cards are kept.

A card depends only on what it shows (``rooms.control.share.card_key``), so any process can draw
it again: the cache is a convenience, not a source of truth. ``DirCardStore`` keeps the
latest card of each room under the data directory; ``MemoryCardStore`` is the in-process
alternative. Pillow's bundled scalable font (``ImageFont.load_default(size=...)``) needs
no system fonts; characters it lacks (emoji, CJK) are drawn as boxes.
"""

from __future__ import annotations

import asyncio
import colorsys
import contextlib
import io
import os
import re
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import structlog
from PIL import Image, ImageDraw, ImageFont

from rooms.control.share import CARD_SIZE, RoomFacts, card_count, card_key, status

log = structlog.get_logger(__name__)
W, H = CARD_SIZE
PAD = 80
BG = (15, 20, 25)
TEXT = (231, 233, 234)
MUTED = (139, 152, 165)
PINK = (249, 24, 128)
LIVE = (244, 33, 46)
KEY = re.compile(r"^[0-9a-f]{24}$")

Font = ImageFont.FreeTypeFont


@lru_cache(maxsize=8)
def font(size: int) -> Font:
    loaded = ImageFont.load_default(size=size)
    assert isinstance(loaded, ImageFont.FreeTypeFont), "Pillow was built without FreeType"
    return loaded


def fit(text: str, f: Font, width: float) -> str:
    """``text`` cut with an ellipsis so that it is at most ``width`` pixels wide."""
    if f.getlength(text) <= width:
        return text
    while text and f.getlength(text.rstrip() + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap(text: str, f: Font, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap; a word wider than a line is split; the last line is ellipsized."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if f.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while f.getlength(word) > width:
            cut = len(fit(word, f, width)) - 1
            lines.append(word[: max(cut, 1)])
            word = word[max(cut, 1) :]
        line = word
    lines.append(line)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], fit(" ".join(lines[max_lines - 1 :]) + " …", f, width)]
    return lines


def avatar_color(user_id: str) -> tuple[int, int, int]:
    """The colour the web client gives this user's avatar (FNV-1a hue, as static/js/ui.js)."""
    x = 2166136261
    for ch in user_id:
        x = ((x ^ ord(ch)) * 16777619) & 0xFFFFFFFF
    r, g, b = colorsys.hls_to_rgb((x % 360) / 360, 0.42, 0.55)
    return round(r * 255), round(g * 255), round(b * 255)


def initials(user_id: str) -> str:
    parts = [p for p in re.split(r"[._\-\s]+", user_id) if p]
    if len(parts) >= 2:
        return (parts[0][0] + parts[1][0]).upper()
    word = parts[0] if parts else "?"
    return word[: 1 if len(word) > 2 else 2].upper()


def _badge(d: ImageDraw.ImageDraw, f: RoomFacts) -> None:
    label = f.state.upper()
    text_font = font(30)
    width = text_font.getlength(label) + (76 if f.state == "live" else 48)
    fill = LIVE if f.state == "live" else (47, 51, 54)
    d.rounded_rectangle((PAD, PAD, PAD + width, PAD + 56), radius=28, fill=fill)
    x = PAD + 24
    if f.state == "live":
        d.ellipse((x, PAD + 20, x + 16, PAD + 36), fill=TEXT)
        x += 28
    d.text((x, PAD + 28), label, font=text_font, fill=TEXT, anchor="lm")


def _host(d: ImageDraw.ImageDraw, host: str, top: int) -> None:
    size = 72
    d.ellipse((PAD, top, PAD + size, top + size), fill=avatar_color(host))
    center = (PAD + size // 2, top + size // 2)
    d.text(center, initials(host), font=font(30), fill=(255, 255, 255), anchor="mm")
    name = fit(f"hosted by @{host}", font(36), W - 2 * PAD - size - 24)
    d.text((PAD + size + 24, top + size // 2), name, font=font(36), fill=TEXT, anchor="lm")


def _footer(d: ImageDraw.ImageDraw, f: RoomFacts) -> None:
    line = {"live": card_count(f.listeners), "scheduled": status(f)}.get(f.state, "")
    if line:
        d.text((PAD, H - PAD), line, font=font(34), fill=MUTED, anchor="ls")
    brand = font(34)
    right = W - PAD
    d.text((right, H - PAD), "Ephemera", font=brand, fill=TEXT, anchor="rs")
    ring_x = right - brand.getlength("Ephemera") - 48
    d.ellipse((ring_x, H - PAD - 34, ring_x + 34, H - PAD), outline=PINK, width=6)


def draw_card(f: RoomFacts) -> bytes:
    """The card as PNG bytes: state badge, title (up to three lines), host, count, brand."""
    img = Image.new("RGB", CARD_SIZE, BG)
    d = ImageDraw.Draw(img)
    _badge(d, f)
    title_font = font(64)
    y = PAD + 56 + 40
    for line in wrap(f.title, title_font, W - 2 * PAD, max_lines=3):
        d.text((PAD, y), line, font=title_font, fill=TEXT)
        y += 76
    _host(d, f.host, max(y + 24, 380))
    _footer(d, f)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


class CardStore(Protocol):
    """Keeps the latest card of each room; a miss only means drawing it again."""

    async def get(self, room_id: str, key: str) -> bytes | None: ...
    async def put(self, room_id: str, key: str, data: bytes) -> None: ...
    async def drop(self, room_id: str) -> None: ...


class DirCardStore:
    """``<root>/<room id>/<key>.png``, written atomically; a room's older cards are removed
    when a new one is stored, and all of them once the room is gone (``drop``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, room_id: str, key: str) -> Path:
        if not KEY.match(key) or "/" in room_id or room_id.startswith("."):
            raise ValueError("bad card key")
        return self.root / room_id / f"{key}.png"

    async def get(self, room_id: str, key: str) -> bytes | None:
        path = self._path(room_id, key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError:  # not drawn yet, or unreadable: either way, draw it
            return None

    async def put(self, room_id: str, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(room_id, key), data)

    async def drop(self, room_id: str) -> None:
        await asyncio.to_thread(self._clear, self.root / room_id, None)

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers in any process see the old file or the new one
        self._clear(path.parent, keep=path)

    @staticmethod
    def _clear(folder: Path, keep: Path | None) -> None:
        with contextlib.suppress(FileNotFoundError):
            for entry in folder.iterdir():
                if entry != keep and entry.suffix == ".png":
                    entry.unlink(missing_ok=True)
        if keep is None:
            with contextlib.suppress(OSError):  # gone already, or a card arrived meanwhile
                folder.rmdir()


class MemoryCardStore:
    """The latest card of the ``max_rooms`` most recently drawn rooms, in this process."""

    def __init__(self, max_rooms: int = 1000) -> None:
        self.max_rooms = max_rooms
        self._cards: OrderedDict[str, tuple[str, bytes]] = OrderedDict()

    async def get(self, room_id: str, key: str) -> bytes | None:
        found = self._cards.get(room_id)
        return found[1] if found is not None and found[0] == key else None

    async def put(self, room_id: str, key: str, data: bytes) -> None:
        self._cards[room_id] = (key, data)
        self._cards.move_to_end(room_id)
        while len(self._cards) > self.max_rooms:
            self._cards.popitem(last=False)

    async def drop(self, room_id: str) -> None:
        self._cards.pop(room_id, None)


async def card_png(store: CardStore, f: RoomFacts) -> tuple[bytes, str]:
    """The room's card and its key (an ETag): from the store, or drawn and stored."""
    key = card_key(f)
    data = await store.get(f.id, key)
    if data is None:
        data = await asyncio.to_thread(draw_card, f)
        try:
            await store.put(f.id, key, data)
        except OSError as exc:  # a full or read-only disk costs a redraw, not the answer
            log.warning("rooms.card_not_stored", room_id=f.id, error=repr(exc))
    return data, key
