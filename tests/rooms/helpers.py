"""A room WebSocket client for tests: a real ``websockets`` connection with an inbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import token

Event = dict[str, Any]


class Peer:
    """One participant: sends messages, keeps every event received, waits for some."""

    def __init__(self, ws: ClientConnection, user: str) -> None:
        self.ws = ws
        self.user = user
        self.events: list[Event] = []
        self.welcome: Event = {}
        self.closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._new = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.events.append(json.loads(raw))
                self._new.set()
        except ConnectionClosed:
            pass
        finally:
            code = self.ws.close_code
            if not self.closed.done():
                self.closed.set_result((code or 1006, self.ws.close_reason or ""))
            self._new.set()

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type, **fields}))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def next(
        self, type: str, where: Callable[[Event], bool] | None = None, within: float = 10.0
    ) -> Event:
        """The first event of ``type`` (matching ``where``) not yet taken by ``next``."""
        deadline = time.monotonic() + within
        while True:
            for i, event in enumerate(self.events):
                if event.get("type") == type and (where is None or where(event)):
                    del self.events[i]
                    return event
            if self.closed.done():
                raise AssertionError(f"{self.user}: closed {self.closed.result()} before {type}")
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [e.get("type") for e in self.events]
                raise AssertionError(f"{self.user}: no {type} event within {within}s; have {seen}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), timeout=min(left, 0.5))

    async def error(self, within: float = 10.0) -> Event:
        return await self.next("error", within=within)

    async def updated(self, user: str, within: float = 10.0, **expect: Any) -> Event:
        """The next ``participant.updated`` about ``user`` showing all of ``expect``."""

        def match(e: Event) -> bool:
            p = e["participant"]
            return bool(p["user_id"] == user and all(p[k] == v for k, v in expect.items()))

        event = await self.next("participant.updated", match, within)
        return dict(event["participant"])

    def has(self, type: str, where: Callable[[Event], bool] | None = None) -> bool:
        return any(e.get("type") == type and (where is None or where(e)) for e in self.events)

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await self._task

    async def wait_closed(self, within: float = 10.0) -> tuple[int, str]:
        return await asyncio.wait_for(asyncio.shield(self.closed), within)


async def join(ws_base: str, room_id: str, user: str) -> Peer:
    """Connect ``user`` to the room and wait for the welcome."""
    ws = await connect(f"{ws_base}/v1/rooms/{room_id}/ws?token={token(user)}", open_timeout=10)
    peer = Peer(ws, user)
    peer.welcome = await peer.next("welcome")
    return peer


async def refused(ws_base: str, room_id: str, user: str) -> tuple[int, dict[str, Any]]:
    """Try to join; return the HTTP status and error body of the refused handshake."""
    try:
        ws = await connect(f"{ws_base}/v1/rooms/{room_id}/ws?token={token(user)}", open_timeout=10)
    except InvalidStatus as exc:
        return exc.response.status_code, json.loads(exc.response.body or b"{}")
    await ws.close()
    raise AssertionError(f"{user} was admitted to {room_id}")


async def create_room(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("title", "Test room")
    r = await client.post("/v1/rooms", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def participant(welcome: Event, user: str) -> dict[str, Any] | None:
    for p in welcome["participants"]:
        if p["user_id"] == user:
            return dict(p)
    return None
