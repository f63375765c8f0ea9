"""The Starlette app factory: settings in, app out; shared clients live in lifespan state."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import graph_api, metrics
from server.api import build_routes
from server.background import every, stop
from server.errors import ApiError, ServiceUnavailable
from server.feature import AppState, Feature
from server.logs import configure_logging
from server.openapi import build_openapi, docs, openapi_endpoint
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.store import (
    REDIS_DOWN,
    Keys,
    check_server,
    circuit,
    connect,
    connect_probe,
    display_url,
    request_budget,
)
from server.valkey import EmbeddedValkey
from server.webclient import static_dir

log = structlog.get_logger(__name__)
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
        await request.state.redis.ping()  # within the request's Redis budget
    except REDIS_DOWN:
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
    """Request id, access log, HTTP metrics and a Redis time budget for every HTTP request
    (pure ASGI: no buffering)."""

    def __init__(self, app: ASGIApp, redis_time: float) -> None:
        self.app = app
        self.redis_time = redis_time  # each request's total time for Redis (server.store)

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
            with request_budget(self.redis_time):
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


# The watchdog's ping may take this long; the circuit opens on the second failure in a row,
# so a busy event loop delaying one reply does not turn requests away.
PING_TIMEOUT = 1.0
FAILURES_TO_OPEN = 2


async def watch_redis(state: AppState, probe: Redis) -> None:
    """Ping Redis (on a client of its own) every ``redis_watchdog_interval`` seconds.

    While pings fail the app's circuit is open, so requests answer 503 at once instead of
    each waiting out its Redis budget; the first ping that succeeds closes it again
    (redis-py reconnects by itself). Outages and recoveries are logged once and shown by
    the ``ephemera_redis_up`` gauge.
    """
    breaker = circuit(state.redis)
    failures = 0

    async def ping() -> None:
        nonlocal failures
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                await probe.ping()
            if failures:
                log.info("redis.recovered")
            failures = 0
        except (TimeoutError, *REDIS_DOWN) as exc:
            if not failures:
                log.error("redis.down", error=repr(exc))
            failures += 1
        state.redis_up = not failures
        breaker.open = failures >= FAILURES_TO_OPEN
        metrics.REDIS_UP.set(0 if failures else 1)

    await every(state.settings.redis_watchdog_interval, ping, "redis.watchdog")


class StartupError(Exception):
    """The app cannot start; the message says why."""


def one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, StartupError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


async def start(settings: Settings, feats: list[Feature], stack: AsyncExitStack) -> AppState:
    """Start Redis (or connect to it), the watchdog and every feature, in that order; each
    piece registers its shutdown on ``stack`` as soon as it runs."""
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedValkey(settings.data_dir / "valkey")
        await asyncio.to_thread(embedded.start)
        stack.push_async_callback(asyncio.to_thread, embedded.stop)
        url = embedded.url
    redis = connect(url, settings)
    stack.push_async_callback(redis.aclose)
    try:
        await redis.ping()
        await check_server(redis)
    except (RuntimeError, RedisError) as exc:
        raise StartupError(f"Redis at {display_url(url)}: {one_line(exc)}") from exc
    probe = connect_probe(url, settings)
    stack.push_async_callback(probe.aclose)
    state = AppState(
        settings=settings,
        redis=redis,
        keys=Keys(settings.key_prefix),
        limiter=RateLimiter(redis, settings.key_prefix),
    )
    watchdog = asyncio.create_task(watch_redis(state, probe), name="redis-watchdog")
    stack.push_async_callback(stop, watchdog)
    for feat in feats:
        if feat.lifespan is not None:
            await stack.enter_async_context(feat.lifespan(state))
    return state


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    feats = features()
    apis = [graph_api.api] + [api for f in feats for api in f.apis]
    schema = build_openapi(apis, title="Ephemera", version=VERSION)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                state = await start(settings, feats, stack)
            except Exception as exc:
                # Everything started so far stops as the stack unwinds; the reason is
                # kept for `ephemera serve`, which exits with it.
                app.state.startup_error = reason = one_line(exc)
                log.error("startup.failed", reason=reason)
                raise
            yield {
                "app_state": state,
                "settings": settings,
                "redis": state.redis,
                "keys": state.keys,
                "limiter": state.limiter,
                "services": state.services,
            }

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

    handlers: dict[Any, Any] = {
        ApiError: on_api_error,
        HTTPException: on_http_error,
        Exception: on_unexpected,
    }
    for exc_type in REDIS_DOWN:
        handlers[exc_type] = on_redis_down
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.add_middleware(RequestContext, redis_time=settings.redis_request_timeout)
    app.state.openapi = schema
    return app
