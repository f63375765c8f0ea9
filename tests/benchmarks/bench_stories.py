"""Stories benchmark: the tray against healthz, Redis per tray read, publishing to 100,000
followers, and Redis memory per story, follow edge and tray entry.

Setup: one viewer following 1,000 authors, 200 of whom have 300 live stories between them
(mixed audiences: 175 of those authors are visible to the viewer; a third of the stories
already seen). The server runs in its own process (``ServerProcess``); load comes from a
third process (``tests/benchmarks/loadgen.py``: closed loop, fixed concurrency and
duration). Every figure is also given as a ratio to ``GET /healthz`` of the same server in
the same run, so machines can be compared.

Redis round trips and commands per tray read are counted by a connection class
(``tests/stories/redis_probe.py``: ``send_packed_command`` is one round trip, ``pack_command``
runs once per command, pipelines included) around the same ``TrayIndex.read`` the endpoint
runs. The read path runs no Lua, so the commands sent are the commands Redis runs.

Publishing to 100,000 followers: an author whose followers are written straight into the
graph publishes over HTTP; the time to the 201, then until the fan-out streams are empty
(every batch written and acknowledged by the server's consumers), are measured.

Memory: ``MEMORY USAGE`` (exact, SAMPLES 0) of the keys each thing uses, on the embedded
Valkey: the capacity plan in docs/stories.md is written from these figures.

Run: ``.venv/bin/ephemera bench --only stories`` (about a minute).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from redis.asyncio import Redis

from server.clock import SystemClock
from server.graph.store import Graph
from server.settings import Settings
from server.store import Keys
from stories.rules import TrayRef
from stories.store import StoryStore
from stories.trays import TrayIndex
from tests.stories.redis_probe import Counts, counting_redis, wait_fanned_out
from tests.support import ServerProcess, auth, settings_env

ROOT = Path(__file__).resolve().parent.parent.parent
AUTHORS = 1000
WITH_STORIES = 200
STORIES = 300
VIEWER = "viewer"
CONCURRENCY = 8
SECONDS = 1.5
ROUNDS = 3
STAR_FOLLOWERS = 100_000


def loadgen(
    base_url: str, requests: list[dict[str, Any]], seconds: float = SECONDS
) -> dict[str, Any]:
    spec = {
        "base_url": base_url,
        "concurrency": CONCURRENCY,
        "seconds": seconds,
        "requests": requests,
    }
    out = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.loadgen", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, base_url: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """A load run, with the server's CPU time per request (``cpu_ms``): unlike throughput,
    it does not depend on whether the load generator or the machine is the limit."""
    before = cpu_seconds(pid)
    result = loadgen(base_url, requests)
    result["cpu_ms"] = (cpu_seconds(pid) - before) * 1000 / max(1, result["requests"])
    return result


async def seed(base_url: str, redis: Redis, prefix: str) -> int:
    """Follows and close friends straight into the graph; stories through the real API."""
    graph = Graph(redis, Keys(prefix), SystemClock())
    authors = [f"a{i:04d}" for i in range(AUTHORS)]
    for author in authors:
        await graph.follow(VIEWER, author)
    # Close-friends stories go to authors k % 4 == 3; the viewer is a close friend of half.
    close = {a for k, a in enumerate(authors) if k % 8 == 3}
    for author in close:
        await graph.add_close_friend(author, VIEWER)
    plan = [authors[i % WITH_STORIES] for i in range(STORIES)]
    audiences = ["followers", "followers", "public", "close_friends"]
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one(i: int, author: str) -> None:
            async with sem:
                body = {"text": f"story {i}", "audience": audiences[i % 4]}
                r = await client.post("/v1/stories", json=body, headers=auth(author))
                assert r.status_code == 201, r.text
                visible = audiences[i % 4] != "close_friends" or author in close
                if visible and i % 3 == 0:
                    sid = r.json()["id"]
                    r = await client.post(f"/v1/stories/{sid}/seen", headers=auth(VIEWER))
                    assert r.status_code == 204, r.text

        await asyncio.gather(*(one(i, a) for i, a in enumerate(plan)))
        await wait_fanned_out(redis, prefix, within=60)
        tray = (await client.get("/v1/stories/tray", headers=auth(VIEWER))).json()["entries"]
    return len(tray)


def tray_index(redis: Redis, settings: Settings) -> TrayIndex:
    keys = Keys(settings.key_prefix)
    clock = SystemClock()
    graph = Graph(redis, keys, clock)
    store = StoryStore(redis, keys, settings.story_grace_seconds, graph, clock)
    return TrayIndex(store, settings.stories_tray_pull_max)


async def tray_cost(settings: Settings, entries: int) -> tuple[int, int]:
    """Round trips and commands of one tray read, counted on the client."""
    assert settings.redis_url is not None
    counts = Counts()
    redis = counting_redis(settings.redis_url, counts)
    try:
        trays = tray_index(redis, settings)
        await trays.read(VIEWER)  # connect first: the handshake is not the read's
        before = Counts(counts.round_trips, counts.commands)
        read = await trays.read(VIEWER)
    finally:
        await redis.aclose()
    assert len(read.entries) == entries and counts.round_trips - before.round_trips == 2
    return counts.round_trips - before.round_trips, counts.commands - before.commands


async def seed_followers(redis: Redis, prefix: str, author: str, n: int) -> None:
    """``n`` followers of ``author``, written straight into the graph (both directions)."""
    graph = Graph(redis, Keys(prefix), SystemClock())
    now = time.time()
    for start in range(0, n, 5000):
        names = [f"f{i:06d}" for i in range(start, min(n, start + 5000))]
        async with redis.pipeline(transaction=False) as p:
            p.zadd(graph.followers_key(author), {u: now for u in names})
            for u in names:
                p.zadd(graph.following_key(u), {author: now})
            await p.execute()


async def publish_to_followers(base_url: str, redis: Redis, prefix: str) -> tuple[float, float]:
    """Time to the 201, and until the fan-out is done, for an author with STAR_FOLLOWERS."""
    await seed_followers(redis, prefix, "star", STAR_FOLLOWERS)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        start = time.perf_counter()
        r = await client.post("/v1/stories", json={"text": "hello all"}, headers=auth("star"))
        returned = time.perf_counter() - start
        assert r.status_code == 201, r.text
    await wait_fanned_out(redis, prefix, within=600)
    done = time.perf_counter() - start
    sample = [f"f{i:06d}" for i in range(0, STAR_FOLLOWERS, 997)]
    async with redis.pipeline(transaction=False) as p:
        for u in sample:
            p.zcard(f"{prefix}st:tray:{{{u}}}")
        assert await p.execute() == [1] * len(sample)  # every sampled follower has it
    return returned * 1000, done


async def usage(redis: Redis, keys: list[str]) -> int:
    async with redis.pipeline(transaction=False) as p:
        for key in keys:
            p.memory_usage(key, samples=0)
        return sum(int(n or 0) for n in await p.execute())


async def memory_figures(redis: Redis, settings: Settings) -> dict[str, float]:
    """Bytes per story, per follow edge and per tray entry, from MEMORY USAGE."""
    prefix = settings.key_prefix
    stories = [k async for k in redis.scan_iter(match=prefix + "st:{*}", count=1000)]
    stories = [k for k in stories if k.endswith("}")]
    authors = [f"a{i:04d}" for i in range(WITH_STORIES)]
    indexes = [f"{prefix}st:{kind}:{{{a}}}" for a in authors for kind in ("by", "meta")]
    due = await usage(redis, [prefix + "st:due"]) / max(1, await redis.zcard(prefix + "st:due"))
    per_story = (await usage(redis, stories) + await usage(redis, indexes)) / len(stories) + due
    graph = Graph(redis, Keys(prefix), SystemClock())
    big = await usage(redis, [graph.followers_key("star")]) / STAR_FOLLOWERS
    small = await usage(redis, [graph.following_key("f000000")])  # a one-edge list
    following = await usage(redis, [graph.following_key(VIEWER)]) / AUTHORS
    for author in [f"a{i:04d}" for i in range(100)]:  # a list Valkey keeps compact (listpack)
        await graph.follow("edge-probe", author)
    compact = await usage(redis, [graph.following_key("edge-probe")]) / 100
    trays = tray_index(redis, settings)
    viewer_tray = prefix + f"st:tray:{{{VIEWER}}}"
    seen = trays.store.seen_key(VIEWER)
    return {
        "seen": await usage(redis, [seen]) / max(1, await redis.zcard(seen)),
        "seen_refs": await redis.zcard(seen),
        "story": per_story,
        "edge_big": big,
        "edge_mid": following,
        "edge_compact": compact,
        "edge_key": small,
        "tray_viewer_refs": await redis.zcard(viewer_tray),
        "tray_viewer": await usage(redis, [viewer_tray]) / max(1, await redis.zcard(viewer_tray)),
        "tray_small": await tray_entry_bytes(redis, trays, 100),
        "tray_key": await usage(redis, [prefix + "st:tray:{f000000}"]),
    }


async def tray_entry_bytes(redis: Redis, trays: TrayIndex, n: int) -> float:
    """Bytes per ref in a tray index of ``n`` refs, written the production way."""
    now = time.time()
    refs = [TrayRef(f"author{i:04d}", f"{i:016d}", now, now + 86400, "followers") for i in range(n)]
    async with redis.pipeline(transaction=False) as p:
        await trays.queue_add(p, "memory-probe", refs, "")
        await p.execute()
    key = trays.store.tray_key("memory-probe")
    return await usage(redis, [key]) / n


def photo_bytes() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((1080, 1920), 40).convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


async def photo_publish_latency(base_url: str, n: int = 12) -> list[float]:
    data = photo_bytes()
    times: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for i in range(n):
            start = time.perf_counter()
            r = await client.post(
                "/v1/stories/media",
                files={"file": ("p.jpg", data, "image/jpeg")},
                headers=auth(f"photographer{i}"),
            )
            times.append(time.perf_counter() - start)
            assert r.status_code == 201, r.text
    return times


async def sequential_ms(base_url: str, path: str, user: str, n: int = 30) -> float:
    """Median latency of one request at a time: the server's cost per request, unqueued."""
    times: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for _ in range(n):
            start = time.perf_counter()
            r = await client.get(path, headers=auth(user))
            times.append(time.perf_counter() - start)
            assert r.status_code == 200
    return statistics.median(times) * 1000


