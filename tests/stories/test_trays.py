"""The tray index on a real Valkey, the fan-out run by hand (``fan_out``) and a manual clock:
what fan-out writes, what the read checks again, the pull path, and crashes mid fan-out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.clock import ManualClock
from server.settings import Settings
from stories.fanout import FANOUT_SHARDS, GROUP, shard_of
from stories.model import Options
from stories.service import StoriesService
from stories.store import GONE_SHARDS
from tests.stories.conftest import fan_out, make_service
from tests.stories.redis_probe import Counts, counting_cluster, counting_redis
from tests.support import CLUSTER

FOLLOWERS = Options("followers", allow_replies=True, allow_reactions=True)
CLOSE = Options("close_friends", allow_replies=True, allow_reactions=True)
TTL = 600


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(story_ttl_seconds=TTL, stories_fanout_batch=50)


@pytest.fixture
async def svc(
    redis: Redis, settings: Settings, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[StoriesService]:
    yield make_service(redis, settings, clock, tmp_path)
    async for key in redis.scan_iter(match=settings.key_prefix + "*"):
        await redis.delete(key)


async def authors(svc: StoriesService, viewer: str) -> list[str]:
    return [e.author for e in await svc.tray(viewer)]


async def indexed(svc: StoriesService, viewer: str) -> list[str]:
    """The story ids in the viewer's tray index (refs, whether the read shows them or not)."""
    members: Any = await svc.store.r.zrange(svc.store.tray_key(viewer), 0, -1)
    return sorted(m.split("|")[1] for m in members)


async def follow_all(svc: StoriesService, author: str, n: int) -> list[str]:
    """``n`` followers of ``author`` (more than 128: ZSCAN pages a list that large)."""
    fans = [f"fan{i}" for i in range(n)]
    async with svc.store.r.pipeline(transaction=False) as p:
        for fan in fans:
            p.zadd(svc.store.graph.followers_key(author), {fan: 1})
            p.zadd(svc.store.graph.following_key(fan), {author: 1})
        await p.execute()
    return fans


async def test_a_story_reaches_every_follower_in_batches(svc: StoriesService) -> None:
    fans = await follow_all(svc, "ann", 300)
    view = await svc.publish_text("ann", "hi all", None, FOLLOWERS)
    assert await authors(svc, fans[0]) == []  # not fanned out yet
    assert await fan_out(svc) >= 300 // 50 // 2  # pages of about 50 (ZSCAN's COUNT)
    for fan in fans:
        assert await indexed(svc, fan) == [view.story.id]
        [entry] = await svc.tray(fan)
        assert (entry.author, entry.start_story_id, entry.unseen_count) == ("ann", view.story.id, 1)
    assert await fan_out(svc) == 0  # nothing left in the streams


async def test_a_batch_left_by_a_dead_process_is_taken_over(
    redis: Redis, make_settings: Callable[..., Settings], clock: ManualClock, tmp_path: Path
) -> None:
    settings = make_settings(stories_fanout_batch=50, stories_fanout_claim_seconds=0.001)
    svc = make_service(redis, settings, clock, tmp_path)
    fans = await follow_all(svc, "ann", 300)
    view = await svc.publish_text("ann", "hi", None, FOLLOWERS)
    key = svc.fanout.stream_key(shard_of("ann"))
    await svc.fanout.create_group(shard_of("ann"))
    # A process takes the first batch and dies before acknowledging it.
    streams: Any = {key: ">"}
    taken: Any = await redis.xreadgroup(GROUP, "dead-process", streams, count=1)
    assert len(taken[0][1]) == 1
    assert await redis.xpending(key, GROUP) is not None
    assert await fan_out(svc) >= 2  # taken over (XAUTOCLAIM), then the batches after it
    for fan in fans:
        assert await indexed(svc, fan) == [view.story.id]
    assert await redis.xlen(key) == 0 and (await redis.xpending(key, GROUP))["pending"] == 0


async def test_a_batch_done_twice_does_not_fork_the_job(svc: StoriesService, redis: Redis) -> None:
    await follow_all(svc, "ann", 300)
    await svc.publish_text("ann", "hi", None, FOLLOWERS)
    shard = shard_of("ann")
    key = svc.fanout.stream_key(shard)
    await svc.fanout.create_group(shard)
    streams: Any = {key: ">"}
    reply: Any = await redis.xreadgroup(GROUP, "slow", streams, count=1)
    [[_, [(entry_id, fields)]]] = reply
    await svc.fanout.handle(key, entry_id, fields)  # taken over and done...
    await svc.fanout.handle(key, entry_id, fields)  # ...and then done by the slow one too
    assert await redis.xlen(key) == 1  # one next batch, not two
    assert await fan_out(svc) >= 1


