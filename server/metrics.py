"""Prometheus metrics. Process-wide by nature, so module-level like prometheus_client intends.

Under ``ephemera serve --workers N`` (``server.workers``) every worker writes its metrics in
a folder the supervisor shares (``PROMETHEUS_MULTIPROC_DIR``), so ``/metrics``, whichever
worker answers, counts them all.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

REQUESTS = Counter("ephemera_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "ephemera_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REDIS_ERRORS = Counter("ephemera_redis_errors_total", "Requests that failed because Redis was down")
REDIS_UP = Gauge(
    "ephemera_redis_up",
    "1 when the Redis watchdog last reached Redis (every worker's)",
    multiprocess_mode="livemin",
)
LIVE_ROOMS = Gauge(
    "ephemera_live_rooms",
    "Rooms with at least one local connection (summed over workers)",
    multiprocess_mode="livesum",
)
PARTICIPANTS = Gauge(
    "ephemera_room_connections",
    "Room WebSocket connections on this process (all workers)",
    multiprocess_mode="livesum",
)
ROOM_FRAMES = Counter(
    "ephemera_room_frames_total",
    "Room socket messages encoded into a frame: once per event per process, however many sockets",
)
WS_MESSAGES = Counter("ephemera_ws_messages_total", "Room WebSocket messages received", ["type"])
FORWARDED_PACKETS = Counter("ephemera_relay_forwarded_packets_total", "Audio packets forwarded")
DROPPED_PACKETS = Counter(
    "ephemera_relay_dropped_packets_total", "Audio packets dropped for slow listeners or mutes"
)


async def metrics_endpoint(request: Request) -> Response:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, folder)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
