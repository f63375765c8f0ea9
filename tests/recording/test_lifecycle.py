"""A recording's life: asked for over HTTP and the room socket, listed, deleted, expired."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.recording.helpers import (
    recorded_room,
    recording,
    recording_in,
    segment_urls,
    speaker,
)
from tests.rooms.helpers import join
from tests.support import LiveServer, auth, wait_for


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def short_replay(
    server: LiveServer, http: httpx.AsyncClient, seconds: float = 2.5
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A recorded room where alice plays a tone for ``seconds``, ended: (room, recording)."""
    room = await recorded_room(server)
    alice = await speaker(server, room, "alice", 440)
    try:
        await recording_in(http, server, room["id"], "live")
        await wait_for(lambda: alice.rtc is not None and alice.rtc.sending, within=20)
        await asyncio.sleep(seconds)
        ended = await http.post(f"{server.url}/v1/rooms/{room['id']}/end", headers=auth("alice"))
        assert ended.status_code == 200
    finally:
        await alice.close()
    return room, await recording_in(http, server, room["id"], "ready")


async def every_url(http: httpx.AsyncClient, rec: dict[str, Any]) -> list[str]:
    playlist = await http.get(rec["hls_url"])
    assert playlist.status_code == 200
    return [rec["hls_url"], rec["download_url"], *segment_urls(rec["hls_url"], playlist.text)]


async def listed(http: httpx.AsyncClient, server: LiveServer, path: str) -> list[str]:
    answer = await http.get(f"{server.url}{path}", headers=auth("bob"))
    assert answer.status_code == 200, answer.text
    return [r["id"] for r in answer.json()["rooms"]]


async def test_a_replay_expires_everywhere(
    make_server: Callable[..., LiveServer], http: httpx.AsyncClient
) -> None:
    server = make_server(replay_ttl_seconds=4, sweep_interval_seconds=0.5)
    room, rec = await short_replay(server, http)
    urls = await every_url(http, rec)
    assert [(await http.get(u)).status_code for u in urls] == [200] * len(urls)
    assert room["id"] in await listed(http, server, "/v1/rooms?state=ended")
    assert room["id"] in await listed(http, server, "/v1/users/alice/replays")
    files = server.settings.data_dir / "recordings" / room["id"]
    assert (files / "replay.m4a").is_file()
    await wait_for(lambda: not files.exists(), within=20)
    for url in urls:
        assert (await http.get(url)).status_code == 404, url
    gone = (await recording(http, server, room["id"])).json()
    assert gone["state"] == "deleted" and gone["hls_url"] is None and gone["download_url"] is None
    assert await listed(http, server, "/v1/rooms?state=ended") == []
    assert await listed(http, server, "/v1/users/alice/replays") == []


async def test_the_host_deletes_a_replay_at_once(
    make_server: Callable[..., LiveServer], http: httpx.AsyncClient
) -> None:
    server = make_server()
    room, rec = await short_replay(server, http)
    urls = await every_url(http, rec)
    path = f"{server.url}/v1/rooms/{room['id']}/recording"
    refused = await http.delete(path, headers=auth("bob"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_host"
    assert (await http.delete(path, headers=auth("alice"))).status_code == 204
    for url in urls:
        assert (await http.get(url)).status_code == 404, url
    assert not (server.settings.data_dir / "recordings" / room["id"]).exists()
    assert (await recording(http, server, room["id"])).json()["state"] == "deleted"
    assert (await http.delete(path, headers=auth("alice"))).status_code == 404
    assert await listed(http, server, "/v1/rooms?state=ended") == []


async def test_signed_urls_are_checked(
    make_server: Callable[..., LiveServer], http: httpx.AsyncClient
) -> None:
    server = make_server()
    room, rec = await short_replay(server, http, seconds=1.0)
    base = rec["hls_url"].split("?")[0]
    query = rec["hls_url"].split("?")[1]
    forged = query[:-3] + ("AAA" if not query.endswith("AAA") else "BBB")
    assert (await http.get(f"{base}?{forged}")).status_code == 404
    assert (await http.get(base)).status_code == 422  # no signature at all
    other = base.replace("index.m3u8", "secret_key")
    assert (await http.get(f"{other}?{query}")).status_code == 404
    block = await http.put(f"{server.url}/v1/me/blocks/mallory", headers=auth("alice"))
    assert block.status_code == 204
    hidden = await recording(http, server, room["id"], user="mallory")
    assert hidden.status_code == 403
    assert room["id"] in await listed(http, server, "/v1/rooms?state=ended")
    answer = await http.get(f"{server.url}/v1/rooms?state=ended", headers=auth("mallory"))
    assert room["id"] not in [r["id"] for r in answer.json()["rooms"]]


async def test_record_on_create_and_while_scheduled(
    make_server: Callable[..., LiveServer], http: httpx.AsyncClient
) -> None:
    server = make_server()
    when = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"title": "Later", "scheduled_for": when}
    made = await http.post(f"{server.url}/v1/rooms", json=body, headers=auth("alice"))
    room = made.json()
    assert room["recorded"] is False
    path = f"{server.url}/v1/rooms/{room['id']}"
    bad = await http.patch(path, json={"record": "yes"}, headers=auth("alice"))
    assert bad.status_code == 422
    edited = await http.patch(path, json={"record": True}, headers=auth("alice"))
    assert edited.status_code == 200 and edited.json()["recorded"] is True
    started = await http.post(f"{path}/start", headers=auth("alice"))
    assert started.json()["recorded"] is True and started.json()["state"] == "live"


async def test_a_moderator_starts_recording_a_live_room(
    make_server: Callable[..., LiveServer], http: httpx.AsyncClient
) -> None:
    server = make_server()
    made = await http.post(f"{server.url}/v1/rooms", json={"title": "Now"}, headers=auth("alice"))
    room = made.json()
    alice = await join(server.ws_url, room["id"], "alice")
    bob = await join(server.ws_url, room["id"], "bob")
    try:
        assert alice.welcome["room"]["recorded"] is False
        assert "recording.start" in alice.welcome["actions"]["self"]
        assert "recording.start" not in bob.welcome["actions"]["self"]
        await bob.send("recording.start")
        assert (await bob.error())["code"] == "not_allowed"
        await alice.send("recording.start")
        started = await bob.next("recording.started")
        assert started == {"type": "recording.started", "by": "alice"}
        actions = await alice.next("actions")
        assert "recording.start" not in actions["actions"]["self"]
        got = await http.get(f"{server.url}/v1/rooms/{room['id']}", headers=auth("bob"))
        assert got.json()["recorded"] is True
        late = await join(server.ws_url, room["id"], "carol")
        assert late.welcome["room"]["recorded"] is True
        await late.close()
    finally:
        await alice.close()
        await bob.close()
