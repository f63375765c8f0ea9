"""Reminders of scheduled rooms: the API, the count, and the batched room.reminder events."""

from __future__ import annotations

from collections.abc import Callable

from tests.rooms.helpers import create_room
from tests.support import LiveServer, wait_for
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_delivery import soon


def error(r: object) -> str:
    return str(r.json()["error"]["code"])  # type: ignore[attr-defined]


async def test_reminder_api(server: LiveServer) -> None:
    async with server.client("alice") as alice, server.client("bob") as bob:
        rid = (await create_room(alice, scheduled_for=soon()))["id"]
        url = f"/v1/rooms/{rid}/reminder"
        assert (await bob.get(url)).json() == {
            "room_id": rid,
            "reminded": False,
            "reminder_count": 0,
        }
        for _ in range(2):  # idempotent
            r = await bob.put(url)
            assert r.status_code == 200, r.text
            assert r.json() == {"room_id": rid, "reminded": True, "reminder_count": 1}
        assert (await bob.get(url)).json()["reminded"] is True
        assert (await alice.get(f"/v1/rooms/{rid}")).json()["reminder_count"] == 1
        listed = (await bob.get("/v1/rooms", params={"state": "scheduled"})).json()["rooms"]
        assert [x["reminder_count"] for x in listed if x["id"] == rid] == [1]
        r = await bob.delete(url)
        assert r.json() == {"room_id": rid, "reminded": False, "reminder_count": 0}
        assert (await bob.put(url)).status_code == 200
        assert (await alice.post(f"/v1/rooms/{rid}/start")).status_code == 200
        # Live: reminders are spent, and new ones are refused with a stable code.
        assert (await alice.get(f"/v1/rooms/{rid}")).json()["reminder_count"] == 0
        for call in (bob.put, bob.delete):
            r = await call(url)
            assert (r.status_code, error(r)) == (409, "room_not_scheduled")


async def test_reminder_errors(server: LiveServer) -> None:
    async with server.client("alice") as alice, server.client("bob") as bob:
        rid = (await create_room(alice, scheduled_for=soon()))["id"]
        for bad in ("nope", "x" * 200, "a%20b"):
            r = await bob.put(f"/v1/rooms/{bad}/reminder")
            assert (r.status_code, error(r)) == (404, "room_not_found")
        async with server.client() as anon:
            r = await anon.put(f"/v1/rooms/{rid}/reminder")
            assert r.status_code == 401 and "code" in r.json()["error"]
        assert (await alice.put("/v1/me/blocks/bob")).status_code in (200, 204)
        r = await bob.put(f"/v1/rooms/{rid}/reminder")
        assert (r.status_code, error(r)) == (403, "blocked")
        r = await alice.post(f"/v1/rooms/{rid}/reminder")
        assert r.status_code == 405 and "PUT" in r.headers["allow"]
        assert (await alice.post(f"/v1/rooms/{rid}/cancel")).status_code == 200
        r = await alice.put(f"/v1/rooms/{rid}/reminder")
        assert (r.status_code, error(r)) == (409, "room_not_scheduled")


async def test_reminders_are_sent_in_batches_at_the_start(
    hooked: Callable[..., LiveServer], receiver: Receiver
) -> None:
    server = hooked(webhook_reminder_batch=3)
    users = [f"user{i}" for i in range(7)]
    async with server.client("alice") as alice:
        rid = (await create_room(alice, scheduled_for=soon()))["id"]
        for user in users:
            async with server.client(user) as c:
                assert (await c.put(f"/v1/rooms/{rid}/reminder")).status_code == 200
        assert (await alice.get(f"/v1/rooms/{rid}")).json()["reminder_count"] == 7
        assert (await alice.post(f"/v1/rooms/{rid}/start")).status_code == 200
    await wait_for(lambda: len(receiver.of_type("room.reminder")) == 3, within=15)
    batches = [r.data for r in receiver.of_type("room.reminder")]
    assert [(b["batch"], b["batches"]) for b in batches] == [(1, 3), (2, 3), (3, 3)]
    assert [len(b["user_ids"]) for b in batches] == [3, 3, 1]
    assert sorted(u for b in batches for u in b["user_ids"]) == users
    assert {b["room_id"] for b in batches} == {rid}
