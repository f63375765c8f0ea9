"""Expiry: reads stop at ``expires_at`` whatever Redis still holds, every key has a TTL, and
the sweeper (claimed atomically, several processes at once) removes keys and files."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from server.clock import ManualClock
from server.graph.store import Graph
from server.store import Keys
from server.valkey import EmbeddedValkey
from stories.store import StoryStore
from tests.stories import samples
from tests.stories.conftest import (
    Clients,
    follow,
    media_files,
    path_of,
    publish,
    story_data_keys,
    upload,
)
from tests.support import LiveServer, raw_redis, wait_for


def swept_total() -> float:
    return REGISTRY.get_sample_value("ephemera_stories_swept_total") or 0.0


async def test_every_story_key_has_a_ttl(
    clients: Clients, server: LiveServer, redis: Redis
) -> None:
    await follow(clients, "bob", "ann")
    story = (await upload(clients("ann"), samples.jpeg())).json()
    sid = story["id"]
    await clients("bob").post(f"/v1/stories/{sid}/seen")
    await clients("bob").post(f"/v1/stories/{sid}/replies", json={"text": "hi"})
    expires = time.time() + server.settings.story_ttl_seconds
    grace = server.settings.story_grace_seconds
    keys = [k for k in await story_data_keys(redis, server) if not k.endswith("st:due")]
    # story, viewers, items, author index and meta, inbox, one item, the viewer's seen set
    assert len(keys) == 8
    for key in keys:
        expire_at = await redis.expiretime(key)
        assert expire_at > 0, key
        assert abs(expire_at - (math.ceil(expires) + grace)) <= 5, key


async def test_nothing_is_reachable_after_expiry(
    make_server: Callable[..., LiveServer], clients: Clients, redis: Redis
) -> None:
    # A long grace and no sweeping: the keys are still in Redis, so only the read-side
    # filter on expires_at can be what hides the story.
    srv = make_server(story_ttl_seconds=2, story_grace_seconds=3600, sweep_interval_seconds=3600)
    await follow(clients, "bob", "ann", srv)
    text = await publish(clients, "ann", "brief", srv=srv)
    photo = (await upload(clients("ann", srv), samples.jpeg())).json()
    bob = clients("bob", srv)
    await bob.post(f"/v1/stories/{text['id']}/replies", json={"text": "quick"})
    await bob.post(f"/v1/stories/{photo['id']}/seen")
    media_url = path_of(photo["media"]["url"])
    assert (await bob.get(media_url)).status_code == 200
    assert len((await bob.get("/v1/stories/tray")).json()["entries"]) == 1

    async def expired() -> bool:
        return (await bob.get(f"/v1/stories/{photo['id']}")).status_code == 404

    await wait_for(expired, within=15, interval=0.1)
    assert await redis.exists(srv.settings.key_prefix + "st:{" + photo["id"] + "}") == 1

    ann = clients("ann", srv)
    for user in (ann, bob):
        for sid in (text["id"], photo["id"]):
            r = await user.get(f"/v1/stories/{sid}")
            assert r.status_code == 404 and r.json()["error"]["code"] == "story_not_found"
        assert (await user.get("/v1/users/ann/stories")).json() == {"stories": []}
        assert (await user.get("/v1/stories/tray")).json() == {"entries": []}
        assert (await user.get(media_url)).status_code == 404
    assert (await ann.get(f"/v1/stories/{photo['id']}/viewers")).status_code == 404
    assert (await ann.get("/v1/stories/inbox")).json()["items"] == []
    assert (await bob.post(f"/v1/stories/{text['id']}/seen")).status_code == 404
    r = await bob.post(f"/v1/stories/{text['id']}/reactions", json={"emoji": "🔥"})
    assert r.status_code == 404
    assert (await ann.delete(f"/v1/stories/{photo['id']}")).status_code == 404
    # Expired stories no longer count against the author's limit.
    await publish(clients, "ann", "next", srv=srv)


async def test_sweeper_removes_keys_and_files(
    make_server: Callable[..., LiveServer], clients: Clients, redis: Redis
) -> None:
    srv = make_server(story_ttl_seconds=1, story_grace_seconds=3600, sweep_interval_seconds=0.1)
    await follow(clients, "bob", "ann", srv)
    photo = (await upload(clients("ann", srv), samples.jpeg())).json()
    video = (await upload(clients("ann", srv), samples.video(1.0), "v.mp4", "video/mp4")).json()
    await clients("bob", srv).post(f"/v1/stories/{photo['id']}/seen")
    await clients("bob", srv).post(f"/v1/stories/{video['id']}/replies", json={"text": "wow"})
    assert len(media_files(srv)) == 4

    async def swept() -> bool:
        return not media_files(srv) and not await story_data_keys(redis, srv)

    await wait_for(swept, within=20, interval=0.1)
    r = await clients("bob", srv).get(path_of(video["media"]["url"]))
    assert r.status_code == 404


async def test_two_processes_sweep_each_story_once(
    make_server: Callable[..., LiveServer], clients: Clients, redis: Redis
) -> None:
    # Two servers on one Redis and one data directory, both sweeping all the time.
    settings = {"story_ttl_seconds": 1, "story_grace_seconds": 3600, "sweep_interval_seconds": 0.02}
    first, second = make_server(**settings), make_server(**settings)
    before = swept_total()
    n = 0
    for i, srv in enumerate([first, second] * 6):
        await upload(clients(f"author{i % 4}", srv), samples.jpeg(colour="blue"))
        await publish(clients, f"author{i % 4}", "text", srv=srv)
        n += 2

    async def swept() -> bool:
        return not media_files(first) and not await story_data_keys(redis, first)

    await wait_for(swept, within=20, interval=0.1)
    await asyncio.sleep(0.3)  # a double purge would show up as extra counts by now
    assert swept_total() - before == n


async def test_claims_are_exclusive_and_leased(redis: Redis, valkey: EmbeddedValkey) -> None:
    prefix = f"claim{time.time_ns()}:"
    other = raw_redis(valkey.url)
    clock = ManualClock()
    a = StoryStore(redis, Keys(prefix), 60, Graph(redis, Keys(prefix), clock), clock)
    b = StoryStore(other, Keys(prefix), 60, Graph(other, Keys(prefix), clock), clock)
    now = clock.now()
    ids = [f"{i:016d}" for i in range(300)]
    for sid in ids:
        await a.mark_due(sid, now - 1)
    await a.mark_due("future0000000000", now + 3600)

    async def drain(store: StoryStore) -> list[str]:
        got: list[str] = []
        while batch := await store.claim_due(lease_seconds=60, batch=7):
            got += batch
            await asyncio.sleep(0)
        return got

    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    assert not set(got_a) & set(got_b)
    assert sorted(got_a + got_b) == ids
    assert got_a and got_b  # both took part
    # A process that claimed and died: after its lease, the stories are claimable again.
    clock.advance(30)
    assert await a.claim_due(60, 1000) == []
    clock.advance(31)
    again = await b.claim_due(60, 1000)
    assert sorted(again) == ids
    await other.aclose()
    await redis.delete(prefix + "st:due")


async def test_media_url_after_expiry_is_404(
    make_server: Callable[..., LiveServer], clients: Clients
) -> None:
    # Long enough for the upload and the first read on a busy machine (or a cluster).
    srv = make_server(story_ttl_seconds=3, sweep_interval_seconds=3600)
    photo = (await upload(clients("ann", srv), samples.jpeg())).json()
    async with srv.client() as public:
        url = path_of(photo["media"]["url"])
        assert (await public.get(url)).status_code == 200

        async def gone() -> bool:
            return (await public.get(url)).status_code == 404

        await wait_for(gone, within=15, interval=0.1)
        assert (await public.get(url)).json()["error"]["code"] == "media_not_found"
