"""A real browser through the relay: Debian's Chromium with its fake microphone.

The pages speak the room protocol with a small inline script (not the web client): a
polite perfect-negotiation peer, as docs/relay.md describes for clients. The speaker and
the listener are on two server processes: the listener's audio comes over the trunk.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from rooms.media.directory import Directory
from rooms.media.node import VIEW_SECONDS
from server.settings import Settings
from server.store import Keys, connect
from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS
from tests.media.client import RoomClient, room_socket
from tests.support import ServerProcess, auth, settings_env, token, wait_for

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


# The web client's own audio (static/js/rooms/rtc.js) on a bare page: the room socket
# carries its signaling, as the room page does.
WEB_CLIENT = """
async ({url}) => {
  const { RoomAudio } = await import('/js/rooms/rtc.js');
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const box = document.createElement('div');
  document.body.append(box);
  const audio = new RoomAudio({
    iceServers: [], container: box, onAutoplayBlocked() {}, onMicError() {},
    signal: (type, data) => ws.send(JSON.stringify({ type, ...data })),
  });
  window.room = { ws, audio, restarts: 0 };
  ws.onmessage = ({ data }) => {
    const m = JSON.parse(data);
    if (m.type === 'rtc.restart') window.room.restarts += 1;
    if (m.type.startsWith('rtc.')) audio.handle(m);
  };
  await audio.start(false);
}
"""


@pytest.fixture
def two_processes(
    make_settings: Callable[..., Settings],
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The origin-to-be, which takes no listeners, and a process for them."""
    env = settings_env(make_settings())
    a = ServerProcess({**env, "EPHEMERA_NODE_ID": "a", "EPHEMERA_MEDIA_NODE_MAX_LISTENERS": "0"})
    b = ServerProcess({**env, "EPHEMERA_NODE_ID": "b"})
    try:
        a.start()
        b.start()
        time.sleep(2 * VIEW_SECONDS)  # each sees the other in the registry
        yield a, b
    finally:
        a.stop()
        b.stop()


async def open_participant(
    browser: Browser, page_url: str, ws_url: str, user: str, *, speak: bool
) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(page_url + "/healthz")  # an http://127.0.0.1 origin: a secure context
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


async def test_browser_speaker_is_heard_by_browser_listener_on_another_process(
    browser: Browser, two_processes: tuple[ServerProcess, ServerProcess]
) -> None:
    a, b = two_processes
    async with httpx.AsyncClient(base_url=a.url, headers=auth("alice")) as http:
        answer = await http.post("/v1/rooms", json={"title": "Browser relay"})
    room = answer.json()
    on_a, on_b = room_socket(a.ws_url, room["id"]), room_socket(b.ws_url, room["id"])
    # alice publishes to a (the origin); bob's socket and media are on b (an edge).
    alice = await open_participant(browser, a.url, on_a, "alice", speak=True)
    bob = await open_participant(browser, a.url, on_b, "bob", speak=False)

    async def bob_hears(index: int) -> bool:
        return await grows(bob, index)

    await wait_for(lambda: bob_hears(0), within=30, interval=0.2)
    await wait_for(lambda: reported(bob), within=20, interval=0.5)

    # A second speaker (aiortc) makes the server add a slot and re-offer to both pages:
    # Chrome accepts our re-offers and alice's microphone keeps flowing afterwards.
    carol = RoomClient(on_a, "carol")  # her listener's media on b; as a speaker, on a
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
        assert len(carol.restarts) == 1  # moved to the origin to speak
        await wait_for(lambda: carol.rtc is not None and carol.rtc.packets > 50, within=30)
        events = json.dumps(await bob.evaluate("window.room.events"))
        assert '"welcome"' in events
    finally:
        await carol.close()
        await alice.context.close()
        await bob.context.close()


async def test_the_web_client_moves_when_its_edge_dies(
    browser: Browser, make_settings: Callable[..., Settings]
) -> None:
    """rtc.restart through the web client's RoomAudio, in Chromium: its media node is
    killed, the router on its socket's process tells it, it connects again elsewhere."""
    settings = make_settings()
    env = settings_env(settings)
    assert settings.redis_url is not None
    redis, keys = connect(settings.redis_url, settings), Keys(settings.key_prefix)
    caps = ("0", "5", "5")  # the first takes no listeners: they go to an edge
    procs = [
        ServerProcess({**env, "EPHEMERA_NODE_ID": f"n{i}", "EPHEMERA_MEDIA_NODE_MAX_LISTENERS": c})
        for i, c in enumerate(caps)
    ]
    speaker = None
    try:
        for proc in procs:
            proc.start()
        await asyncio.sleep(2 * VIEW_SECONDS)
        origin = procs[0]
        async with httpx.AsyncClient(base_url=origin.url, headers=auth("alice")) as http:
            room = (await http.post("/v1/rooms", json={"title": "Moving"})).json()
        url = room_socket(origin.ws_url, room["id"])
        speaker = RoomClient(url, "alice")
        await speaker.connect()
        await speaker.start_audio(speak=True)
        page = await (await browser.new_context()).new_page()
        await page.goto(origin.url + "/healthz")
        await page.evaluate(WEB_CLIENT, {"url": f"{url}?token={token('bob')}"})
        bytes_in = "window.room.audio.inboundAudioBytes()"

        async def hears(more_than: int) -> bool:
            return bool(await page.evaluate(bytes_in) > more_than + 2000)

        await wait_for(lambda: hears(0), within=30, interval=0.2)
        [edge] = (await Directory(redis, keys, 3.0).where(room["id"])).edges
        killed = procs[int(edge[1])].proc  # node ids are n<index>-<run>
        assert killed is not None
        killed.kill()
        await wait_for(lambda: page.evaluate("window.room.restarts === 1"), within=30)
        await wait_for(lambda: hears(0), within=30, interval=0.2)  # on its new connection
        await page.context.close()
    finally:
        if speaker is not None:
            await speaker.close()
        for proc in procs:
            proc.stop()
        await redis.aclose()
