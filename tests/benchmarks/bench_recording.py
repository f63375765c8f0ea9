"""Recording benchmark: what one room's mix costs, and how far behind live HLS runs.

**Mix CPU.** The real recorder (``rooms.recording.recorder.Recorder``: one Opus decoder per
speaker, the numpy mix, AAC-LC into 2 s fMP4 fragments, every segment and playlist written
through the blob storage and listed in Redis) is fed ``SECONDS`` of three speakers' 20 ms
Opus packets (tones, encoded beforehand with libopus as a browser would) and pumped every
100 ms of the recording's timeline, as fast as it goes. CPU time of this process over
recorded time = share of one core per room. Baseline in the same run: the same pipeline
with ffmpeg's default AAC coder (``twoloop``) instead of the ``fast`` one the recorder uses.

**Live HLS latency.** A real server with a recorded room and a real aiortc speaker; a
client polls the live playlist every 100 ms for ``LIVE_SECONDS``. At each poll the newest
recorded audio it can fetch is ``lag`` seconds old (now - start - listed duration). A
player that keeps ``HOLD_BACK`` behind the playlist's end (the web client's hls.js
``liveSyncDuration``, so it never stalls between two 2 s segments) plays audio
``lag + HOLD_BACK`` after it was spoken: the figure is the mean. A tone onset checks that
the recording's timeline is the wall clock's (where the onset is in the decoded segments
against when the speaker unmuted).

Run: ``ephemera bench --only recording`` (about a minute).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from rooms.control.rules import SpeakerPolicy
from rooms.control.state import Meta
from rooms.recording.encoder import FragmentEncoder
from rooms.recording.mixer import FRAME, RATE
from rooms.recording.recorder import Recorder
from rooms.recording.store import RecordingStore
from server.settings import Settings
from server.store import Keys, connect
from stories.storage import LocalStorage
from tests.recording.helpers import decode, recorded_room, recording_in, segment_urls, speaker
from tests.support import LiveServer, free_port, wait_for

SECONDS = 60
SPEAKERS = (440.0, 550.0, 660.0)
LIVE_SECONDS = 20
HOLD_BACK = 3.0  # static/js/rooms/hls.js: LIVE.liveSyncDuration


def opus_packets(hz: float, seconds: int) -> list[bytes]:
    """``seconds`` of a tone as 20 ms Opus packets (mono, 32 kb/s, like a browser's)."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format, ctx.bit_rate = RATE, "mono", "s16", 32_000
    ctx.time_base = fractions.Fraction(1, RATE)
    packets = []
    for i in range(seconds * 50):
        t = (np.arange(FRAME) + i * FRAME) / RATE
        pcm = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts = RATE, i * FRAME
        packets += [bytes(p) for p in ctx.encode(frame)]
    return packets


async def mix_cpu(settings: Settings, tmp: Path, coder: str, streams: list[list[bytes]]) -> float:
    """CPU seconds per recorded second of one room with these speakers."""
    assert settings.redis_url is not None
    redis = connect(settings.redis_url, settings)
    meta = Meta(
        f"bench{coder:0>11}"[-16:],
        "b",
        "",
        "en",
        "h",
        SpeakerPolicy("anyone_can_request"),
        "live",
        0.0,
    )
    store = RecordingStore(redis, Keys(settings.key_prefix))
    recorder = Recorder(meta, store, LocalStorage(tmp / coder), time.time(), FragmentEncoder(coder))
    start = recorder.start
    cpu = time.process_time()
    for tick in range(SECONDS * 10):  # every 100 ms of the timeline: 5 packets per speaker
        for n in range(tick * 5, tick * 5 + 5):
            for user, packets in enumerate(streams):
                recorder.tap(f"s{user}", packets[n], start + n * FRAME)
        await recorder.pump(until=start + (tick + 1) * 5 * FRAME)
    used = time.process_time() - cpu
    await recorder.finish(ended_at=recorder.started_at + SECONDS)
    await redis.aclose()
    return used / SECONDS


async def live_lag(server: LiveServer) -> tuple[list[float], float]:
    """(lag samples at each poll, onset offset: where the onset is minus when it was)."""
    room = await recorded_room(server)
    alice = await speaker(server, room, "alice", 440)
    lags: list[float] = []
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            live = await recording_in(http, server, room["id"], "live")
            started = _ts(live["started_at"])
            await wait_for(lambda: alice.rtc is not None and alice.rtc.sending, within=20)
            await alice.act("mute")
            await asyncio.sleep(2.0)
            onset = time.time()
            await alice.act("unmute")
            deadline = time.time() + LIVE_SECONDS
            text = ""
            while time.time() < deadline:
                text = (await http.get(live["hls_url"])).text
                listed = sum(float(x[8:].rstrip(",")) for x in text.splitlines() if "EXTINF" in x)
                lags.append(time.time() - started - listed)
                await asyncio.sleep(0.1)
            offset = await onset_offset(http, live["hls_url"], text, onset - started)
    finally:
        await alice.close()
    return lags, offset


async def onset_offset(http: httpx.AsyncClient, url: str, text: str, expected: float) -> float:
    init = await http.get(url.replace("index.m3u8", "init.mp4"))
    body = b"".join([(await http.get(u)).content for u in segment_urls(url, text)])
    samples = decode(init.content + body)
    level = np.abs(samples)
    loud = np.flatnonzero(level[int(0.5 * RATE) :] > 0.05)  # after the speaker's first blip
    return float((loud[0] + 0.5 * RATE) / RATE - expected) if len(loud) else float("nan")


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


@pytest.mark.bench
async def test_recording_benchmark(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    streams = [opus_packets(hz, SECONDS) for hz in SPEAKERS]
    baseline = await mix_cpu(settings, tmp_path, "twoloop", streams)
    fast = await mix_cpu(settings, tmp_path, "fast", streams)
    port = free_port()
    server = LiveServer(make_settings(public_base_url=f"http://127.0.0.1:{port}"), port=port)
    server.start()
    try:
        lags, offset = await live_lag(server)
    finally:
        server.stop()
    mean_lag = sum(lags) / len(lags)
    latency = mean_lag + HOLD_BACK
    print()
    print(
        f"recording benchmark: {len(SPEAKERS)} speakers, {SECONDS} s of 20 ms Opus packets; "
        f"baseline (ffmpeg's default AAC coder) {100 * baseline:.2f} % of a core, "
        f"recorder {100 * fast:.2f} % ({fast / baseline:.2f}x the baseline)"
    )
    print(
        f"live playlist: newest fetchable audio behind real time: mean {mean_lag:.2f} s, "
        f"max {max(lags):.2f} s over {LIVE_SECONDS} s; player hold-back {HOLD_BACK:.1f} s; "
        f"tone onset found {offset:+.2f} s from when the speaker unmuted"
    )
    print(
        f"recording summary: mix CPU per room with 3 speakers {100 * fast:.2f} % of a core; "
        f"live HLS latency {latency:.1f} s"
    )
