"""``ephemera serve --workers 2``: one room over both processes behind one port, and a
worker that dies is replaced while the room carries on."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from rooms.media.directory import Directory
from rooms.media.node import VIEW_SECONDS
from server.settings import Settings
from server.store import Keys, connect
from tests.media.client import RoomClient, hears_tone, room_socket
from tests.support import auth, wait_for

EPHEMERA = Path(sys.executable).with_name("ephemera")
STARTED = re.compile(rb"Ephemera running on (http://127\.0\.0\.1:\d+) ")


@pytest.fixture
def serve(make_settings: Callable[..., Settings]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    settings = make_settings()
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "EPHEMERA_KEY_PREFIX": settings.key_prefix,
        "EPHEMERA_DATA_DIR": str(settings.data_dir),
        "EPHEMERA_SECRET_KEY": settings.secret_key,
        "EPHEMERA_LOG_LEVEL": os.environ.get("TEST_SERVE_LOG_LEVEL", "WARNING"),
        "EPHEMERA_MEDIA_NODE_MAX_LISTENERS": "2",  # four listeners need both workers
    }
    proc = subprocess.Popen(
        [str(EPHEMERA), "serve", "--port", "0", "--workers", "2"], env=env, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        match = STARTED.search(proc.stdout.readline())
        assert match, "ephemera serve did not start"
        time.sleep(2 * VIEW_SECONDS)  # each worker sees the other in the registry
        yield proc, match.group(1).decode()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def workers(supervisor: int) -> list[int]:
    """The worker processes of ``ephemera serve`` (not multiprocessing's resource tracker)."""
    found = []
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return sorted(found)


@pytest.fixture
async def directory(make_settings: Callable[..., Settings]) -> AsyncIterator[Directory]:
    settings = make_settings()
    assert settings.redis_url is not None
    redis = connect(settings.redis_url, settings)
    yield Directory(redis, Keys(settings.key_prefix), 3.0)
    await redis.aclose()


async def test_one_room_over_two_workers_survives_one_dying(
    serve: tuple[subprocess.Popen[bytes], str], directory: Directory
) -> None:
    proc, url = serve
    async with httpx.AsyncClient(base_url=url, headers=auth("alice")) as http:
        room = (await http.post("/v1/rooms", json={"title": "Two workers"})).json()["id"]
    socket_url = room_socket(url.replace("http://", "ws://"), room)
    clients: dict[str, RoomClient] = {}

    async def join(user: str) -> None:
        client = clients[user] = RoomClient(socket_url, user)
        await client.connect()
        await client.start_audio(speak=user == "alice", tone=440 if user == "alice" else None)

    def all_hear(since: float = 0.0) -> bool:
        """Every listener has the tone, in packets that arrived after ``since``."""
        for user, client in clients.items():
            rtc = client.rtc
            if user == "alice":
                continue
            if rtc is None or not any(
                (i.last_packet_at or 0) > since and hears_tone(i) for i in rtc.inbound
            ):
                return False
        return True

    try:
        for user in ("alice", "bob", "carol", "dave", "erin"):
            await join(user)
        await wait_for(all_hear, within=40)
        where = await directory.where(room)
        assert where.origin is not None and len(where.serving) == 2  # both workers serve it

        first = workers(proc.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        killed = time.monotonic()
        await asyncio.sleep(1.0)
        # Sockets that were on the dead worker reconnect, as the web client does.
        for user, client in list(clients.items()):
            if client.closed_code is not None:
                await client.close()
                await join(user)
        await wait_for(lambda: all_hear(killed + 1.0), within=40)
        await wait_for(lambda: len(workers(proc.pid)) == 2 and workers(proc.pid) != first, 60)
    finally:
        for client in clients.values():
            await client.close()
