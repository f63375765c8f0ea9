"""The pure story rules: audiences, the tray order, expiry, cursors and URL signing."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stories import rules, signing
from stories.model import Blob, InboxItem, MediaInfo, Story
from stories.rules import Relation, TrayStory
from stories.schemas import MAX_TEXT, TEXT_PATTERN


@pytest.mark.parametrize(
    ("audience", "rel", "expected"),
    [
        ("followers", Relation(follows=True), True),
        ("followers", Relation(), False),
        ("followers", Relation(close_friend=True), False),
        ("close_friends", Relation(follows=True), False),
        ("close_friends", Relation(close_friend=True), True),
        ("close_friends", Relation(follows=True, close_friend=True), True),
        ("public", Relation(), True),
        ("public", Relation(blocked=True), False),
        ("public", Relation(hidden=True), False),
        ("followers", Relation(follows=True, blocked=True), False),
        ("followers", Relation(follows=True, hidden=True), False),
        ("close_friends", Relation(close_friend=True, hidden=True), False),
        ("close_friends", Relation(is_author=True), True),
        ("followers", Relation(is_author=True), True),
    ],
)
def test_may_view(audience: str, rel: Relation, expected: bool) -> None:
    assert rules.may_view(audience, rel) is expected


def test_is_live_is_strict() -> None:
    assert rules.is_live(100.0, 99.999)
    assert not rules.is_live(100.0, 100.0)
    assert not rules.is_live(100.0, 101.0)


def test_tray_entry_starts_at_oldest_unseen() -> None:
    entry = rules.tray_entry(
        "ann",
        [
            TrayStory("c", 30.0, seen=False),
            TrayStory("a", 10.0, seen=True),
            TrayStory("b", 20.0, seen=False),
        ],
    )
    assert entry is not None
    assert (entry.story_count, entry.unseen_count, entry.all_seen) == (3, 2, False)
    assert entry.start_story_id == "b"
    assert entry.latest_at == 30.0


def test_tray_entry_all_seen_starts_at_oldest() -> None:
    entry = rules.tray_entry("ann", [TrayStory("b", 20.0, True), TrayStory("a", 10.0, True)])
    assert entry is not None
    assert entry.all_seen and entry.unseen_count == 0 and entry.start_story_id == "a"
    assert rules.tray_entry("ann", []) is None


def test_order_tray_own_then_unseen_then_seen() -> None:
    def entry(author: str, latest: float, all_seen: bool) -> rules.TrayEntry:
        return rules.TrayEntry(author, 1, 0 if all_seen else 1, all_seen, "x", latest)

    own = entry("me", 1.0, True)
    others = [
        entry("seen_new", 50.0, True),
        entry("unseen_old", 10.0, False),
        entry("seen_old", 5.0, True),
        entry("unseen_new", 40.0, False),
    ]
    ordered = [e.author for e in rules.order_tray(own, others)]
    assert ordered == ["me", "unseen_new", "unseen_old", "seen_new", "seen_old"]
    assert [e.author for e in rules.order_tray(None, others[:1])] == ["seen_new"]


def test_cursor_round_trip_and_garbage() -> None:
    raw = rules.encode_cursor(1732300000.123456, "bob")
    assert rules.decode_cursor(raw) == (1732300000.123456, "bob")
    for bad in ["", "abc", "1.0~", "nan~bob", "inf~bob", "x~bob"]:
        assert rules.decode_cursor(bad) is None


def test_after_cursor_handles_equal_scores() -> None:
    # ZREVRANGEBYSCORE order: score desc, then member desc.
    items = [("d", 5.0), ("c", 5.0), ("b", 5.0), ("a", 4.0)]
    assert rules.after_cursor(items, (5.0, "c")) == [("b", 5.0), ("a", 4.0)]
    assert rules.after_cursor(items, None) == items
    assert rules.after_cursor(items, (4.0, "a")) == []


def test_video_tolerance() -> None:
    assert not rules.video_too_long(60.05, 60.0)
    assert rules.video_too_long(60.2, 60.0)
    assert rules.video_too_long(61.0, 60.0)


def test_signed_url_expiry_is_bucketed_and_capped() -> None:
    a = rules.signed_url_expiry(1000.0, 10_000.0, 600)
    b = rules.signed_url_expiry(1019.0, 10_000.0, 600)
    assert a == b == 1620  # same bucket: the same URL, cacheable
    assert rules.signed_url_expiry(1000.0, 1300.5, 600) == 1300  # never past the story
    assert rules.redis_expire_at(100.2, 3600) == 3701


def test_signatures_bind_every_part() -> None:
    sig = signing.sign("secret", "abcdefghijklmnop", "full", 123)
    assert signing.verify("secret", "abcdefghijklmnop", "full", 123, sig)
    assert not signing.verify("secret", "abcdefghijklmnop", "thumb", 123, sig)
    assert not signing.verify("secret", "abcdefghijklmnoq", "full", 123, sig)
    assert not signing.verify("secret", "abcdefghijklmnop", "full", 124, sig)
    assert not signing.verify("other", "abcdefghijklmnop", "full", 123, sig)


def test_story_hash_round_trip() -> None:
    media = MediaInfo("image/jpeg", 10, 20, None, {"full": Blob("k/full.jpg", "image/jpeg")})
    story = Story(
        "abcdefghijklmnop",
        "ann",
        "photo",
        "public",
        False,
        True,
        1.5,
        2.5,
        caption="hi",
        media=media,
    )
    assert Story.from_hash(story.to_hash()) == story
    assert Story.from_hash({}) is None
    assert Story.from_hash({**story.to_hash(), "created_at": "x"}) is None
    item = InboxItem("i", "reaction", "s", "bob", 1.0, 2.0, emoji="🔥")
    assert InboxItem.from_hash(item.to_hash()) == item


BLANKS = st.sampled_from(list(rules.BLANK))
SOLID = st.characters(blacklist_characters=rules.BLANK, blacklist_categories=["Cs"])


@settings(max_examples=300, deadline=None)
@given(
    before=st.lists(BLANKS, max_size=5).map("".join),
    inner=st.lists(st.one_of(BLANKS, SOLID), max_size=MAX_TEXT + 3).map("".join),
    after=st.lists(BLANKS, max_size=5).map("".join),
)
def test_the_schema_text_pattern_is_the_rule_the_handlers_apply(
    before: str, inner: str, after: str
) -> None:
    """The published pattern accepts exactly the texts checked_text accepts at the default
    limit: something other than blanks, at most MAX_TEXT characters once trimmed."""
    text = before + inner + after
    cleaned = rules.clean_text(text)
    accepted = 1 <= len(cleaned) <= MAX_TEXT
    assert (re.fullmatch(TEXT_PATTERN, text) is not None) == accepted, (len(cleaned), text)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("x" * MAX_TEXT, True),
        (" \n" + "x" * MAX_TEXT + "\t ", True),
        ("x" * (MAX_TEXT + 1), False),
        ("x" + " " * (MAX_TEXT - 2) + "x", True),
        ("x" + " " * (MAX_TEXT - 1) + "x", False),
        ("", False),
        (" \t\n\r\f\v", False),
        ("é", True),
    ],
)
def test_text_pattern_edges(text: str, ok: bool) -> None:
    assert (re.fullmatch(TEXT_PATTERN, text) is not None) == ok
