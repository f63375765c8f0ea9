"""The stories service on a real Valkey with a manual clock: expiry without sleeping, and the
use cases' checks without HTTP in between."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from server.clock import ManualClock
from server.errors import Conflict, Forbidden, NotFound
from server.settings import Settings
from stories.fanout import FANOUT_SHARDS
from stories.model import Options
from stories.presenters import media_links
from stories.service import StoriesService
from stories.sweeper import Sweeper
from tests.stories import samples
from tests.stories.conftest import fan_out, make_service

TTL = 600
FOLLOWERS = Options("followers", allow_replies=True, allow_reactions=False)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def stories(
    redis: Redis, clock: ManualClock, make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[StoriesService]:
    settings = make_settings(story_ttl_seconds=TTL, max_active_stories=2)
    svc = make_service(redis, settings, clock, tmp_path)
    await svc.store.graph.follow("bob", "ann")
    yield svc
    async for key in redis.scan_iter(match=settings.key_prefix + "*"):
        await redis.delete(key)


async def story_keys(redis: Redis, svc: StoriesService) -> list[str]:
    return sorted([k async for k in redis.scan_iter(match=svc.store.k("st", "*"))])


async def test_a_story_expires_by_the_clock_and_the_sweeper_removes_it(
    stories: StoriesService, clock: ManualClock, redis: Redis, tmp_path: Path
) -> None:
    photo = await stories.publish_media("ann", "at the pier", FOLLOWERS, io.BytesIO(samples.jpeg()))
    clock.advance(1)
    text = await stories.publish_text("ann", " hello ", None, FOLLOWERS)
    assert text.story.text == "hello" and text.story.created_at == clock.now()
    assert text.story.expires_at == clock.now() + TTL
    await stories.mark_seen("bob", photo.story.id)
    await stories.reply("bob", text.story.id, "hi")
    assert await fan_out(stories) == 2

    clock.advance(TTL - 2)  # both are live for one more second
    assert [v.story.id for v in await stories.author_stories("bob", "ann")] == [
        photo.story.id,
        text.story.id,
    ]
    [entry] = await stories.tray("bob")
    assert (entry.author, entry.unseen_count, entry.start_story_id) == ("ann", 1, text.story.id)
    [item] = (await stories.inbox("ann", None, 10))[0]
    assert item.text == "hi" and item.created_at == clock.now() - (TTL - 2)
    assert await stories.store.claim_due(60, 10) == []  # nothing due yet

    clock.advance(2)  # past both expiries: no longer live, though Redis still holds them
    for sid in (photo.story.id, text.story.id):
        with pytest.raises(NotFound):
            await stories.story("bob", sid)
    assert await stories.author_stories("bob", "ann") == []
    assert await stories.tray("bob") == []
    assert await stories.inbox("ann", None, 10) == ([], None)
    assert await story_keys(redis, stories)  # until the sweeper runs

    assert await Sweeper(stories, interval=60).sweep_once() == 2
    # Left: bob's tray index, whose refs are trimmed by the next write or expire by TTL, and
    # the fan-out streams (empty).
    left = [stories.store.tray_key("bob")]
    left += [stories.fanout.stream_key(shard) for shard in range(FANOUT_SHARDS)]
    assert await story_keys(redis, stories) == sorted(left)
    assert not any(p.is_file() for p in (tmp_path / "media").rglob("*"))


async def test_media_urls_are_granted_until_their_own_expiry(
    stories: StoriesService, clock: ManualClock
) -> None:
    view = await stories.publish_media("ann", None, FOLLOWERS, io.BytesIO(samples.jpeg()))
    links = media_links(stories.settings)
    exp, sig = signed(links.url(view.story, "thumb", view.at))
    grant = await stories.media(view.story.id, "thumb", exp, sig)
    assert grant.path.is_file() and grant.max_age == int(exp - clock.now())
    clock.advance(exp - clock.now())
    with pytest.raises(Forbidden) as refused:
        await stories.media(view.story.id, "thumb", exp, sig)
    assert refused.value.code == "url_expired"
    with pytest.raises(NotFound):
        await stories.media(view.story.id, "full", exp, sig)  # signed for another variant


async def test_refusals_come_from_the_service(stories: StoriesService) -> None:
    view = await stories.publish_text("ann", "one", None, FOLLOWERS)
    sid = view.story.id
    cases = [
        (stories.story("eve", sid), NotFound, "story_not_found"),  # not a follower
        (stories.delete("bob", sid), Forbidden, "not_author"),
        (stories.viewers("bob", sid, None, 10), Forbidden, "not_author"),
        (stories.reply("ann", sid, "me"), Forbidden, "own_story"),
        (stories.react("bob", sid, "🔥"), Forbidden, "reactions_disabled"),
        (stories.mute("ann", "ann", True), Conflict, "self_reference"),
    ]
    for call, error, code in cases:
        with pytest.raises(error) as refused:
            await call
        assert refused.value.code == code
    await stories.publish_text("ann", "two", None, FOLLOWERS)
    with pytest.raises(Conflict) as full:
        await stories.ready_to_publish("ann")
    assert full.value.code == "too_many_stories"


def signed(url: str) -> tuple[int, str]:
    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    return int(query["exp"]), query["sig"]
