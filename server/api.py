"""Typed HTTP endpoints: one decorator validates input, authenticates, and documents OpenAPI.

A handler is ``async def f(ctx: Ctx, [body: Model], [query: Model], **path_params) -> Model``.
Parameters named ``body`` and ``query`` are validated with their pydantic annotation; the
return annotation is the documented response (``None`` means 204).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.auth import bearer_from_header, verify_token
from server.errors import BadRequest, PayloadTooLarge, ValidationFailed
from server.platform import Platform
from server.ratelimit import RateLimiter
from server.settings import Settings

Handler = Callable[..., Awaitable[Any]]
PATH_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")


@dataclass
class Ctx:
    """What a handler needs: the request, the caller, and the app's platform."""

    request: Request
    user: str

    @property
    def platform(self) -> Platform:
        platform: Platform = self.request.state.platform
        return platform

    @property
    def settings(self) -> Settings:
        return self.platform.settings

    @property
    def limiter(self) -> RateLimiter:
        return self.platform.limiter

    @property
    def now(self) -> float:
        """The platform clock's time (one reading per call)."""
        return self.platform.clock.now()


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tags: list[str]
    status: int
    auth: bool
    body_model: type[BaseModel] | None
    query_model: type[BaseModel] | None
    response_model: type[BaseModel] | None
    request_body: dict[str, Any] | None = None
    responses: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def path_params(self) -> list[str]:
        return PATH_PARAM.findall(self.path)


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def body_interrupted() -> BadRequest:
    """The client went away before its body was complete: its fault, not a server error."""
    return BadRequest("the request body was interrupted", code="body_interrupted")


async def read_capped(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it passes ``limit`` bytes (not after buffering)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"body larger than {limit} bytes")
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise body_interrupted() from None
    return b"".join(chunks)


async def parse_json_body(request: Request, model: type[BaseModel], limit: int) -> BaseModel:
    raw = await read_capped(request, limit)
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise BadRequest("request body is not valid JSON", code="malformed_json") from None
    if data is None:
        raise ValidationFailed("a JSON object body is required")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(format_validation_error(exc)) from None


def authenticate(request: Request) -> str:
    settings = request.state.platform.settings
    token = bearer_from_header(request.headers.get("authorization"))
    return verify_token(settings.secret_key, token, settings.token_leeway_seconds)


class Api:
    """A group of endpoints sharing an OpenAPI tag; ``build_routes`` mounts them."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        auth: bool = True,
        request_body: dict[str, Any] | None = None,
        responses: dict[int, dict[str, Any]] | None = None,
    ) -> Callable[[Handler], Handler]:
        def decorate(fn: Handler) -> Handler:
            hints = get_type_hints(fn)
            ret = hints.get("return")
            response_model = ret if isinstance(ret, type) and issubclass(ret, BaseModel) else None
            doc = inspect.getdoc(fn) or fn.__name__.replace("_", " ")
            self.endpoints.append(
                Endpoint(
                    method=method,
                    path=path,
                    handler=fn,
                    summary=doc.splitlines()[0],
                    tags=[self.tag],
                    status=204 if ret is type(None) else status,
                    auth=auth,
                    body_model=hints.get("body"),
                    query_model=hints.get("query"),
                    response_model=response_model,
                    request_body=request_body,
                    responses=responses or {},
                )
            )
            return fn

        return decorate

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


def build_routes(apis: list[Api]) -> list[Route]:
    """One Route per path, so 405 answers carry an ``Allow`` header listing every method."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for api in apis:
        for ep in api.endpoints:
            by_path.setdefault(ep.path, {})[ep.method] = ep
    routes = []
    for path, eps in by_path.items():
        apps = {method: _endpoint_app(ep) for method, ep in eps.items()}

        async def dispatch(request: Request, apps: dict[str, Any] = apps) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await apps[method](request)

        routes.append(Route(path, dispatch, methods=list(eps)))
    return routes


def _endpoint_app(ep: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def app(request: Request) -> Response:
        user = authenticate(request) if ep.auth else ""
        kwargs: dict[str, Any] = {name: request.path_params[name] for name in ep.path_params}
        if ep.query_model is not None:
            try:
                kwargs["query"] = ep.query_model.model_validate(dict(request.query_params))
            except ValidationError as exc:
                raise ValidationFailed(format_validation_error(exc)) from None
        if ep.body_model is not None:
            limit = request.state.platform.settings.max_body_bytes
            kwargs["body"] = await parse_json_body(request, ep.body_model, limit)
        try:
            result = await ep.handler(Ctx(request=request, user=user), **kwargs)
        except ClientDisconnect:  # a handler reading the body itself (e.g. an upload)
            raise body_interrupted() from None
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status_code=204)
        return JSONResponse(result.model_dump(mode="json"), status_code=ep.status)

    app.__name__ = ep.handler.__name__
    return app
