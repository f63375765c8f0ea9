"""Prometheus metrics and request ids."""

from __future__ import annotations

import httpx

from tests.support import LiveServer


async def test_metrics_count_requests_and_expose_relay_counters(
    server: LiveServer, anon: httpx.AsyncClient
) -> None:
    async with server.client("alice") as c:
        await c.get("/v1/me")
    text = (await anon.get("/metrics")).text
    assert 'ephemera_http_requests_total{method="GET",route="/v1/me",status="200"}' in text
    assert "ephemera_http_request_seconds_bucket" in text
    for name in (
        "ephemera_redis_up",
        "ephemera_redis_errors_total",
        "ephemera_live_rooms",
        "ephemera_room_connections",
        "ephemera_relay_forwarded_packets_total",
        "ephemera_relay_dropped_packets_total",
    ):
        assert name in text


async def test_request_id_is_echoed_or_generated(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/healthz", headers={"X-Request-Id": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    generated = (await anon.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32 and generated != "abc123"