def summary(name: str, runs: list[dict[str, Any]], bases: list[dict[str, Any]]) -> str:
    """Medians over the rounds; each ratio is taken against the baseline of its own round."""

    def med(key: str, ratio: bool) -> float:
        return statistics.median(
            r[key] / b[key] if ratio else r[key] for r, b in zip(runs, bases, strict=True)
        )

    errors = sum(sum(r["errors"].values()) for r in runs)
    return (
        f"  {name:<24} {med('rps', False):>6.0f} req/s ({med('rps', True):.3f}x healthz)  "
        f"p50 {med('p50_ms', False):>6.1f} ms ({med('p50_ms', True):.1f}x)  "
        f"p99 {med('p99_ms', False):>6.1f} ms ({med('p99_ms', True):.1f}x)  errors {errors}"
    )


@pytest.mark.bench
async def test_stories_benchmark(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        rate_publish="10000000/hour",
        max_active_stories=100_000,
        log_level="WARNING",
    )
    server = ServerProcess(settings_env(settings)).start()
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        t0 = time.perf_counter()
        entries = await seed(server.url, redis, settings.key_prefix)
        seed_s = time.perf_counter() - t0
        assert entries == WITH_STORIES - WITH_STORIES // 8  # the rest only for close friends
        round_trips, commands = await tray_cost(settings, entries)

        # Rounds of baseline, tray and publish back to back: on a shared machine the load
        # from elsewhere drifts, so each ratio compares runs a few seconds apart.
        healthz = [{"method": "GET", "path": "/healthz", "user": "x"}]
        tray_req = [{"method": "GET", "path": "/v1/stories/tray", "user": VIEWER}]
        publishers = [
            {"method": "POST", "path": "/v1/stories", "json": {"text": "b"}, "user": f"p{i:03d}"}
            for i in range(200)
        ]
        assert server.proc is not None
        pid = server.proc.pid
        health, trays, publish = [], [], []
        for _ in range(ROUNDS):
            health.append(measured(pid, server.url, healthz))
            trays.append(measured(pid, server.url, tray_req))
            publish.append(measured(pid, server.url, publishers))
        seq_health = await sequential_ms(server.url, "/healthz", "x")
        seq_tray = await sequential_ms(server.url, "/v1/stories/tray", VIEWER)
        photos = await photo_publish_latency(server.url)
        star_ms, star_s = await publish_to_followers(server.url, redis, settings.key_prefix)
        memory = await memory_figures(redis, settings)
    finally:
        await redis.aclose()
        server.stop()

    print()
    print(
        f"stories benchmark: viewer follows {AUTHORS} authors, {WITH_STORIES} with "
        f"{STORIES} live stories (seeded in {seed_s:.1f} s); {CONCURRENCY} concurrent clients "
        f"from a separate process, {ROUNDS} rounds of {SECONDS:g} s, medians"
    )
    print(summary("GET /healthz (baseline)", health, health))
    print(summary("GET /v1/stories/tray", trays, health))
    print(summary("POST /v1/stories (text)", publish, health))
    cpu = {
        name: statistics.median(r["cpu_ms"] for r in runs)
        for name, runs in [("healthz", health), ("tray", trays), ("publish", publish)]
    }
    print(
        f"  server CPU per request: healthz {cpu['healthz']:.2f} ms, tray {cpu['tray']:.2f} ms "
        f"(healthz/tray {cpu['healthz'] / cpu['tray']:.2f}: the tray's throughput ratio with "
        f"the server's core to itself), text publish {cpu['publish']:.2f} ms"
    )
    print(
        f"  one request at a time: tray {seq_tray:.1f} ms, healthz {seq_health:.1f} ms "
        f"({seq_tray / seq_health:.1f}x)"
    )
    p50 = statistics.median(photos) * 1000
    print(
        f"  POST /v1/stories/media 1080x1920 JPEG, one at a time: p50 {p50:.0f} ms "
        f"({p50 / seq_health:.0f}x healthz), max {max(photos) * 1000:.0f} ms"
    )
    m = memory
    print(
        f"  Redis memory: story {m['story']:.0f} B (hash + author indexes + due entry); "
        f"follow edge, per side: {m['edge_big']:.0f} B in a {STAR_FOLLOWERS}-member list, "
        f"{m['edge_mid']:.0f} B in a {AUTHORS}-member list, {m['edge_compact']:.0f} B in a "
        f"100-member list, {m['edge_key']:.0f} B as a "
        f"one-member list; tray entry {m['tray_small']:.0f} B (index of 100), "
        f"{m['tray_viewer']:.0f} B (index of {m['tray_viewer_refs']:.0f}), "
        f"{m['tray_key']:.0f} B as a one-entry index; seen mark {m['seen']:.0f} B "
        f"(set of {m['seen_refs']:.0f})"
    )
    ratio = statistics.median(t["rps"] / h["rps"] for t, h in zip(trays, health, strict=True))
    print(
        f"stories summary: tray {ratio:.2f}x healthz, {round_trips} round trips, "
        f"{commands} commands per read"
    )
    print(
        f"stories summary: publish to {STAR_FOLLOWERS} followers returns in {star_ms:.0f} ms, "
        f"fan-out done in {star_s:.1f} s"
    )
    for runs in (health, trays, publish):
        assert not any(r["errors"] for r in runs)
