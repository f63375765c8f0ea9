"""Delivery survives a receiver that is down, a receiver that hangs, and Valkey killed."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx

from server.valkey import EmbeddedValkey
from tests.rooms.helpers import create_room, join
from tests.support import LiveServer, wait_for
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_delivery import soon

ROOM_LIFE = ["room.scheduled", "room.started", "participant.joined", "room.reminder", "room.ended"]


async def scheduled_life(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> str:
    """room.scheduled, room.started, participant.joined (host), room.reminder, room.ended."""
    rid = (await create_room(alice, scheduled_for=soon()))["id"]
    assert (await bob.put(f"/v1/rooms/{rid}/reminder")).status_code == 200
    assert (await alice.post(f"/v1/rooms/{rid}/start")).status_code == 200
    assert (await alice.post(f"/v1/rooms/{rid}/end")).status_code == 200
    return str(rid)


def by_room(receiver: Receiver) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for r in receiver.first_arrivals():
        if "room_id" in r.data:
            out[r.data["room_id"]].append(r.type)
    return out


async def test_receiver_down_for_10s_then_back(
    hooked: Callable[..., LiveServer], receiver: Receiver
) -> None:
    server = hooked(rate_room_create="1000/hour")
    receiver.stop()
    async with server.client("alice") as alice, server.client("bob") as bob:
        rooms = [await scheduled_life(alice, bob) for _ in range(6)]
        await asyncio.sleep(10)  # the receiver is down all this time: every attempt fails
        async with server.client() as anon:
            metrics = (await anon.get("/metrics")).text
        assert "ephemera_webhooks_retried_total" in metrics
        receiver.start()
        await wait_for(lambda: len(receiver.first_arrivals()) >= 6 * len(ROOM_LIFE), within=30)
    await asyncio.sleep(1)  # anything sent twice would arrive by now
    assert receiver.rejected == []
    ids = receiver.ids()
    assert len(ids) == len(set(ids)) == 6 * len(ROOM_LIFE)  # once per webhook-id
    got = by_room(receiver)
    assert {rid: got[rid] for rid in rooms} == {rid: ROOM_LIFE for rid in rooms}  # in order


async def test_a_hung_receiver_slows_no_request_or_room(
    hooked: Callable[..., LiveServer], receiver: Receiver
) -> None:
    receiver.hold_seconds = 30  # every answer takes 30 s (until released)
    server = hooked(webhook_timeout_seconds=60)
    async with server.client("alice") as alice, server.client("bob") as bob:
        first = await create_room(alice, title="first")
        await wait_for(lambda: receiver.held > 0, within=10)
        # Delivery is stuck on that first event; the API and the room go on regardless.
        rid = await scheduled_life(alice, bob)
        r = await alice.post("/v1/stories", json={"text": "still fast"})
        assert r.status_code == 201
        peer = await join(server.ws_url, first["id"], "bob")
        await peer.close()
        assert receiver.held > 0 and receiver.received == []  # still blocked meanwhile
        receiver.release()
        await wait_for(lambda: by_room(receiver).get(rid) == ROOM_LIFE, within=30)
        await wait_for(lambda: receiver.of_type("story.published") != [], within=10)


async def test_valkey_killed_mid_delivery_loses_nothing_acknowledged(
    hooked: Callable[..., LiveServer], receiver: Receiver, tmp_path: Path
) -> None:
    own = EmbeddedValkey(tmp_path / "valkey")
    own.start()
    receiver.delay = 0.05  # a backlog builds up: delivery is mid-way when Valkey dies
    server = hooked(redis_url=own.url, rate_room_create="100000/hour")
    acknowledged: list[str] = []
    try:
        async with server.client("alice") as alice:
            killed = asyncio.Event()

            async def creator() -> None:
                while True:
                    try:
                        r = await alice.post("/v1/rooms", json={"title": "t"})
                    except httpx.HTTPError:
                        continue
                    if r.status_code == 201:
                        acknowledged.append(r.json()["id"])
                        if killed.is_set() and len(acknowledged) >= 60:
                            return
                    else:
                        assert r.status_code == 503, r.text
                        await asyncio.sleep(0.05)

            task = asyncio.create_task(creator())
            await wait_for(lambda: len(acknowledged) >= 40, within=30)
            assert len(receiver.received) < len(acknowledged) * 2  # delivery is behind
            own.kill()
            killed.set()
            await asyncio.sleep(2)
            own.start()
            await asyncio.wait_for(task, timeout=60)
        expected = ["room.started", "participant.joined"]

        def all_delivered() -> bool:
            got = by_room(receiver)
            return all(got.get(rid, [])[:2] == expected for rid in acknowledged)

        await wait_for(all_delivered, within=60)
        assert receiver.rejected == []
        for rid in acknowledged:  # in order, nothing else before
            assert by_room(receiver)[rid][:2] == expected
    finally:
        server.stop()
        own.stop()


async def test_another_process_takes_over_what_was_pending(
    hooked: Callable[..., LiveServer], receiver: Receiver
) -> None:
    first = hooked(rate_room_create="1000/hour")
    receiver.stop()
    async with first.client("alice") as alice, first.client("bob") as bob:
        rooms = [await scheduled_life(alice, bob) for _ in range(3)]
    await asyncio.sleep(1)  # read by the first process's consumer, failing: pending there
    second = hooked()
    first.stop()  # gives up its lease: the second one claims the pending entries
    receiver.start()
    await wait_for(lambda: len(receiver.first_arrivals()) >= 3 * len(ROOM_LIFE), within=30)
    await asyncio.sleep(1)
    assert receiver.rejected == []
    got = by_room(receiver)
    assert {rid: got[rid] for rid in rooms} == {rid: ROOM_LIFE for rid in rooms}
    assert len(receiver.ids()) == len(set(receiver.ids()))
    second.stop()
