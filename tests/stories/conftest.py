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

from server.valkey import EmbeddedValkey
from tests.support import LiveServer, raw_redis

Clients = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def clients(server: LiveServer) -> AsyncIterator[Clients]:
    """``clients("ann")`` -> a client of the default server authenticated as ann;
    ``clients("ann", other_server)`` for a server made with ``make_server``."""
    made: dict[tuple[int, str], httpx.AsyncClient] = {}

    def get(user: str, srv: LiveServer | None = None) -> httpx.AsyncClient:
        srv = srv or server
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


async def story_keys(redis: Redis, srv: LiveServer) -> list[str]:
    """Every stories key of this server's prefix (graph and rate-limit keys excluded)."""
    return sorted([k async for k in redis.scan_iter(match=srv.settings.key_prefix + "st:*")])


async def story_data_keys(redis: Redis, srv: LiveServer) -> list[str]:
    """Keys holding anything about a story. Left out: user settings (mutes, hide lists) and
    ``st:active``, which only says an author may have stories (trimmed after expiry)."""
    keys = await story_keys(redis, srv)
    settings = (":mutes:", ":hidden:", ":hidden_from:")
    return [k for k in keys if not any(s in k for s in settings) and not k.endswith(":active")]


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
    r = await clients(author, srv).post("/v1/stories", json={"text": text, **kw})
    assert r.status_code == 201, r.text
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
