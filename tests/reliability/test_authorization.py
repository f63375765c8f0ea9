"""Authorization matrix: a second user never reads or changes someone else's objects.

alice owns a story (visible to mallory, who follows her), a close-friends story (not visible
to mallory), a photo and a room; mallory tries every endpoint and WebSocket action on them.
Each attempt must be refused with 403/404 (or an ``error`` event) and change nothing.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.rooms.helpers import Peer, join
from tests.support import LiveServer, token

DENIED = {403, 404}


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + "?" + parts.query


@pytest.fixture
async def world(server: LiveServer) -> dict[str, Any]:
    async with server.client("alice") as a, server.client("mallory") as m:
        assert (await m.put("/v1/users/alice/follow")).status_code == 204
        public = (await a.post("/v1/stories", json={"text": "for followers"})).json()
        secret = (
            await a.post("/v1/stories", json={"text": "inner circle", "audience": "close_friends"})
        ).json()
        photo = await a.post(
            "/v1/stories/media",
            files={"file": ("p.jpg", _jpeg(), "image/jpeg")},
            data={"audience": "close_friends"},
        )
        assert photo.status_code == 201, photo.text
        await m.post(f"/v1/stories/{public['id']}/seen")
        await m.post(f"/v1/stories/{public['id']}/replies", json={"text": "hi"})
        room = (await a.post("/v1/rooms", json={"title": "alice's room"})).json()
    return {"public": public, "secret": secret, "photo": photo.json(), "room": room}


async def test_story_endpoints_refuse_the_wrong_user(
    server: LiveServer, world: dict[str, Any]
) -> None:
    public, secret, photo = world["public"], world["secret"], world["photo"]
    async with server.client("mallory") as m, server.client("alice") as a:
        before_public = (await a.get(f"/v1/stories/{public['id']}")).json()
        attempts: list[tuple[str, str, dict[str, Any] | None]] = [
            ("GET", f"/v1/stories/{secret['id']}", None),
            ("GET", f"/v1/stories/{photo['id']}", None),
            ("POST", f"/v1/stories/{secret['id']}/seen", None),
            ("POST", f"/v1/stories/{secret['id']}/replies", {"text": "x"}),
            ("POST", f"/v1/stories/{secret['id']}/reactions", {"emoji": "❤️"}),
            ("GET", f"/v1/stories/{public['id']}/viewers", None),
            ("GET", f"/v1/stories/{secret['id']}/viewers", None),
            ("PATCH", f"/v1/stories/{public['id']}", {"allow_replies": False}),
            ("DELETE", f"/v1/stories/{public['id']}", None),
            ("DELETE", f"/v1/stories/{secret['id']}", None),
        ]
        for method, path, body in attempts:
            r = await m.request(method, path, json=body)
            assert r.status_code in DENIED, (method, path, r.status_code, r.text)
            assert "error" in r.json()

        # Nothing changed: both stories live, settings unchanged, no reply from mallory on
        # the hidden story, the seen-by list untouched by the hidden story.
        assert (await a.get(f"/v1/stories/{public['id']}")).json() == before_public
        assert (await a.get(f"/v1/stories/{secret['id']}")).status_code == 200
        listed = (await m.get("/v1/users/alice/stories")).json()["stories"]
        assert [s["id"] for s in listed] == [public["id"]]
        inbox = (await a.get("/v1/stories/inbox")).json()["items"]
        assert {i["story_id"] for i in inbox} == {public["id"]}
        viewers = (await a.get(f"/v1/stories/{secret['id']}/viewers")).json()
        assert viewers["viewers"] == []
        # mallory's inbox is her own: alice's replies never show there.
        assert (await m.get("/v1/stories/inbox")).json()["items"] == []


async def test_media_needs_a_valid_signature_from_someone_allowed(
    server: LiveServer, world: dict[str, Any]
) -> None:
    photo = world["photo"]
    url = _path(photo["media"]["url"])
    async with server.client() as anon:
        assert (await anon.get(url)).status_code == 200  # alice's own signed URL works
        path, _, query = url.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&"))
        forged = f"{path}?exp={params['exp']}&sig={'A' * len(params['sig'])}"
        assert (await anon.get(forged)).status_code in DENIED
        later = f"{path}?exp={int(params['exp']) + 3600}&sig={params['sig']}"
        assert (await anon.get(later)).status_code in DENIED
        other = url.replace(photo["id"], world["public"]["id"])
        assert (await anon.get(other)).status_code in DENIED


async def test_room_http_moderation_refuses_the_wrong_user(
    server: LiveServer, world: dict[str, Any]
) -> None:
    room_id = world["room"]["id"]
    async with server.client("mallory") as m, server.client("alice") as a:
        for method, path, body in [
            ("POST", f"/v1/rooms/{room_id}/end", None),
            ("POST", f"/v1/rooms/{room_id}/cancel", None),
            ("POST", f"/v1/rooms/{room_id}/start", None),
            ("PATCH", f"/v1/rooms/{room_id}", {"title": "hijacked"}),
        ]:
            r = await m.request(method, path, json=body)
            assert r.status_code in DENIED | {409}, (method, path, r.status_code, r.text)
        room = (await a.get(f"/v1/rooms/{room_id}")).json()
        assert room["state"] == "live" and room["title"] == "alice's room"


async def test_room_websocket_moderation_refuses_a_listener(
    server: LiveServer, world: dict[str, Any]
) -> None:
    room_id = world["room"]["id"]
    host = await join(server.ws_url, room_id, "alice")
    bob = await join(server.ws_url, room_id, "bob")
    mallory = await join(server.ws_url, room_id, "mallory")
    peers: list[Peer] = [host, bob, mallory]
    try:
        await bob.send("hand.raise")
        await host.updated("bob", hand_raised=True)
        await host.send("hand.accept", user_id="bob")
        await host.updated("bob", role="speaker")
        for message in [
            {"type": "mute", "user_id": "bob"},
            {"type": "remove", "user_id": "bob"},
            {"type": "remove", "user_id": "alice"},
            {"type": "role.cohost", "user_id": "bob"},
            {"type": "role.demote", "user_id": "bob"},
            {"type": "invite.send", "user_id": "bob"},
            {"type": "hand.accept", "user_id": "bob"},
            {"type": "room.end"},
        ]:
            await mallory.send(**message)
            err = await mallory.error()
            assert err["code"] in {"not_allowed", "cannot_moderate"}, (message, err)
        # Nothing changed, as seen by a fresh join.
        fresh = await join(server.ws_url, room_id, "carol")
        peers.append(fresh)
        roles = {p["user_id"]: (p["role"], p["muted"]) for p in fresh.welcome["participants"]}
        assert roles["alice"] == ("host", False)
        assert roles["bob"] == ("speaker", False)
        assert roles["mallory"][0] == "listener"
        assert fresh.welcome["room"]["state"] == "live"
    finally:
        for p in peers:
            await p.close()


@pytest.mark.parametrize(
    ("make_token", "status", "code"),
    [
        (lambda: token("mallory", ttl=-120), 401, "token_expired"),
        (lambda: token("mallory", secret="x" * 64), 401, "invalid_token"),
        (
            lambda: "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJtYWxsb3J5In0.",
            401,
            "invalid_token",
        ),
        (lambda: token("mallory", room="another-room"), 403, "wrong_room"),
    ],
)
async def test_room_websocket_refuses_bad_tokens(
    server: LiveServer, world: dict[str, Any], make_token: Any, status: int, code: str
) -> None:
    url = f"{server.ws_url}/v1/rooms/{world['room']['id']}/ws?token={make_token()}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=10):
            pass
    assert refused.value.response.status_code == status
    assert json.loads(refused.value.response.body or b"{}")["error"]["code"] == code


async def test_room_scoped_token_joins_its_own_room(
    server: LiveServer, world: dict[str, Any]
) -> None:
    room_id = world["room"]["id"]
    url = f"{server.ws_url}/v1/rooms/{room_id}/ws?token={token('guest', room=room_id)}"
    async with connect(url, open_timeout=10) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"


async def test_browser_origin_is_checked_when_configured(make_server: Any) -> None:
    srv = make_server(allowed_origins=["https://app.example"])
    async with srv.client("alice") as a:
        room_id = (await a.post("/v1/rooms", json={"title": "r"})).json()["id"]
    url = f"{srv.ws_url}/v1/rooms/{room_id}/ws?token={token('alice')}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin="https://evil.example", open_timeout=10):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    async with connect(url, origin="https://app.example", open_timeout=10) as ws:  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["type"] == "welcome"
