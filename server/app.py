"""The Starlette app factory: settings in, app out; shared clients live in lifespan state."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import graph_api, metrics, pages, wellknown
from server.api import build_routes
from server.errors import ApiError, ServiceUnavailable
from server.feature import AppState, Feature
from server.logs import configure_logging
from server.openapi import build_openapi, docs, openapi_endpoint
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.store import REDIS_DOWN, Keys, connect
from server.valkey import EmbeddedValkey

log = structlog.get_logger(__name__)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
VERSION = "0.1.0"


def features() -> list[Feature]:
    from rooms.feature import feature as rooms_feature
    from rooms.media_feature import feature as media_feature
    from stories.feature import feature as stories_feature

    # Media before rooms: the control plane finds services["media"] when it starts.
    return [stories_feature, media_feature, rooms_feature]


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await asyncio.wait_for(request.state.redis.ping(), timeout=1.0)
    except (TimeoutError, *REDIS_DOWN):
        exc = ServiceUnavailable("redis is not answering")
        return JSONResponse(exc.body(), status_code=503, headers=exc.headers())
    return JSONResponse({"status": "ready"})


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    body = {"error": {"code": code, "message": str(exc.detail)}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("http.unhandled", exc_info=exc)
    body = {"error": {"code": "internal", "message": "internal server error"}}
    return JSONResponse(body, status_code=500)


async def on_redis_down(request: Request, exc: Exception) -> Response:
    metrics.REDIS_ERRORS.inc()
    log.warning("redis.unavailable", error=repr(exc))
    retry = request.state.settings.redis_retry_after
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


async def watch_redis(state: AppState) -> None:
    """Ping Redis every second; log outages and recoveries with backoff while down.

    redis-py reconnects by itself on the next command; this task makes the state visible
    (logs, the ephemera_redis_up gauge) and keeps probing so recovery is noticed promptly.
    """
    delay = 1.0
    while True:
        try:
            await asyncio.wait_for(state.redis.ping(), timeout=1.0)
            if not state.redis_up:
                log.info("redis.recovered")
            state.redis_up, delay = True, 1.0
        except (TimeoutError, *REDIS_DOWN) as exc:
            if state.redis_up:
                log.error("redis.down", error=repr(exc))
            state.redis_up = False
            delay = min(delay * 2, 2.0)
        metrics.REDIS_UP.set(1 if state.redis_up else 0)
        await asyncio.sleep(delay)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    feats = features()
    apis = [graph_api.api, pages.api] + [api for f in feats for api in f.apis]
    schema = build_openapi(apis, title="Ephemera", version=VERSION)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        embedded: EmbeddedValkey | None = None
        url = settings.redis_url
        if url is None:
            embedded = EmbeddedValkey(settings.data_dir / "valkey")
            await asyncio.to_thread(embedded.start)
            url = embedded.url
        redis = connect(url, settings)
        state = AppState(
            settings=settings,
            redis=redis,
            keys=Keys(settings.key_prefix),
            limiter=RateLimiter(redis, settings.key_prefix),
        )
        watchdog = asyncio.create_task(watch_redis(state))
        try:
            async with contextlib.AsyncExitStack() as stack:
                for feat in feats:
                    if feat.lifespan is not None:
                        await stack.enter_async_context(feat.lifespan(state))
                yield {
                    "app_state": state,
                    "settings": settings,
                    "redis": redis,
                    "keys": state.keys,
                    "limiter": state.limiter,
                    "services": state.services,
                }
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            await redis.aclose()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    routes: list[Any] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics.metrics_endpoint),
        Route("/openapi.json", openapi_endpoint(schema)),
        Route("/docs", docs),
    ]
    routes.extend(build_routes(apis))
    routes.extend(wellknown.routes)
    for feat in feats:
        routes.extend(feat.routes)
    if STATIC_DIR.is_dir():
        # The client's own paths (share links among them) before its files.
        routes.extend(pages.Pages(STATIC_DIR / "index.html").routes())
        routes.append(StaticMount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static"))

    handlers: dict[Any, Any] = {
        ApiError: on_api_error,
        HTTPException: on_http_error,
        Exception: on_unexpected,
    }
    for exc_type in REDIS_DOWN:
        handlers[exc_type] = on_redis_down
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.add_middleware(RequestContext)
    app.state.openapi = schema
    return app
