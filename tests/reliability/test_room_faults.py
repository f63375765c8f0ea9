"""Rooms under faults: Redis killed while audio flows, and a server restart mid-room."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from server.settings import Settings
from server.valkey import EmbeddedValkey
from tests.media.client import RoomClient
from tests.rooms.helpers import create_room, join, refused
from tests.support import ServerProcess, auth, settings_env, wait_for


async def test_audio_keeps_flowing_while_redis_is_down(make_server: Any, tmp_path: Path) -> None:
    own = EmbeddedValkey(tmp_path / "valkey")
    own.start()
    clients: list[RoomClient] = []
    try:
        srv = make_server(redis_url=own.url)
        async with srv.client("host") as c:
            room = (await c.post("/v1/rooms", json={"title": "outage"})).json()
        url = f"{srv.ws_url}/v1/rooms/{room['id']}/ws"
        host = RoomClient(url, "host")
        listener = RoomClient(url, "listener")
        clients += [host, listener]
        await host.connect()
        await listener.connect()
        await host.start_audio(speak=True, tone=440.0)
        heard = await listener.start_audio()
        await wait_for(heard.hears_tone, within=20)

        own.kill()
        async with srv.client("host") as c:
            assert (await c.get("/readyz")).status_code == 503
        before = heard.packets
        await wait_for(lambda: heard.packets > before + 100, within=20)  # ~2 s of audio
        assert heard.hears_tone()

        own.start()
        async with srv.client("host") as c:

            async def ready() -> bool:
                return (await c.get("/readyz")).status_code == 200

            await wait_for(ready, within=30)
        after = heard.packets
        await wait_for(lambda: heard.packets > after + 50, within=20)
        assert heard.hears_tone()
    finally:
        for client in clients:
            await client.close()
        own.stop()


async def test_room_survives_a_server_restart(make_settings: Callable[..., Settings]) -> None:
    env = settings_env(make_settings(reconnect_grace_seconds=60, host_grace_seconds=60))
    first = ServerProcess(env).start()
    try:
        async with httpx.AsyncClient(base_url=first.url, headers=auth("host")) as c:
            room = await create_room(c, title="restart")
        host = await join(first.ws_url, room["id"], "host")
        bob = await join(first.ws_url, room["id"], "bob")
        await bob.send("hand.raise")
        await host.updated("bob", hand_raised=True)
        await host.send("hand.accept", user_id="bob")
        await host.updated("bob", role="speaker")
        carol = await join(first.ws_url, room["id"], "carol")
        await carol.send("hand.raise")
        await host.updated("carol", hand_raised=True)
    finally:
        first.stop()  # SIGTERM: every socket drops at once

    second = ServerProcess(env).start()
    try:
        # Everyone comes back within the grace period and finds their role and hand.
        host = await join(second.ws_url, room["id"], "host")
        bob = await join(second.ws_url, room["id"], "bob")
        carol = await join(second.ws_url, room["id"], "carol")
        roles = {p["user_id"]: p for p in carol.welcome["participants"]}
        assert roles["host"]["role"] == "host"
        assert roles["bob"]["role"] == "speaker"
        assert roles["carol"]["role"] == "listener" and roles["carol"]["hand_raised"] is True
        assert carol.welcome["room"]["state"] == "live"
        for peer in (host, bob, carol):
            await peer.close()
    finally:
        second.stop()


async def test_room_whose_host_never_returns_ends(make_settings: Callable[..., Settings]) -> None:
    env = settings_env(make_settings(reconnect_grace_seconds=1, host_grace_seconds=1))
    first = ServerProcess(env).start()
    try:
        async with httpx.AsyncClient(base_url=first.url, headers=auth("host")) as c:
            room = await create_room(c, title="orphan")
        await join(first.ws_url, room["id"], "host")
        await join(first.ws_url, room["id"], "bob")
    finally:
        first.stop()

    second = ServerProcess(env).start()
    try:
        async with httpx.AsyncClient(base_url=second.url, timeout=10, headers=auth("bob")) as c:

            async def ended() -> bool:
                r = await c.get(f"/v1/rooms/{room['id']}")
                return bool(r.json()["state"] == "ended")

            await wait_for(ended, within=30)
            # Ended cleanly: nobody can join any more.
            status, body = await refused(second.ws_url, room["id"], "bob")
            assert status == 409 and body["error"]["code"] == "room_ended"
    finally:
        second.stop()
