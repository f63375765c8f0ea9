"""A real browser through the relay: Debian's Chromium with its fake microphone.

The pages speak the room protocol with a small inline script (not the web client): a
polite perfect-negotiation peer, as docs/relay.md describes for clients.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS
from tests.media.client import RoomClient
from tests.support import LiveServer, token, wait_for

pytestmark = pytest.mark.browser

# Real autoplay: the listener page is never clicked, so the policy is lifted for this test.
ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]

# A room participant in 45 lines: join, offer, answer server offers (rolling back our own
# offer on glare: the client is the polite side), trickle ICE, play what arrives.
JOIN = """
async ({url, speak}) => {
  const ws = new WebSocket(url);
  const opened = new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const pc = new RTCPeerConnection({iceServers: []});
  const send = (m) => ws.send(JSON.stringify(m));
  window.room = {ws, pc, events: [], send};
  pc.onicecandidate = ({candidate}) =>
    send({type: "rtc.ice", candidate: candidate ? candidate.toJSON() : null});
  pc.ontrack = ({track}) => {
    const audio = new Audio();
    audio.srcObject = new MediaStream([track]);
    audio.play().catch(() => {});
  };
  const upstream = pc.addTransceiver("audio", {direction: speak ? "sendrecv" : "recvonly"});
  if (speak) {
    const mic = await navigator.mediaDevices.getUserMedia({audio: true});
    await upstream.sender.replaceTrack(mic.getAudioTracks()[0]);
  }
  ws.onmessage = async ({data}) => {
    const m = JSON.parse(data);
    if (m.type === "rtc.answer") {
      await pc.setRemoteDescription({type: "answer", sdp: m.sdp});
    } else if (m.type === "rtc.offer") {
      await pc.setRemoteDescription({type: "offer", sdp: m.sdp});  // implicit rollback
      await pc.setLocalDescription();
      send({type: "rtc.answer", sdp: pc.localDescription.sdp});
    } else {
      window.room.events.push(m);
    }
  };
  await opened;
  await pc.setLocalDescription();
  send({type: "rtc.offer", sdp: pc.localDescription.sdp});
}
"""

INBOUND = """
async () => {
  const stats = await window.room.pc.getStats();
  const out = [];
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      out.push({mid: s.mid, bytes: s.bytesReceived || 0, level: s.audioLevel || 0});
    }
  });
  return out.sort((a, b) => Number(a.mid) - Number(b.mid));
}
"""


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        await b.close()


async def open_participant(
    browser: Browser, server: LiveServer, ws_url: str, user: str, *, speak: bool
) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(server.url + "/healthz")  # an http://127.0.0.1 origin: a secure context
    await page.evaluate(JOIN, {"url": f"{ws_url}?token={token(user)}", "speak": speak})
    return page


REMOTE_OUTBOUND = """
async () => {
  const stats = await window.room.pc.getStats();
  const out = [];
  stats.forEach((s) => {
    if (s.type === "remote-outbound-rtp") out.push({packets: s.packetsSent, bytes: s.bytesSent});
  });
  return out;
}
"""


async def reported(page: Page) -> bool:
    """Chrome got RTCP sender reports from the relay: its remote-outbound-rtp stats."""
    remote: list[dict[str, Any]] = await page.evaluate(REMOTE_OUTBOUND)
    return any(r["packets"] > 0 and r["bytes"] > 0 for r in remote)


async def inbound(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await page.evaluate(INBOUND)
    return result


async def grows(page: Page, index: int) -> bool:
    """The listener's inbound audio ``index`` keeps arriving with an audio level above 0."""
    first = await inbound(page)
    if len(first) <= index:
        return False
    await page.wait_for_timeout(500)
    second = await inbound(page)
    return bool(second[index]["bytes"] > first[index]["bytes"] and second[index]["level"] > 0)


async def hand_raised(page: Page, user: str) -> bool:
    events: list[dict[str, Any]] = await page.evaluate("window.room.events")
    return any(
        e["type"] == "participant.updated"
        and e["participant"]["user_id"] == user
        and e["participant"]["hand_raised"]
        for e in events
    )


async def test_browser_speaker_is_heard_by_browser_listener(
    browser: Browser, media_server: LiveServer
) -> None:
    async with media_server.client("alice") as http:
        answer = await http.post("/v1/rooms", json={"title": "Browser relay"})
    room = answer.json()
    alice = await open_participant(browser, media_server, room["ws_url"], "alice", speak=True)
    bob = await open_participant(browser, media_server, room["ws_url"], "bob", speak=False)

    async def bob_hears(index: int) -> bool:
        return await grows(bob, index)

    await wait_for(lambda: bob_hears(0), within=30, interval=0.2)
    await wait_for(lambda: reported(bob), within=20, interval=0.5)

    # A second speaker (aiortc) makes the server add a slot and re-offer to both pages:
    # Chrome accepts our re-offers and alice's microphone keeps flowing afterwards.
    carol = RoomClient(room["ws_url"], "carol")
    try:
        await carol.connect()
        await carol.start_audio(tone=660)
        await carol.act("hand.raise")
        await wait_for(lambda: hand_raised(alice, "carol"), within=10, interval=0.1)
        await alice.evaluate(
            "(m) => window.room.send(m)", {"type": "hand.accept", "user_id": "carol"}
        )
        await wait_for(lambda: bob_hears(1), within=30, interval=0.2)
        await wait_for(lambda: bob_hears(0), within=30, interval=0.2)
        assert carol.rtc is not None
        await wait_for(lambda: carol.rtc is not None and carol.rtc.packets > 50, within=30)
        events = json.dumps(await bob.evaluate("window.room.events"))
        assert '"welcome"' in events
    finally:
        await carol.close()
        await alice.context.close()
        await bob.context.close()