async def test_the_read_checks_everything_again(svc: StoriesService, clock: ManualClock) -> None:
    """Refs written by the fan-out stay; what changed since decides: blocks both ways, mutes,
    the hide list, unfollows, close friends, deletion and expiry."""
    graph = svc.store.graph
    for author in ("ann", "bob", "cat", "dan", "eve", "fay"):
        await graph.follow("vic", author)
    await graph.add_close_friend("fay", "vic")
    ids = {
        a: (await svc.publish_text(a, a, None, FOLLOWERS)).story.id for a in ["ann", "bob", "cat"]
    }
    ids["dan"] = (await svc.publish_text("dan", "dan", None, FOLLOWERS)).story.id
    ids["eve"] = (await svc.publish_text("eve", "eve", None, FOLLOWERS)).story.id
    ids["fay"] = (await svc.publish_text("fay", "fay", None, CLOSE)).story.id
    await fan_out(svc)
    assert sorted(await authors(svc, "vic")) == ["ann", "bob", "cat", "dan", "eve", "fay"]

    await svc.store.r.zadd(graph.blocks_key("ann"), {"vic": 1})  # ann blocks vic (raw: the
    await svc.store.r.zadd(graph.blocked_by_key("vic"), {"ann": 1})  # follows stay)
    await svc.mute("vic", "bob", True)
    await svc.hide("cat", "vic", True)
    await svc.store.r.zrem(graph.following_key("vic"), "dan")  # an unfollow racing a fan-out
    await svc.delete("eve", ids["eve"])  # deleted; its refs are still in the index
    await graph.remove_close_friend("fay", "vic")
    assert ids["eve"] in await indexed(svc, "vic")
    assert await authors(svc, "vic") == []

    await svc.mute("vic", "bob", False)
    await svc.hide("cat", "vic", False)
    await graph.add_close_friend("fay", "vic")
    assert sorted(await authors(svc, "vic")) == ["bob", "cat", "fay"]
    clock.advance(TTL)
    assert await authors(svc, "vic") == []


async def test_follow_backfills_and_unfollow_removes(
    svc: StoriesService, clock: ManualClock
) -> None:
    graph = svc.store.graph
    first = await svc.publish_text("ann", "one", None, FOLLOWERS)
    clock.advance(1)
    second = await svc.publish_text("ann", "two", None, FOLLOWERS)
    await fan_out(svc)
    await graph.follow("vic", "ann")  # after the fan-out: the follow brings them in
    [entry] = await svc.tray("vic")
    assert entry.story_count == 2 and entry.start_story_id == first.story.id
    assert await indexed(svc, "vic") == sorted([first.story.id, second.story.id])
    await graph.unfollow("vic", "ann")
    assert await indexed(svc, "vic") == [] and await svc.tray("vic") == []
    await graph.follow("vic", "ann")
    await graph.block("ann", "vic")  # blocking ends the follows and takes the refs out
    assert await indexed(svc, "vic") == []


async def test_close_friends_stories_go_only_to_close_friends(svc: StoriesService) -> None:
    graph = svc.store.graph
    for fan in ("fol", "friend"):
        await graph.follow(fan, "ann")
    await graph.add_close_friend("ann", "friend")
    close = await svc.publish_text("ann", "for friends", None, CLOSE)
    await fan_out(svc)
    assert await indexed(svc, "friend") == [close.story.id]
    assert await indexed(svc, "fol") == []  # never written where it cannot be seen
    await graph.add_close_friend("ann", "fol")  # becoming a close friend brings it in
    assert await indexed(svc, "fol") == [close.story.id]
    assert await authors(svc, "fol") == ["ann"]


async def test_a_story_deleted_before_its_fan_out_is_not_fanned_out(svc: StoriesService) -> None:
    await svc.store.graph.follow("vic", "ann")
    view = await svc.publish_text("ann", "oops", None, FOLLOWERS)
    await svc.delete("ann", view.story.id)
    await fan_out(svc)
    assert await indexed(svc, "vic") == [] and await svc.tray("vic") == []


