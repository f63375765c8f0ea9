"""The pure parts of sharing: wording, escaping, card keys, text fitting, URL matching."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from rooms.control.card import DirCardStore, MemoryCardStore, card_png, draw_card, font, wrap
from rooms.control.share import RoomFacts, card_key, count_bucket, describe
from server.share.service import local_path
from server.unfurl import NOT_XML, PageMeta, PageTemplate, head_tags, oembed, oembed_xml, shorten
from server.unfurl import Image as MetaImage

LIVE = RoomFacts("r1", "Morning show", "alice", "live", 0.0, 41)
BASE = "https://eph.example"


def test_descriptions_are_worded_like_spaces() -> None:
    when = datetime(2025, 12, 1, 9, 0, tzinfo=UTC).timestamp()
    assert describe(LIVE) == "Live now · hosted by @alice · 41 listening"
    assert (
        describe(replace(LIVE, listeners=1234)) == "Live now · hosted by @alice · 1,234 listening"
    )
    assert describe(replace(LIVE, listeners=0)) == "Live now · hosted by @alice"
    scheduled = replace(LIVE, state="scheduled", scheduled_for=when, listeners=0)
    assert describe(scheduled) == "Scheduled for Mon 1 Dec, 09:00 UTC · hosted by @alice"
    assert describe(replace(LIVE, state="ended", listeners=0)) == "Ended · hosted by @alice"
    assert describe(replace(LIVE, state="cancelled")) == "Cancelled"
    # The hook for recordings: only a room that says it is recorded is described so.
    recorded = replace(LIVE, state="ended", listeners=0, recorded=True)
    assert describe(recorded) == "Ended · hosted by @alice · Recorded"


def test_card_key_follows_what_the_card_shows() -> None:
    assert [count_bucket(n) for n in (0, 9, 10, 41, 99, 100, 999, 1234)] == [
        0, 9, 10, 40, 90, 100, 900, 1000,
    ]  # fmt: skip
    same = replace(LIVE, listeners=47)  # still "40+"
    assert card_key(same) == card_key(LIVE)
    for changed in (
        replace(LIVE, listeners=50),
        replace(LIVE, title="Evening show"),
        replace(LIVE, host="bob"),
        replace(LIVE, state="ended", listeners=0),
        replace(LIVE, recorded=True),
    ):
        assert card_key(changed) != card_key(LIVE)


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@settings(max_examples=200, deadline=None)
@given(title=st.text(min_size=1, max_size=100), description=st.text(max_size=300))
def test_any_text_stays_text(title: str, description: str) -> None:
    image = MetaImage(f"{BASE}/card.png?v={title}", title, 1200, 630, "image/png")
    meta = PageMeta(title, description, f"{BASE}/rooms/x", image, oembed=True)
    parser = Collect()
    parser.feed(head_tags(meta, BASE))
    parser.close()
    assert {tag for tag, _ in parser.tags} == {"meta", "link"}
    values = {a.get("property") or a.get("name"): a.get("content") for t, a in parser.tags}
    assert values["og:title"] == values["twitter:title"] == title
    assert values["og:description"] == description
    assert values["og:image:alt"] == title


def test_template_needs_its_slot_and_escapes_the_title() -> None:
    with pytest.raises(ValueError):
        PageTemplate("<html><head><title>Ephemera</title></head></html>")
    page = PageTemplate("<head><title>Ephemera</title><!--share-meta--></head>")
    html = page.render(PageMeta("</title><script>", "d", f"{BASE}/"), BASE)
    assert html.startswith("<head><title>&lt;/title&gt;&lt;script&gt; · Ephemera</title>")
    assert "<script>" not in html


def test_shorten_cuts_at_a_word() -> None:
    assert shorten("  a\n b  ") == "a b"
    assert shorten("one two three", limit=9) == "one two…"
    assert shorten("x" * 20, limit=10) == "x" * 9 + "…"


def test_long_titles_wrap_and_end_with_an_ellipsis() -> None:
    f = font(64)
    lines = wrap("word " * 60, f, 1040, max_lines=3)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(f.getlength(line) <= 1040 for line in lines)
    unbroken = wrap("W" * 200, f, 1040, max_lines=3)
    assert len(unbroken) == 3 and all(f.getlength(line) <= 1040 for line in unbroken)
    assert wrap("Short", f, 1040, max_lines=3) == ["Short"]


@settings(max_examples=25, deadline=None)
@given(
    title=st.text(min_size=1, max_size=100).filter(str.strip),
    host=st.from_regex(r"^[A-Za-z0-9_.-]{1,64}$", fullmatch=True),
    state=st.sampled_from(["live", "scheduled", "ended", "cancelled"]),
    listeners=st.integers(0, 10**7),
)
def test_every_card_is_a_1200x630_png(title: str, host: str, state: str, listeners: int) -> None:
    facts = RoomFacts("r", title, host, state, 1_764_579_600.0, listeners)
    img = Image.open(io.BytesIO(draw_card(facts)))
    assert (img.format, img.size) == ("PNG", (1200, 630))


async def test_memory_store_keeps_the_latest_card_per_room() -> None:
    store = MemoryCardStore(max_rooms=2)
    data, key = await card_png(store, LIVE)
    assert await store.get("r1", key) == data
    await card_png(store, replace(LIVE, title="Renamed"))
    assert await store.get("r1", key) is None  # replaced by the renamed room's card
    for rid in ("r2", "r3"):
        await card_png(store, replace(LIVE, id=rid))
    assert await store.get("r1", card_key(replace(LIVE, title="Renamed"))) is None  # evicted


async def test_an_unusable_card_directory_costs_a_redraw_not_the_answer(tmp_path: Path) -> None:
    blocked = tmp_path / "cards"
    blocked.write_text("a file where the directory should be")
    store = DirCardStore(blocked)
    data, key = await card_png(store, LIVE)
    assert Image.open(io.BytesIO(data)).size == (1200, 630)
    assert await store.get(LIVE.id, key) is None
    good = DirCardStore(tmp_path / "ok")
    data, key = await card_png(good, LIVE)
    assert await good.get(LIVE.id, key) == data
    await good.drop(LIVE.id)
    assert not (tmp_path / "ok" / LIVE.id).exists()


def test_oembed_document() -> None:
    image = MetaImage(f"{BASE}/c.png", "alt", 1200, 630)
    meta = PageMeta("T", "D", f"{BASE}/rooms/x", image, author="alice", cache_age=60)
    doc = oembed(meta, BASE, None, None)
    assert doc["thumbnail_url"] == f"{BASE}/c.png" and doc["provider_url"] == f"{BASE}/"
    assert "thumbnail_url" not in oembed(meta, BASE, 1199, None)
    assert "thumbnail_url" not in oembed(meta, BASE, None, 629)
    assert "author_name" not in oembed(PageMeta("T", "D", BASE), BASE, None, None)


@pytest.mark.parametrize(
    ("url", "base", "path"),
    [
        ("https://eph.example/rooms/a", BASE, "/rooms/a"),
        ("http://eph.example/rooms/a", BASE, "/rooms/a"),
        ("https://eph.example/#/rooms/a", BASE, "/rooms/a"),
        ("https://eph.example/#/rooms/a?x=1", BASE, "/rooms/a"),
        ("https://eph.example/rooms/a%2Db", BASE, "/rooms/a-b"),
        ("https://eph.example/app/rooms/a", f"{BASE}/app/", "/rooms/a"),
        ("https://eph.example/apple/rooms/a", f"{BASE}/app", None),
        ("https://evil.example/rooms/a", BASE, None),
        ("https://eph.example.evil/rooms/a", BASE, None),
        ("javascript:alert(1)", BASE, None),
        ("/rooms/a", BASE, None),
        ("https://[eph.example/rooms/a", BASE, None),
        ("https://eph.example:99999/rooms/a", BASE, None),
    ],
)
def test_local_path(url: str, base: str, path: str | None) -> None:
    assert local_path(url, base) == path


@settings(max_examples=100, deadline=None)
@given(title=st.text(min_size=1, max_size=100))
def test_oembed_xml_is_well_formed_for_any_title(title: str) -> None:
    root = ElementTree.fromstring(oembed_xml({"version": "1.0", "title": title}))
    assert root.findtext("version") == "1.0"
    # XML parsers normalize line ends: "\r\n" and a lone "\r" both read as "\n".
    expected = NOT_XML.sub("", title).replace("\r\n", "\n").replace("\r", "\n")
    assert root.findtext("title") == expected


@settings(max_examples=300, deadline=None)
@given(url=st.one_of(st.text(max_size=80), st.from_regex(r"^https?://[\[\]\w.:@%-]*/[\w/#%?-]*$")))
def test_local_path_never_raises(url: str) -> None:
    path = local_path(url, BASE)
    assert path is None or path.startswith("/")
