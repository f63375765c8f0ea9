"""Stories benchmark: publish and tray-read throughput/latency, and Redis round trips per tray.

Setup: one viewer following 1,000 authors, 200 of whom have 300 live stories between them
(mixed audiences: 175 of those authors are visible to the viewer; a third of the stories
already seen). The server runs in its own process (``ServerProcess``); load comes from a
third process (``tests/benchmarks/loadgen.py``: closed loop, fixed concurrency and
duration). Every figure is also given as a ratio to ``GET /healthz`` of the same server in
the same run, so machines can be compared.

Redis round trips per tray read are counted by a redis-py connection class that counts
``send_packed_command`` calls (one per command or per pipeline), around the same
``StoryStore.tray`` code the endpoint runs; Redis commands per tray read come from the
server's ``INFO stats`` (``total_commands_processed``) over a run of sequential tray reads.

Run: ``.venv/bin/pytest -m bench tests/benchmarks/bench_stories.py -s`` (about 30 s).
"""

from __future__ import annotations

import asyncio
import io
import json
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
from stories.store import StoryStore
from tests.support import ServerProcess, auth, settings_env

ROOT = Path(__file__).resolve().parent.parent.parent
AUTHORS = 1000
WITH_STORIES = 200
STORIES = 300
VIEWER = "viewer"
CONCURRENCY = 8
SECONDS = 1.5
ROUNDS = 3


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


class RoundTrips:
    """Counts redis-py ``send_packed_command`` calls: one per command or per pipeline."""

    count = 0


def counting_redis(url: str) -> Redis:
    r = Redis.from_url(url, decode_responses=True)
    base = r.connection_pool.connection_class

    class Counting(base):  # type: ignore[valid-type, misc]
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            RoundTrips.count += 1
            await super().send_packed_command(command, check_health)

    r.connection_pool.connection_class = Counting
    return r


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
        tray = (await client.get("/v1/stories/tray", headers=auth(VIEWER))).json()["entries"]
    return len(tray)


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
    redis = counting_redis(settings.redis_url)
    try:
        t0 = time.perf_counter()
        entries = await seed(server.url, redis, settings.key_prefix)
        seed_s = time.perf_counter() - t0
        assert entries == WITH_STORIES - WITH_STORIES // 8  # the rest only for close friends

        # Round trips and commands per tray read.
        store = StoryStore(
            redis,
            Keys(settings.key_prefix),
            settings.story_grace_seconds,
            Graph(redis, Keys(settings.key_prefix), SystemClock()),
            SystemClock(),
        )
        before = RoundTrips.count
        tray, reported = await store.tray(VIEWER)
        counted = RoundTrips.count - before
        assert len(tray) == entries and counted == reported
        reads = 20
        stats = await redis.info("stats")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for _ in range(reads):
                r = await client.get("/v1/stories/tray", headers=auth(VIEWER))
                assert r.status_code == 200
        after = await redis.info("stats")
        commands = (after["total_commands_processed"] - stats["total_commands_processed"]) / reads

        # Rounds of baseline, tray and publish back to back: on a shared machine the load
        # from elsewhere drifts, so each ratio compares runs a few seconds apart.
        healthz = [{"method": "GET", "path": "/healthz", "user": "x"}]
        tray_req = [{"method": "GET", "path": "/v1/stories/tray", "user": VIEWER}]
        publishers = [
            {"method": "POST", "path": "/v1/stories", "json": {"text": "b"}, "user": f"p{i:03d}"}
            for i in range(200)
        ]
        health, trays, publish = [], [], []
        for _ in range(ROUNDS):
            health.append(loadgen(server.url, healthz))
            trays.append(loadgen(server.url, tray_req))
            publish.append(loadgen(server.url, publishers))
        seq_health = await sequential_ms(server.url, "/healthz", "x")
        seq_tray = await sequential_ms(server.url, "/v1/stories/tray", VIEWER)
        photos = await photo_publish_latency(server.url)
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
    print(
        f"  one request at a time: tray {seq_tray:.1f} ms, healthz {seq_health:.1f} ms "
        f"({seq_tray / seq_health:.1f}x)"
    )
    p50 = statistics.median(photos) * 1000
    print(
        f"  POST /v1/stories/media 1080x1920 JPEG, one at a time: p50 {p50:.0f} ms "
        f"({p50 / seq_health:.0f}x healthz), max {max(photos) * 1000:.0f} ms"
    )
    print(
        f"  Redis per tray read: {counted} round trips (counted), "
        f"{commands:.0f} commands (INFO stats over {reads} reads)"
    )
    for runs in (health, trays, publish):
        assert not any(r["errors"] for r in runs)