async def test_a_deleted_story_is_retracted(svc: StoriesService) -> None:
    await svc.store.graph.follow("vic", "ann")
    keep = await svc.publish_text("ann", "keep", None, FOLLOWERS)
    gone = await svc.publish_text("ann", "gone", None, FOLLOWERS)
    await fan_out(svc)
    await svc.delete("ann", gone.story.id)
    [entry] = await svc.tray("vic")  # hidden at once (tombstone), before the retraction
    assert entry.story_ids == (keep.story.id,)
    await fan_out(svc)
    assert await indexed(svc, "vic") == [keep.story.id]


async def test_authors_with_many_followers_are_pulled(
    redis: Redis, make_settings: Callable[..., Settings], clock: ManualClock, tmp_path: Path
) -> None:
    settings = make_settings(stories_fanout_max_followers=2, stories_fanout_batch=2)
    svc = make_service(redis, settings, clock, tmp_path)
    graph = svc.store.graph
    for fan in ("f1", "f2", "f3"):
        await graph.follow(fan, "star")
    first = await svc.publish_text("star", "one", None, FOLLOWERS)  # starts the promotion
    assert await redis.get(svc.store.mode_key("star")) == "promoting"
    await fan_out(svc)
    assert await redis.get(svc.store.mode_key("star")) == "pull"
    clock.advance(1)
    second = await svc.publish_text("star", "two", None, FOLLOWERS)
    assert await fan_out(svc) == 0  # nothing to fan out any more
    for fan in ("f1", "f2", "f3"):
        assert await indexed(svc, fan) == [first.story.id]  # fanned out while promoting
        [entry] = await svc.tray(fan)  # the pulled story joins the fanned-out one, once
        assert set(entry.story_ids) == {first.story.id, second.story.id}
    await graph.follow("late", "star")  # a new follower pulls too
    assert [e.story_count for e in await svc.tray("late")] == [2]
    await graph.unfollow("late", "star")
    assert await svc.tray("late") == []
    assert await redis.zrange(svc.store.pull_key("late"), 0, -1) == []


async def test_a_tray_reads_the_pulled_authors_watched_last(
    redis: Redis, make_settings: Callable[..., Settings], clock: ManualClock, tmp_path: Path
) -> None:
    settings = make_settings(stories_tray_pull_max=2)
    svc = make_service(redis, settings, clock, tmp_path)
    stars = ["s1", "s2", "s3"]
    for star in stars:
        await redis.set(svc.store.mode_key(star), "pull")  # promoted long ago
        await svc.store.graph.follow("vic", star)
        clock.advance(1)
    views = {s: await svc.publish_text(s, s, None, FOLLOWERS) for s in stars}
    assert await fan_out(svc) == 0
    assert sorted(await authors(svc, "vic")) == ["s2", "s3"]  # followed last
    clock.advance(1)
    await svc.mark_seen("vic", views["s1"].story.id)  # watching s1 moves it up
    assert sorted(await authors(svc, "vic")) == ["s1", "s3"]


async def test_a_tray_read_is_two_round_trips_and_bounded_commands(
    svc: StoriesService, settings: Settings, redis: Redis
) -> None:
    graph = svc.store.graph
    n = 300
    for i in range(n):
        await graph.follow("vic", f"a{i}")
    for i in range(0, n, 2):
        await svc.publish_text(f"a{i}", "x", None, FOLLOWERS)
    await svc.publish_text("vic", "mine", None, FOLLOWERS)
    await fan_out(svc)
    assert settings.redis_url is not None
    counts = Counts()
    client: Any = (
        await counting_cluster(settings.redis_url, counts)
        if CLUSTER
        else counting_redis(settings.redis_url, counts)
    )
    try:
        trays = type(svc.trays)(svc.store, settings.stories_tray_pull_max)
        trays.r = client
        await client.ping(**({"target_nodes": "all"} if CLUSTER else {}))  # connected
        before = Counts(counts.round_trips, counts.commands)
        read = await trays.read("vic")
    finally:
        await client.aclose()
    assert len(read.entries) == n // 2 + 1 and read.round_trips == 2
    # On a Cluster each of the two pipelines goes to every node holding one of its keys at
    # once: two waves, at most one round trip per node in each.
    nodes = len(client.get_primaries()) if CLUSTER else 1
    assert 2 <= counts.round_trips - before.round_trips <= 2 * nodes
    assert counts.commands - before.commands <= 4 + 6 + GONE_SHARDS  # nobody is pulled here
    assert FANOUT_SHARDS == 4
