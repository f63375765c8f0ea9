"""Helpers of the recording tests: recorded rooms with tone speakers, and reading audio."""

from __future__ import annotations

import io
import time
from typing import Any

import av
import httpx
import numpy as np

from tests.media.client import RoomClient, room_socket
from tests.support import LiveServer, auth, wait_for

RATE = 48_000


async def recorded_room(server: LiveServer, host: str = "alice") -> dict[str, Any]:
    async with server.client(host) as http:
        answer = await http.post("/v1/rooms", json={"title": "On the record", "record": True})
    assert answer.status_code == 201, answer.text
    room: dict[str, Any] = answer.json()
    assert room["recorded"] is True
    return room


async def recording(
    http: httpx.AsyncClient, server: LiveServer, room_id: str, user: str = "alice"
) -> httpx.Response:
    return await http.get(f"{server.url}/v1/rooms/{room_id}/recording", headers=auth(user))


async def recording_in(
    http: httpx.AsyncClient, server: LiveServer, room_id: str, state: str
) -> dict[str, Any]:
    """The recording, once it is in ``state``."""
    found: dict[str, Any] = {}

    async def reached() -> bool:
        answer = await recording(http, server, room_id)
        if answer.status_code == 200 and answer.json()["state"] == state:
            found.update(answer.json())
            return True
        return False

    await wait_for(reached, within=30)
    return found


def segment_urls(playlist_url: str, text: str) -> list[str]:
    base = playlist_url.split("?")[0].rsplit("/", 1)[0]
    return [f"{base}/{line}" for line in text.splitlines() if line and not line.startswith("#")]


def decode(data: bytes) -> np.ndarray:
    """Mono float32 samples at 48 kHz of an audio file."""
    with av.open(io.BytesIO(data), "r") as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    samples = np.concatenate([f.reshape(f.shape[0], -1) for f in frames], axis=1)
    return np.asarray(samples.mean(axis=0), dtype=np.float32)


def tone_levels(samples: np.ndarray, start: float, end: float) -> dict[str, float]:
    """RMS of the window [start, end) s, and the share of its energy at 440 and 660 Hz."""
    window = samples[int(start * RATE) : int(end * RATE)]
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window)))) ** 2
    freqs = np.fft.rfftfreq(len(window), 1 / RATE)
    total = float(spectrum.sum()) or 1.0

    def share(hz: float) -> float:
        band = (freqs > hz - 15) & (freqs < hz + 15)
        return float(spectrum[band].sum()) / total

    rms = float(np.sqrt(np.mean(window.astype(np.float64) ** 2)))
    return {"rms": rms, "440": share(440), "660": share(660)}


async def speaker(server: LiveServer, room: dict[str, Any], user: str, hz: float) -> RoomClient:
    """``user`` in the room with a tone microphone (the host speaks at once)."""
    client = RoomClient(room_socket(server.ws_url, room["id"]), user)
    await client.connect()
    await client.start_audio(speak=user == room["host"], tone=hz)
    return client


def since(t0: float) -> float:
    return time.time() - t0
