"""What every HTTP request goes through: request id, access log, metrics and Redis budget;
the answers for errors; health endpoints; the web client's static mount."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import metrics
from server.errors import DomainError, ServiceUnavailable
from server.http_errors import error_body, error_response
from server.store import REDIS_DOWN, request_budget

log = structlog.get_logger(__name__)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await request.state.platform.redis.ping()  # within the request's Redis budget
    except REDIS_DOWN:
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


def exception_handlers() -> dict[Any, Any]:
    handlers: dict[Any, Any] = {
        DomainError: on_domain_error,
        HTTPException: on_http_error,
        Exception: on_unexpected,
    }
    for exc_type in REDIS_DOWN:
        handlers[exc_type] = on_redis_down
    return handlers
