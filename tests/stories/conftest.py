"""Fixtures for the stories API tests: clients per user, a raw Redis view, stored files."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from server.clock import Clock
from server.graph.store import Graph
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.store import Keys
from server.valkey import EmbeddedValkey
from stories.fanout import FANOUT_SHARDS, Fanout
from stories.live import LiveTrays
from stories.service import StoriesService
from stories.storage import LocalStorage
from stories.store import StoryStore
from stories.trays import TrayIndex
from tests.stories.redis_probe import wait_fanned_out
from tests.support import LiveServer, raw_redis

Clients = Callable[..., httpx.AsyncClient]
# The server each port belongs to, for helpers handed only a client.
SERVERS: dict[int, LiveServer] = {}


@pytest.fixture
async def clients(server: LiveServer) -> AsyncIterator[Clients]:
    """``clients("ann")`` -> a client of the default server authenticated as ann;
    ``clients("ann", other_server)`` for a server made with ``make_server``."""
    made: dict[tuple[int, str], httpx.AsyncClient] = {}

    def get(user: str, srv: LiveServer | None = None) -> httpx.AsyncClient:
        srv = srv or server
        SERVERS[srv.port] = srv
        key = (srv.port, user)
        if key not in made:
            made[key] = srv.client(user)
        return made[key]

    yield get
    for client in made.values():
        await client.aclose()


@pytest.fixture
async def redis(valkey: EmbeddedValkey) -> AsyncIterator[Redis]:
    r = raw_redis(valkey.url)
    yield r
    await r.aclose()


async def fanned_out(srv: LiveServer, within: float = 10.0) -> None:
    """Wait until every fan-out batch queued so far on ``srv``'s Redis is done."""
    assert srv.settings.redis_url is not None
    redis = raw_redis(srv.settings.redis_url)
    try:
        await wait_fanned_out(redis, srv.settings.key_prefix, within)
    finally:
        await redis.aclose()


async def story_keys(redis: Redis, srv: LiveServer) -> list[str]:
    """Every stories key of this server's prefix (graph and rate-limit keys excluded)."""
    return sorted([k async for k in redis.scan_iter(match=srv.settings.key_prefix + "st:*")])


async def story_data_keys(redis: Redis, srv: LiveServer) -> list[str]:
    """Keys holding anything about a story. Left out: user settings (mutes, hide lists)."""
    keys = await story_keys(redis, srv)
    # Also left out: the fan-out streams (empty when all is done), the tombstones of deleted
    # stories (kept until the story would have expired: trays check them), and viewers'
    # tray indexes and pull sets (refs are trimmed as new ones arrive, and expire by TTL).
    kept = (":mutes:", ":hidden:", ":hidden_from:", ":fanout:", ":gone:", ":tray:", ":pull:")
    return [k for k in keys if not any(s in k for s in kept)]


def media_files(srv: LiveServer) -> list[Path]:
    """The media files on disk now (os.walk, unlike Path.rglob, takes a directory that a
    running sweeper removes mid-walk in its stride)."""
    root = srv.settings.data_dir / "media"
    return sorted(Path(d) / f for d, _, files in os.walk(root) for f in files)


def path_of(url: str) -> str:
    """The path and query of a media URL (relative when public_base_url is not configured)."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


async def follow(
    clients: Clients, follower: str, author: str, srv: LiveServer | None = None
) -> None:
    r = await clients(follower, srv).put(f"/v1/users/{author}/follow")
    assert r.status_code == 204, r.text


async def publish(
    clients: Clients, author: str, text: str = "hello", srv: LiveServer | None = None, **kw: Any
) -> dict[str, Any]:
    """Publish a text story and wait for its fan-out (followers' trays show it)."""
    client = clients(author, srv)
    r = await client.post("/v1/stories", json={"text": text, **kw})
    assert r.status_code == 201, r.text
    await fanned_out(SERVERS[client.base_url.port or 80])
    body: dict[str, Any] = r.json()
    return body


async def upload(
    client: httpx.AsyncClient,
    data: bytes,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    **fields: str,
) -> httpx.Response:
    return await client.post(
        "/v1/stories/media", files={"file": (filename, data, content_type)}, data=fields
    )


def make_service(redis: Redis, settings: Settings, clock: Clock, tmp: Path) -> StoriesService:
    """The service as the feature builds it, without its background tasks: tests run the
    fan-out with ``fan_out``."""
    keys = Keys(settings.key_prefix)
    graph = Graph(redis, keys, clock)
    store = StoryStore(redis, keys, settings.story_grace_seconds, graph, clock)
    trays = TrayIndex(store, settings.stories_tray_pull_max)
    graph.listen(trays)
    fanout = Fanout(trays, settings, consumer="tests")
    live = LiveTrays(redis, store, "tests")
    limiter = RateLimiter(redis, settings.key_prefix)
    return StoriesService(store, fanout, live, LocalStorage(tmp / "media"), settings, limiter)


async def fan_out(svc: StoriesService) -> int:
    """Do every fan-out batch queued so far; returns how many."""
    done = 0
    for shard in range(FANOUT_SHARDS):
        await svc.fanout.create_group(shard)
        done += await svc.fanout.work(shard, block_ms=1)
    return done
