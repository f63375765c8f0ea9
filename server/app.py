"""The composition root: settings and features in, app out.

``create_app`` builds the platform (Redis, key names, rate limits, clock, this node) in the
lifespan, starts the features in order (each gets the features it depends on from
``default_features``), and mounts their endpoints next to health, metrics and OpenAPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rooms.feature import RoomsFeature
from rooms.media_feature import MediaFeature
from server import metrics
from server.api import Api, build_routes
from server.clock import SystemClock
from server.errors import DomainError, ServiceUnavailable
from server.feature import Feature
from server.graph.feature import GraphFeature
from server.http_errors import error_body, error_response
from server.logs import configure_logging
from server.nodes import Node
from server.openapi import build_openapi, docs, openapi_endpoint
from server.platform import Platform
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.store import REDIS_DOWN, Keys, RedisHealth, connect
from server.valkey import EmbeddedValkey
from server.webclient import static_dir
from stories.feature import StoriesFeature

log = structlog.get_logger(__name__)
VERSION = "0.1.0"


def default_features() -> list[Feature]:
    """Every feature, each handed the ones it depends on (and started after them)."""
    graph = GraphFeature()
    media = MediaFeature()
    return [graph, StoriesFeature(graph), media, RoomsFeature(graph, media)]


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await asyncio.wait_for(request.state.platform.redis.ping(), timeout=1.0)
    except (TimeoutError, *REDIS_DOWN):
        return error_response(ServiceUnavailable("redis is not answering"))
    return JSONResponse({"status": "ready"})


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return error_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    body = error_body(code, str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("http.unhandled", exc_info=exc)
    return JSONResponse(error_body("internal", "internal server error"), status_code=500)


async def on_redis_down(request: Request, exc: Exception) -> Response:
    metrics.REDIS_ERRORS.inc()
    log.warning("redis.unavailable", error=repr(exc))
    retry = request.state.platform.settings.redis_retry_after
    return error_response(ServiceUnavailable(retry_after=retry))


class StaticMount(Mount):
    """The web client at ``/``, never shadowing the API: a request for ``/v1/...`` or with a
    method other than GET/HEAD falls through to the API routes (correct 404/405 + Allow)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and (
            scope["path"].startswith("/v1/") or scope["method"] not in ("GET", "HEAD")
        ):
            return Match.NONE, {}
        return super().matches(scope)


class RequestContext:
    """Request id, access log and HTTP metrics for every HTTP request (pure ASGI: no buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=rid)
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - start
            metrics.REQUESTS.labels(scope["method"], name, str(status)).inc()
            metrics.LATENCY.labels(scope["method"], name).observe(elapsed)
            log.info(
                "http",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")


async def watch_redis(redis: Redis, health: RedisHealth) -> None:
    """Ping Redis every second; log outages and recoveries with backoff while down.

    redis-py reconnects by itself on the next command; this task makes the state visible
    (logs, the ephemera_redis_up gauge) and keeps probing so recovery is noticed promptly.
    """
    delay = 1.0
    while True:
        try:
            await asyncio.wait_for(redis.ping(), timeout=1.0)
            if not health.up:
                log.info("redis.recovered")
            health.up, delay = True, 1.0
        except (TimeoutError, *REDIS_DOWN) as exc:
            if health.up:
                log.error("redis.down", error=repr(exc))
            health.up = False
            delay = min(delay * 2, 2.0)
        metrics.REDIS_UP.set(1 if health.up else 0)
        await asyncio.sleep(delay)


@contextlib.asynccontextmanager
async def run_platform(settings: Settings) -> AsyncIterator[Platform]:
    """Redis (the embedded Valkey when no URL is set), its watchdog, and this node."""
    embedded: EmbeddedValkey | None = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedValkey(settings.data_dir / "valkey")
        await asyncio.to_thread(embedded.start)
        url = embedded.url
    redis = connect(url, settings)
    platform = Platform(
        settings=settings,
        redis=redis,
        keys=Keys(settings.key_prefix),
        limiter=RateLimiter(redis, settings.key_prefix),
        clock=SystemClock(),
        node=Node.for_process(settings),
        health=RedisHealth(),
    )
    watchdog = asyncio.create_task(watch_redis(redis, platform.health), name="redis-watchdog")
    try:
        yield platform
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        await redis.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def build_routes_for(
    feats: Sequence[Feature], apis: list[Api], schema: dict[str, Any]
) -> list[Any]:
    routes: list[Any] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics.metrics_endpoint),
        Route("/openapi.json", openapi_endpoint(schema)),
        Route("/docs", docs),
    ]
    routes.extend(build_routes(apis))
    for feat in feats:
        routes.extend(feat.routes)
    static = static_dir()
    if static is not None:
        routes.append(StaticMount("/", StaticFiles(directory=static, html=True), name="static"))
    return routes


def exception_handlers() -> dict[Any, Any]:
    handlers: dict[Any, Any] = {
        DomainError: on_domain_error,
        HTTPException: on_http_error,
        Exception: on_unexpected,
    }
    for exc_type in REDIS_DOWN:
        handlers[exc_type] = on_redis_down
    return handlers


def create_app(
    settings: Settings | None = None, features: Sequence[Feature] | None = None
) -> Starlette:
    """The app: ``features`` default to ``default_features()``; tests pass their own."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    feats = list(features) if features is not None else default_features()
    apis = [api for f in feats for api in f.apis]
    schema = build_openapi(apis, title="Ephemera", version=VERSION)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with run_platform(settings) as platform, contextlib.AsyncExitStack() as stack:
            state: dict[str, Any] = {"platform": platform}
            for feat in feats:
                state.update(await stack.enter_async_context(feat.lifespan(platform)))
            yield state

    routes = build_routes_for(feats, apis, schema)
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=exception_handlers())
    app.add_middleware(RequestContext)
    app.state.openapi = schema
    return app
