"""Recording end to end: a real server, real aiortc tone speakers, real Redis, the files on
disk; the replay decoded with PyAV and checked by FFT."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.media.client import RoomClient, room_socket
from tests.recording.helpers import (
    decode,
    recording,
    recording_in,
    segment_urls,
    speaker,
    tone_levels,
)
from tests.support import LiveServer, auth, wait_for


@pytest.fixture
async def http() -> Any:
    """One client for the whole test: a new one per request builds an SSL context each
    time, long enough to stall the test's tone speakers (they share its event loop)."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def clients() -> Any:
    made: list[RoomClient] = []
    yield made
    for c in made:
        await c.close()


async def until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def stage_muted_bob(alice: RoomClient, bob: RoomClient) -> None:
    """Bob on stage with his microphone on but muted (gated by the server)."""
    await alice.act("invite.send", user_id="bob")
    await bob.event("invite.received")
    await bob.act("invite.accept")
    await bob.act("mute")
    await alice.event("participant.updated", lambda e: e["participant"]["muted"], within=10)


async def live_playlist_advances(http: httpx.AsyncClient, live: dict[str, Any]) -> None:
    first = await http.get(live["hls_url"])
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=1"
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in first.text and "#EXT-X-ENDLIST" not in first.text
    count = len(segment_urls(live["hls_url"], first.text))

    async def grew() -> bool:
        again = await http.get(live["hls_url"])
        return len(segment_urls(live["hls_url"], again.text)) > count

    await wait_for(grew, within=10)


async def test_recorded_room_replays_both_tones_and_the_muted_stretch(
    make_server: Callable[..., LiveServer], clients: list[RoomClient], http: httpx.AsyncClient
) -> None:
    """Alice (440 Hz) alone, then with Bob (660 Hz), then Bob alone, then both muted: 10 s
    from when the host starts recording (once the audio flows, so connection set-up time
    does not count), then the room ends."""
    server = make_server()
    made = await http.post(
        f"{server.url}/v1/rooms", json={"title": "On air"}, headers=auth("alice")
    )
    room = made.json()
    alice = await speaker(server, room, "alice", 440)
    bob = RoomClient(room_socket(server.ws_url, room["id"]), "bob")
    clients += [alice, bob]
    await bob.connect()
    await bob.start_audio(tone=660)
    await stage_muted_bob(alice, bob)
    await wait_for(lambda: bob.rtc is not None and bob.rtc.hears_tone(440), within=30)
    await alice.act("recording.start")
    await bob.event("recording.started")
    live = await recording_in(http, server, room["id"], "live")
    t0 = _ts(live["started_at"])
    advancing = asyncio.create_task(live_playlist_advances(http, live))
    marks: dict[str, float] = {}
    for name, at, who, kind in (
        ("bob_on", 3.0, bob, "unmute"),
        ("alice_off", 5.5, alice, "mute"),
        ("bob_off", 7.5, bob, "mute"),
    ):
        await until(t0 + at)
        marks[name] = time.time() - t0  # when it was sent, however late the loop was
        await who.act(kind)
    await advancing
    await until(t0 + 10.0)
    ended = await http.post(f"{server.url}/v1/rooms/{room['id']}/end", headers=auth("alice"))
    assert ended.status_code == 200
    ready = await recording_in(http, server, room["id"], "ready")
    length = _ts(ended.json()["ended_at"]) - t0
    assert abs(ready["duration_seconds"] - length) <= 0.1, (ready, length)
    assert abs(ready["duration_seconds"] - 10.0) <= 0.5, ready
    download = await http.get(ready["download_url"])
    assert download.status_code == 200 and download.headers["content-type"] == "audio/mp4"
    samples = decode(download.content)
    assert abs(len(samples) / 48000 - 10.0) <= 0.5
    check_stretches(samples, marks)
    await vod_playlist_is_complete(http, ready)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def check_stretches(samples: Any, marks: dict[str, float]) -> None:
    m = 0.4  # margin for the gate and the network around each change
    alone = tone_levels(samples, 0.3, marks["bob_on"] - m)
    assert alone["440"] > 0.5 and alone["660"] < 0.05, alone
    both = tone_levels(samples, marks["bob_on"] + m, marks["alice_off"] - m)
    assert both["440"] > 0.2 and both["660"] > 0.2, both
    bob_only = tone_levels(samples, marks["alice_off"] + m, marks["bob_off"] - m)
    assert bob_only["660"] > 0.5 and bob_only["440"] < 0.05, bob_only
    silent = tone_levels(samples, marks["bob_off"] + m, 9.8)
    assert silent["rms"] < 0.003, silent


async def vod_playlist_is_complete(http: httpx.AsyncClient, ready: dict[str, Any]) -> None:
    answer = await http.get(ready["hls_url"])
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    text = answer.text
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    urls = segment_urls(ready["hls_url"], text)
    assert len(urls) >= 5
    segment = await http.get(urls[0])
    assert segment.status_code == 200
    assert "immutable" in segment.headers["cache-control"]
    seconds = sum(float(line[8:].rstrip(",")) for line in text.splitlines() if "EXTINF" in line)
    assert abs(seconds - ready["duration_seconds"]) < 0.01


async def test_an_unrecorded_room_has_no_recording(
    make_server: Callable[..., LiveServer], http: httpx.AsyncClient
) -> None:
    server = make_server()
    created = await http.post(
        f"{server.url}/v1/rooms", json={"title": "Off the record"}, headers=auth("alice")
    )
    room = created.json()
    assert room["recorded"] is False
    answer = await recording(http, server, room["id"])
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "recording_not_found"
    assert (await recording(http, server, "AAAAAAAAAAAAAAAA")).status_code == 404
