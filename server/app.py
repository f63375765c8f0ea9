"""The composition root: settings and features in, app out.

``create_app`` starts the platform in the lifespan (Redis or the embedded Valkey, the
watchdog, key names, rate limits, clock, this node and the node registry), then the features in
order, each built with the features it depends on (``default_features``), and mounts their
endpoints next to health, metrics, OpenAPI and the web client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from rooms.control.feature import RoomsFeature
from rooms.media.feature import MediaFeature
from rooms.recording.feature import RecordingFeature
from server import metrics
from server.api import Api, build_routes
from server.background import stop
from server.clock import SystemClock
from server.feature import Feature
from server.graph.feature import GraphFeature
from server.http import RequestContext, StaticMount, exception_handlers, healthz, readyz
from server.logs import configure_logging
from server.nodes import Node, NodeRegistry
from server.openapi import build_openapi, docs, openapi_endpoint
from server.platform import Platform
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.share.feature import ShareFeature
from server.store import Keys, check_server, connect, connect_probe, display_url
from server.valkey import EmbeddedValkey
from server.watchdog import watch_redis
from server.webclient import static_dir
from server.webhooks.feature import WebhooksFeature
from stories.feature import StoriesFeature

log = structlog.get_logger(__name__)
VERSION = "0.1.0"


def default_features() -> list[Feature]:
    """Every feature, each handed the ones it depends on (and started after them)."""
    graph = GraphFeature()
    webhooks = WebhooksFeature()
    stories = StoriesFeature(graph, webhooks)
    media = MediaFeature()
    rooms = RoomsFeature(graph, media, webhooks)
    recording = RecordingFeature(graph, rooms, media, webhooks)
    return [graph, webhooks, stories, media, rooms, recording, ShareFeature(stories, rooms)]


class StartupError(Exception):
    """The app cannot start; the message says why."""


def one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, StartupError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


async def start_platform(settings: Settings, stack: contextlib.AsyncExitStack) -> Platform:
    """Start Redis (or connect to it) and its watchdog; every piece registers its shutdown
    on ``stack`` as soon as it runs."""
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
    interval = settings.redis_watchdog_interval
    watchdog = asyncio.create_task(watch_redis(redis, probe, interval), name="redis-watchdog")
    stack.push_async_callback(stop, watchdog)
    keys = Keys(settings.key_prefix)
    node = Node.for_process(settings)
    nodes = await start_registry(redis, keys, node, settings, stack)
    return Platform(
        settings=settings,
        redis=redis,
        keys=keys,
        limiter=RateLimiter(redis, settings.key_prefix),
        clock=SystemClock(),
        node=node,
        nodes=nodes,
    )


async def start_registry(
    redis: Redis, keys: Keys, node: Node, settings: Settings, stack: contextlib.AsyncExitStack
) -> NodeRegistry:
    """This node in the registry, heartbeating until the app stops (after every feature)."""
    nodes = NodeRegistry(
        redis,
        keys,
        node,
        heartbeat_seconds=settings.node_heartbeat_seconds,
        ttl_seconds=settings.node_ttl_seconds,
    )
    await nodes.start()
    stack.push_async_callback(nodes.stop)
    return nodes


async def start(
    settings: Settings, feats: Sequence[Feature], stack: contextlib.AsyncExitStack
) -> dict[str, Any]:
    """The platform, then every feature in order: the app's lifespan state."""
    platform = await start_platform(settings, stack)
    state: dict[str, Any] = {"platform": platform}
    for feat in feats:
        state.update(await stack.enter_async_context(feat.lifespan(platform)))
    platform.nodes.start_reaping()  # every feature has added its clean-up for dead nodes
    return state


def routes_for(feats: Sequence[Feature], apis: list[Api], schema: dict[str, Any]) -> list[Any]:
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
        # Last: the features' paths (the share feature's pages among them) win over files.
        routes.append(StaticMount("/", StaticFiles(directory=static, html=True), name="static"))
    return routes


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
        async with contextlib.AsyncExitStack() as stack:
            try:
                state = await start(settings, feats, stack)
            except Exception as exc:
                # Everything started so far stops as the stack unwinds; the reason is
                # kept for `ephemera serve`, which exits with it.
                app.state.startup_error = reason = one_line(exc)
                log.error("startup.failed", reason=reason)
                raise
            yield state

    routes = routes_for(feats, apis, schema)
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=exception_handlers())
    app.add_middleware(RequestContext, redis_time=settings.redis_request_timeout)
    app.state.openapi = schema
    return app
