"""The base: health, tokens, the error model, the social graph, and Redis outages."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import BaseModel

from server.api import Api, Ctx
from server.app import default_features
from server.platform import Platform
from server.settings import Settings
from server.valkey import EmbeddedValkey
from tests.support import ONE_NODE, SECRET, LiveServer, auth, token


async def test_health_and_ready(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/healthz")).json() == {"status": "ok"}
    r = await anon.get("/readyz")
    assert r.status_code == 200
    assert r.headers["x-request-id"]


async def test_openapi_lists_every_route(anon: httpx.AsyncClient, server: LiveServer) -> None:
    spec = (await anon.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/users/{user_id}/follow" in spec["paths"]
    assert "ErrorResponse" in spec["components"]["schemas"]
    assert server.app is not None
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    for route in server.app.routes:
        methods = getattr(route, "methods", None) or set()
        path = getattr(route, "path", "")
        if path.startswith("/v1/"):
            for m in methods - {"HEAD"}:
                assert (m, path.replace(":path", "")) in documented, (m, path)
    assert (await anon.get("/docs")).status_code == 200


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_token"),
        ("Basic abc", "missing_token"),
        ("Bearer not-a-jwt", "invalid_token"),
        (f"Bearer {token('alice', ttl=-120)}", "token_expired"),
        (
            f"Bearer {token('alice', secret='another-secret-of-sufficient-length!!')}",
            "invalid_token",
        ),
        (
            f"Bearer {jwt.encode({'sub': 'alice', 'exp': time.time() + 60}, '', 'none')}",
            "invalid_token",
        ),
        (
            f"Bearer {jwt.encode({'sub': 'alice', 'exp': time.time() + 60}, SECRET, 'HS512')}",
            "invalid_token",
        ),
        (f"Bearer {jwt.encode({'sub': 'alice'}, SECRET, 'HS256')}", "invalid_token"),
    ],
)
async def test_bad_tokens_are_refused(
    anon: httpx.AsyncClient, header: str | None, code: str
) -> None:
    headers = {"Authorization": header} if header else {}
    r = await anon.get("/v1/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == code


async def test_room_scoped_token_is_refused_by_the_http_api(anon: httpx.AsyncClient) -> None:
    scoped = token("alice", room="room1")
    r = await anon.get("/v1/me", headers={"Authorization": f"Bearer {scoped}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "scoped_token"


async def test_token_within_leeway_is_accepted(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/v1/me", headers={"Authorization": f"Bearer {token('alice', ttl=-3)}"})
    assert r.status_code == 200
    assert r.json()["user_id"] == "alice"


async def test_error_shapes(server: LiveServer) -> None:
    async with server.client("alice") as c:
        r = await c.get("/no/such/route")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await c.post("/v1/me")
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        r = await c.get("/v1/users/bob/followers", params={"limit": "many"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
        r = await c.put("/v1/users/al%20ice/follow")
        assert r.status_code == 422
        r = await c.put("/v1/users/alice/follow")
        assert r.status_code == 409 and r.json()["error"]["code"] == "self_reference"


class Echo(BaseModel):
    text: str


echo_api = Api("test")


@echo_api.post("/v1/test-echo")
async def echo(ctx: Ctx, body: Echo) -> Echo:
    """Echo a JSON body (test-only endpoint)."""
    return body


class EchoFeature:
    apis = (echo_api,)
    routes = ()

    @contextlib.asynccontextmanager
    async def lifespan(self, platform: Platform) -> AsyncIterator[dict[str, Any]]:
        yield {}


async def test_oversized_and_malformed_bodies(make_server: Any) -> None:
    srv = make_server(features=lambda: [*default_features(), EchoFeature()], max_body_bytes=1024)
    async with srv.client("alice") as c:
        ok = await c.post("/v1/test-echo", json={"text": "hi"})
        assert ok.status_code == 200 and ok.json() == {"text": "hi"}
        r = await c.post(
            "/v1/test-echo", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
        deep = b"[" * 1000  # deeper than the parser recursion allows, within the body cap
        r = await c.post(
            "/v1/test-echo", content=deep, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
        r = await c.post("/v1/test-echo", json={"text": 5})
        assert r.status_code == 422
        r = await c.post("/v1/test-echo", json=[1, 2])
        assert r.status_code == 422
        r = await c.post("/v1/test-echo", content=b"")
        assert r.status_code == 422
        r = await c.post("/v1/test-echo", json={"text": "x" * 5000})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

        async def chunks() -> Any:
            for _ in range(10):
                yield b"x" * 512

        r = await c.post("/v1/test-echo", content=chunks())  # no Content-Length: streamed cap
        assert r.status_code == 413


async def test_follow_unfollow_lists(server: LiveServer) -> None:
    async with server.client("alice") as a, server.client("bob") as b:
        assert (await a.put("/v1/users/bob/follow")).status_code == 204
        assert (await a.put("/v1/users/bob/follow")).status_code == 204  # idempotent
        assert (await a.put("/v1/users/carol/follow")).status_code == 204
        following = (await a.get("/v1/users/alice/following")).json()
        assert following == {"users": ["carol", "bob"], "next_cursor": None}
        page = (await a.get("/v1/users/alice/following", params={"limit": 1})).json()
        assert page == {"users": ["carol"], "next_cursor": 1}
        assert (await b.get("/v1/users/bob/followers")).json()["users"] == ["alice"]
        me = (await b.get("/v1/me")).json()
        assert me == {"user_id": "bob", "followers": 1, "following": 0}
        rel = (await b.get("/v1/users/alice/relationship")).json()
        assert rel["followed_by"] is True and rel["following"] is False
        assert (await a.delete("/v1/users/bob/follow")).status_code == 204
        assert (await b.get("/v1/users/bob/followers")).json()["users"] == []


async def test_block_breaks_follows_and_prevents_new_ones(server: LiveServer) -> None:
    async with server.client("alice") as a, server.client("bob") as b:
        await a.put("/v1/users/bob/follow")
        await b.put("/v1/users/alice/follow")
        await a.put("/v1/me/close-friends/bob")
        assert (await a.put("/v1/me/blocks/bob")).status_code == 204
        assert (await a.get("/v1/me/blocks")).json()["users"] == ["bob"]
        assert (await a.get("/v1/users/alice/following")).json()["users"] == []
        assert (await b.get("/v1/users/bob/following")).json()["users"] == []
        assert (await a.get("/v1/me/close-friends")).json()["users"] == []
        r = await b.put("/v1/users/alice/follow")
        assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
        assert (await b.get("/v1/users/alice/followers")).status_code == 403
        assert (await a.put("/v1/me/close-friends/bob")).status_code == 403
        await a.delete("/v1/me/blocks/bob")
        assert (await b.put("/v1/users/alice/follow")).status_code == 204


async def test_close_friends(server: LiveServer) -> None:
    async with server.client("alice") as a:
        await a.put("/v1/me/close-friends/bob")
        await a.put("/v1/me/close-friends/carol")
        assert (await a.get("/v1/me/close-friends")).json()["users"] == ["carol", "bob"]
        await a.delete("/v1/me/close-friends/bob")
        assert (await a.get("/v1/me/close-friends")).json()["users"] == ["carol"]


@ONE_NODE
async def test_redis_outage_gives_503_and_recovers(make_server: Any, tmp_path: Path) -> None:
    own = EmbeddedValkey(tmp_path / "own-valkey")
    own.start()
    try:
        srv = make_server(redis_url=own.url)
        async with srv.client("alice") as c:
            assert (await c.put("/v1/users/bob/follow")).status_code == 204
            own.kill()
            started = time.monotonic()
            r = await c.get("/v1/users/alice/following")
            assert r.status_code == 503
            assert time.monotonic() - started < 1.5
            assert r.json()["error"]["code"] == "store_unavailable"
            assert int(r.headers["retry-after"]) >= 1
            assert (await c.get("/readyz")).status_code == 503
            assert (await c.get("/healthz")).status_code == 200
            own.start()
            # Recovery is automatic, and the acknowledged follow survived (AOF).
            for _ in range(100):
                r = await c.get("/v1/users/alice/following")
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code == 200
            assert r.json()["users"] == ["bob"]
            assert (await c.get("/readyz")).status_code == 200
    finally:
        own.stop()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example.invalid:6379/0")
    monkeypatch.setenv("EPHEMERA_MAX_SPEAKERS", "4")
    s = Settings()
    assert s.redis_url == "redis://example.invalid:6379/0"
    assert s.max_speakers == 4


def test_token_cli_mints_a_valid_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from server.cli import cli

    monkeypatch.setenv("EPHEMERA_SECRET_KEY", SECRET)
    result = CliRunner().invoke(cli, ["token", "alice", "--ttl", "60"])
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == 60
    assert CliRunner().invoke(cli, ["token", "bad user"]).exit_code == 2


def test_auth_header_helper() -> None:
    assert auth("x")["Authorization"].startswith("Bearer ")


async def test_rate_limiter_counts_per_identity(server: LiveServer, valkey: EmbeddedValkey) -> None:
    from server.errors import RateLimited
    from server.ratelimit import RateLimiter
    from server.store import connect

    redis = connect(valkey.url, server.settings)
    try:
        limiter = RateLimiter(redis, server.settings.key_prefix)
        for _ in range(3):
            await limiter.hit("3/minute", "test", "alice")
        with pytest.raises(RateLimited) as err:
            await limiter.hit("3/minute", "test", "alice")
        assert 1 <= err.value.retry_after <= 60
        await limiter.hit("3/minute", "test", "bob")  # another identity has its own budget
    finally:
        await redis.aclose()


@ONE_NODE
def test_embedded_valkey_replaces_a_stale_server(tmp_path: Path) -> None:
    """A server left by a crashed run must not keep writing our append-only file."""
    first = EmbeddedValkey(tmp_path / "v")
    first.start()
    second = EmbeddedValkey(tmp_path / "v")
    try:
        second.start()
        assert first.proc is not None
        assert first.proc.wait(timeout=10) == 0  # the stale server was shut down
        assert second._ready()
    finally:
        second.stop()
        first.stop()
