"""Scheduled rooms that are never started are cancelled some time after their start time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rooms.control.hub import channel
from rooms.control.rules import SpeakerPolicy
from rooms.control.store import RoomStore
from server.clock import SystemClock
from server.settings import Settings
from server.store import Keys, connect
from tests.rooms.helpers import create_room, refused
from tests.support import LiveServer, wait_for


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_a_room_not_started_in_time_is_cancelled(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(scheduled_room_expiry_seconds=0.5, room_tick_seconds=0.1)
    async with srv.client("alice") as a:
        overdue = (await create_room(a, title="Never started", scheduled_for=soon(1.5)))["id"]
        later = (await create_room(a, title="Next week", scheduled_for=soon(7 * 86400)))["id"]

        async def cancelled() -> bool:
            return bool((await a.get(f"/v1/rooms/{overdue}")).json()["state"] == "ended")

        await wait_for(cancelled, within=15)
        room = (await a.get(f"/v1/rooms/{overdue}")).json()
        assert room["ended_reason"] == "not_started" and room["ended_at"] is not None
        listed = [r["id"] for r in (await a.get("/v1/rooms?state=scheduled")).json()["rooms"]]
        assert overdue not in listed and later in listed
        assert (await a.get(f"/v1/rooms/{later}")).json()["ended_reason"] is None
        r = await a.post(f"/v1/rooms/{overdue}/start")
        assert r.status_code == 409 and r.json()["error"]["code"] == "room_not_scheduled"
    status, body = await refused(srv.ws_url, overdue, "bob")
    assert status == 409 and body["error"]["code"] == "room_ended"


async def test_a_late_host_may_still_start_within_the_window(server: LiveServer) -> None:
    async with server.client("alice") as a:
        room = (await create_room(a, title="Late", scheduled_for=soon(1)))["id"]
        await asyncio.sleep(1.5)  # past its start time, well within the hour
        r = await a.post(f"/v1/rooms/{room}/start")
        assert r.status_code == 200 and r.json()["state"] == "live", r.text


@pytest.fixture
async def stores(make_settings: Callable[..., Settings]) -> AsyncIterator[list[RoomStore]]:
    settings = make_settings(scheduled_room_expiry_seconds=0)
    assert settings.redis_url is not None
    redis = connect(settings.redis_url, settings)
    # Two processes' stores on one Redis.
    keys = Keys(settings.key_prefix)
    yield [RoomStore(redis, keys, settings, SystemClock()) for _ in range(2)]
    await redis.aclose()


async def test_processes_cancelling_at_once_cancel_each_room_once(
    stores: list[RoomStore],
) -> None:
    first = stores[0]
    policy = SpeakerPolicy.ANYONE_CAN_REQUEST
    metas = [
        await first.create("alice", f"room {i}", "", "en", policy, time.time() + 0.3)
        for i in range(20)
    ]
    pubsub = first.r.pubsub()
    await pubsub.subscribe(*(channel(first.k, m.id) for m in metas))
    await asyncio.sleep(0.5)
    holders = [f"process-{i}" for i in range(6)]
    results = await asyncio.gather(
        *(s.cancel_overdue(h, lease=10) for s, h in zip(stores * 3, holders, strict=True))
    )
    cancelled = [room for result in results for room in result]
    assert sorted(cancelled) == sorted(m.id for m in metas)  # each exactly once
    ended: list[Any] = []
    deadline = time.monotonic() + 5
    while len(ended) < len(metas) and time.monotonic() < deadline:
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if msg is not None:
            ended.append(msg["data"])
    await asyncio.sleep(0.2)
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    assert len(ended) == len(metas)
    assert all('"not_started"' in data for data in ended)
    await pubsub.aclose()
