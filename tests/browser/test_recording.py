"""Recordings in Chromium: the ended room's page plays its replay (hls.js, vendored)."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.helpers import poll
from tests.recording.helpers import recorded_room, recording_in, speaker
from tests.support import LiveServer, auth, wait_for

PLAYER = "document.querySelector('.replay-player')"


async def ended_replay(server: LiveServer) -> str:
    """A recorded room where alice played a tone for a few seconds, ended; its id."""
    room = await recorded_room(server)
    alice = await speaker(server, room, "alice", 440)
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            await recording_in(http, server, room["id"], "live")
            await wait_for(lambda: alice.rtc is not None and alice.rtc.sending, within=20)
            await asyncio.sleep(4)
            path = f"{server.url}/v1/rooms/{room['id']}/end"
            assert (await http.post(path, headers=auth("alice"))).status_code == 200
        finally:
            await alice.close()
        await recording_in(http, server, room["id"], "ready")
    return str(room["id"])


async def test_the_replay_plays_in_chromium(browsers: Browsers, server: LiveServer) -> None:
    room_id = await ended_replay(server)
    page = await browsers.page("bob", where=f"/rooms/{room_id}")
    await expect(page.locator(".replay-player")).to_be_visible()
    await expect(page.get_by_role("link", name="Download (.m4a)")).to_be_visible()
    engine = f"{PLAYER}.dataset.engine === 'hls.js'"
    await poll(lambda: page.evaluate(engine), "hls.js (vendored) plays the replay")
    await page.evaluate(f"{PLAYER}.muted = true")  # autoplay policy: muted media may play
    await page.evaluate(f"{PLAYER}.play()")
    await poll(lambda: page.evaluate(f"{PLAYER}.currentTime > 1.5"), "the replay plays")
    assert await page.evaluate(f"{PLAYER}.error") is None
    duration = await page.evaluate(f"{PLAYER}.duration")
    assert 3.0 < duration < 8.0, duration
    # The seek bar: jump near the end, playback goes on from there.
    await page.evaluate(f"{PLAYER}.currentTime = {PLAYER}.duration - 1.5")
    await poll(
        lambda: page.evaluate(f"{PLAYER}.ended || {PLAYER}.currentTime > {PLAYER}.duration - 1.2"),
        "seeking works",
    )
    assert await page.evaluate(f"{PLAYER}.error") is None


NO_WEBRTC = "delete window.RTCPeerConnection;"
LIVE = "document.querySelector('.hls-live')"


async def test_live_hls_when_webrtc_is_missing(browsers: Browsers, server: LiveServer) -> None:
    room = await recorded_room(server)
    alice = await speaker(server, room, "alice", 440)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await recording_in(http, server, room["id"], "live")
        page = await browsers.page("bob", where=f"/rooms/{room['id']}", init_script=NO_WEBRTC)
        await expect(page.locator(".badge-rec")).to_be_visible()
        await page.get_by_role("button", name="Listen over HLS").click()
        await poll(lambda: page.evaluate(f"{LIVE}?.dataset.engine === 'hls.js'"), "hls.js")
        await poll(lambda: page.evaluate(f"{LIVE}.currentTime > 1"), "live audio plays")
        assert await page.evaluate(f"{LIVE}.error") is None
    finally:
        await alice.close()
