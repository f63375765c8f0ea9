"""Rooms over HTTP: create now or scheduled, edit, start, cancel, end, preview, discovery."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.rooms.helpers import create_room, join
from tests.support import LiveServer, wait_for


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def test_create_live_room(server: LiveServer) -> None:
    async with server.client("alice") as a:
        r = await a.post(
            "/v1/rooms",
            json={"title": "  Launch party ", "description": "Come", "language": "fr"},
        )
        assert r.status_code == 201
        room = r.json()
    assert room["title"] == "Launch party" and room["description"] == "Come"
    assert room["language"] == "fr" and room["host"] == "alice"
    assert room["state"] == "live" and room["speaker_policy"] == "anyone_can_request"
    assert room["started_at"] and room["scheduled_for"] is None and room["ended_at"] is None
    assert room["share_url"] == f"{server.url}/rooms/{room['id']}"
    assert "ws_url" not in room  # any process takes the room's socket: no node to name
    assert (room["listener_count"], room["speaker_count"]) == (0, 1)


async def test_bad_bodies(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(rate_room_create="1000/hour")
    async with srv.client("alice") as a:
        for body in (
            {},
            {"title": ""},
            {"title": "   "},
            {"title": "x" * 101},
            {"title": "t", "description": "d" * 501},
            {"title": "t", "language": "english!"},
            {"title": "t", "speaker_policy": "everyone_shouts"},
            {"title": "t", "scheduled_for": "tomorrow"},
            {"title": "t", "scheduled_for": "2030-01-01T10:00:00"},  # no time zone
        ):
            r = await a.post("/v1/rooms", json=body)
            assert r.status_code == 422, body
            assert r.json()["error"]["code"] == "validation_error"
        r = await a.post("/v1/rooms", json={"title": "t", "scheduled_for": later(hours=-1)})
        assert r.status_code == 409 and r.json()["error"]["code"] == "schedule_in_past"
        r = await a.post("/v1/rooms", json={"title": "t", "scheduled_for": later(days=400)})
        assert r.status_code == 409 and r.json()["error"]["code"] == "schedule_too_far"
        r = await a.post("/v1/rooms", json={"title": "t", "speakers": "invited"})
        assert r.json()["speaker_policy"] == "invited_only"


async def test_scheduled_room_edit_start(server: LiveServer) -> None:
    when = later(days=2)
    async with server.client("alice") as a, server.client("bob") as b:
        room = await create_room(a, title="Weekly", scheduled_for=when)
        rid = room["id"]
        assert room["state"] == "scheduled" and room["started_at"] is None
        assert datetime.fromisoformat(room["scheduled_for"]) == datetime.fromisoformat(when)
        assert (room["listener_count"], room["speaker_count"]) == (0, 0)

        r = await b.patch(f"/v1/rooms/{rid}", json={"title": "Mine now"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_host"
        new_time = later(days=3)
        r = await a.patch(
            f"/v1/rooms/{rid}",
            json={
                "title": "Weekly #2",
                "scheduled_for": new_time,
                "speaker_policy": "invited_only",
            },
        )
        assert r.status_code == 200
        edited = r.json()
        assert edited["title"] == "Weekly #2" and edited["speaker_policy"] == "invited_only"
        assert datetime.fromisoformat(edited["scheduled_for"]) == datetime.fromisoformat(new_time)
        r = await a.patch(f"/v1/rooms/{rid}", json={"scheduled_for": later(minutes=-5)})
        assert r.status_code == 409 and r.json()["error"]["code"] == "schedule_in_past"

        assert (await b.post(f"/v1/rooms/{rid}/start")).status_code == 403
        r = await a.post(f"/v1/rooms/{rid}/start")
        assert r.status_code == 200 and r.json()["state"] == "live" and r.json()["started_at"]
        r = await a.post(f"/v1/rooms/{rid}/start")
        assert r.status_code == 409 and r.json()["error"]["code"] == "room_not_scheduled"
        r = await a.patch(f"/v1/rooms/{rid}", json={"title": "too late"})
        assert r.status_code == 409
        r = await a.post(f"/v1/rooms/{rid}/cancel")
        assert r.status_code == 409 and r.json()["error"]["code"] == "room_not_scheduled"

    host = await join(server.ws_url, rid, "alice")
    assert host.welcome["room"]["speaker_policy"] == "invited_only"
    await host.close()


async def test_cancel_and_end(server: LiveServer) -> None:
    async with server.client("alice") as a, server.client("bob") as b:
        scheduled = await create_room(a, scheduled_for=later(hours=5))
        assert (await b.post(f"/v1/rooms/{scheduled['id']}/cancel")).status_code == 403
        r = await a.post(f"/v1/rooms/{scheduled['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "ended"
        r = await a.post(f"/v1/rooms/{scheduled['id']}/start")
        assert r.status_code == 409

        live = await create_room(a)
        bob = await join(server.ws_url, live["id"], "bob")
        assert (await b.post(f"/v1/rooms/{live['id']}/end")).status_code == 403
        r = await a.post(f"/v1/rooms/{live['id']}/end")
        assert r.status_code == 200 and r.json()["state"] == "ended" and r.json()["ended_at"]
        assert (await bob.next("room.ended"))["reason"] == "ended_by_host"
        r = await a.post(f"/v1/rooms/{live['id']}/end")
        assert r.status_code == 409 and r.json()["error"]["code"] == "room_not_live"
        for path in ("/v1/rooms/nope/end", "/v1/rooms/nope/start", "/v1/rooms/nope"):
            r = await (a.get(path) if path.endswith("nope") else a.post(path))
            assert r.status_code == 404 and r.json()["error"]["code"] == "room_not_found"


async def test_preview_is_public(server: LiveServer) -> None:
    async with server.client("alice") as a:
        room = await create_room(a, title="Open mic")
    bob = await join(server.ws_url, room["id"], "bob")
    async with server.client() as anon:
        r = await anon.get(f"/v1/rooms/{room['id']}/preview")
        assert r.status_code == 200
        preview = r.json()
        assert set(preview) == {
            "id",
            "title",
            "host",
            "state",
            "listener_count",
            "speaker_count",
            "started_at",
            "scheduled_for",
        }
        assert preview["title"] == "Open mic" and preview["host"] == "alice"
        assert preview["state"] == "live" and preview["listener_count"] == 1
        assert (await anon.get(f"/v1/rooms/{room['id']}")).status_code == 401
        r = await anon.get("/v1/rooms/unknown/preview")
        assert r.status_code == 404 and r.json()["error"]["code"] == "room_not_found"
    await bob.close()


async def test_counts_follow_participants(server: LiveServer) -> None:
    async with server.client("alice") as a:
        room = await create_room(a)
        host = await join(server.ws_url, room["id"], "alice")
        peers = [await join(server.ws_url, room["id"], u) for u in ("bob", "carol")]

        async def counts() -> tuple[int, int]:
            r = (await a.get(f"/v1/rooms/{room['id']}")).json()
            return r["listener_count"], r["speaker_count"]

        assert await counts() == (2, 1)
        await peers[0].send("hand.raise")
        await host.updated("bob", hand_raised=True)
        await host.send("hand.accept", user_id="bob")
        await host.updated("bob", role="speaker")
        assert await counts() == (1, 2)
        # Everyone connected hears about count changes within a tick.
        update = await peers[1].next("listeners", lambda e: e["speaker_count"] == 2, within=10)
        assert update["listener_count"] == 1
    for p in (host, *peers):
        await p.close()


async def test_blocked_users_cannot_see_the_room(server: LiveServer) -> None:
    async with server.client("alice") as a, server.client("mallory") as m:
        room = await create_room(a)
        assert (await a.put("/v1/me/blocks/mallory")).status_code == 204
        r = await m.get(f"/v1/rooms/{room['id']}")
        assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
        listed = (await m.get("/v1/rooms")).json()["rooms"]
        assert room["id"] not in [x["id"] for x in listed]


async def test_discovery_followed_hosts_first(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(rate_room_create="1000/hour")
    clients: dict[str, httpx.AsyncClient] = {u: srv.client(u) for u in ("ann", "ben", "cat")}
    try:
        a, b, c = clients["ann"], clients["ben"], clients["cat"]
        ann_room = await create_room(a, title="Ann's")
        ben_room = await create_room(b, title="Ben's")  # newer
        soon = await create_room(b, title="soon", scheduled_for=later(hours=1))
        afar = await create_room(a, title="afar", scheduled_for=later(days=9))
        nearer = await create_room(a, title="nearer", scheduled_for=later(hours=2))

        def ids(r: httpx.Response) -> list[str]:
            return [x["id"] for x in r.json()["rooms"]]

        live = ids(await c.get("/v1/rooms"))
        assert live.index(ben_room["id"]) < live.index(ann_room["id"])  # newest first
        assert (await c.put("/v1/users/ann/follow")).status_code == 204
        live = ids(await c.get("/v1/rooms", params={"state": "live"}))
        assert live.index(ann_room["id"]) < live.index(ben_room["id"])  # followed first
        assert soon["id"] not in live

        scheduled = ids(await c.get("/v1/rooms", params={"state": "scheduled"}))
        assert scheduled == [nearer["id"], afar["id"], soon["id"]]
        assert ids(await c.get("/v1/rooms", params={"state": "scheduled", "limit": 1})) == [
            nearer["id"]
        ]
        assert (await c.get("/v1/rooms", params={"state": "over"})).status_code == 422
        # Ended rooms are listed only with a replay (docs/recording.md): none was recorded.
        assert ids(await c.get("/v1/rooms", params={"state": "ended"})) == []

        # Ended and cancelled rooms leave the lists.
        await a.post(f"/v1/rooms/{ann_room['id']}/end")
        await a.post(f"/v1/rooms/{nearer['id']}/cancel")
        assert ann_room["id"] not in ids(await c.get("/v1/rooms"))
        assert nearer["id"] not in ids(await c.get("/v1/rooms", params={"state": "scheduled"}))
        r = await c.post(f"/v1/rooms/{soon['id']}/start")
        assert r.status_code == 403
        await b.post(f"/v1/rooms/{soon['id']}/start")
        assert soon["id"] in ids(await c.get("/v1/rooms"))
    finally:
        for client in clients.values():
            await client.aclose()


async def test_create_is_rate_limited(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(rate_room_create="2/hour")
    async with srv.client("alice") as a:
        for _ in range(2):
            await create_room(a)
        r = await a.post("/v1/rooms", json={"title": "third"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


async def test_openapi_documents_rooms(server: LiveServer) -> None:
    async with server.client() as anon:
        spec: dict[str, Any] = (await anon.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/v1/rooms",
        "/v1/rooms/{room_id}",
        "/v1/rooms/{room_id}/preview",
        "/v1/rooms/{room_id}/start",
        "/v1/rooms/{room_id}/cancel",
        "/v1/rooms/{room_id}/end",
    ):
        assert path in paths, path
    assert "security" not in paths["/v1/rooms/{room_id}/preview"]["get"]
    assert "Room" in spec["components"]["schemas"]


async def test_ended_room_metadata_expires(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(room_ended_ttl_seconds=1)
    async with srv.client("alice") as a:
        room = await create_room(a)
        await a.post(f"/v1/rooms/{room['id']}/end")

        async def gone() -> bool:
            return (await a.get(f"/v1/rooms/{room['id']}")).status_code == 404

        await wait_for(gone, within=10, interval=0.2)
