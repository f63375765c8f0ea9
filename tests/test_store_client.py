"""The app's Redis client on the session's Valkey (one node, or the cluster on the cluster
pass): an open circuit and a spent request budget are outages (503), never other errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from server.settings import Settings
from server.store import REDIS_DOWN, CircuitOpen, circuit, connect, request_budget


async def test_an_open_circuit_refuses_at_once(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    assert settings.redis_url is not None
    redis = connect(settings.redis_url, settings)
    try:
        await redis.set(settings.key_prefix + "k", "v")
        circuit(redis).open = True
        with pytest.raises(CircuitOpen):
            await redis.get(settings.key_prefix + "k")
        circuit(redis).open = False
        assert await redis.get(settings.key_prefix + "k") == "v"
    finally:
        await redis.aclose()


async def test_a_spent_budget_is_an_outage(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    assert settings.redis_url is not None
    redis = connect(settings.redis_url, settings)
    try:
        await redis.ping()
        with request_budget(0.0), pytest.raises(REDIS_DOWN):
            async with redis.pipeline(transaction=False) as p:
                p.get(settings.key_prefix + "a")
                p.get(settings.key_prefix + "b")
                await p.execute()
    finally:
        await redis.aclose()
