"""The client's WebRTC negotiation (static/js/rooms/rtc.js) under glare, in real Chromium.

The room server is the impolite peer: when both sides offer at once it ignores the client's
offer. The client must be polite: roll back its own offer, answer the server's, and still
get its microphone negotiated afterwards. Here the "server" is a second RTCPeerConnection in
the same page playing exactly that role, and the network between them is held back so that
both offers are in flight at the same time, every time.
"""

from __future__ import annotations

from tests.browser.conftest import Browsers

GLARE = """
async () => {
  const { RoomAudio } = await import('/js/rooms/rtc.js');
  const log = [];
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (pred, what) => {
    for (let i = 0; i < 300; i++) { if (await pred()) return; await sleep(50); }
    throw new Error('never happened: ' + what);
  };
  const gathered = (pc) => until(() => pc.iceGatheringState === 'complete', 'ICE gathering');
  const inbound = async (pc) => {
    let n = 0;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') n += r.bytesReceived || 0;
    });
    return n;
  };

  // The impolite side, as the room server behaves.
  const server = new RTCPeerConnection();
  let audio;
  async function onServer(msg) {
    log.push(`server got ${msg.type} in ${server.signalingState}`);
    if (msg.type === 'rtc.offer') {
      if (server.signalingState !== 'stable') { log.push('server ignored the offer'); return; }
      await server.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      await server.setLocalDescription();
      await gathered(server);
      audio.handle({ type: 'rtc.answer', sdp: server.localDescription.sdp });
    } else if (msg.type === 'rtc.answer') {
      await server.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
    }
  }
  let held = null; // while an array, client -> server messages wait in it
  let wire = Promise.resolve();
  const signal = (type, data) => {
    const msg = { type, ...data };
    if (held) held.push(msg);
    else wire = wire.then(() => onServer(msg));
  };
  const box = document.createElement('div');
  document.body.append(box);
  audio = new RoomAudio({
    iceServers: [], signal, container: box,
    onAutoplayBlocked() {}, onMicError(e) { log.push('mic error ' + e.name); },
  });

  // 1. A listener joins: recvonly offer from the client, answered by the server.
  await audio.start(false);
  await until(() => audio.pc.signalingState === 'stable' && audio.pc.remoteDescription, 'join');

  // 2. Glare: the server adds a speaker's track and offers while the client, just made a
  //    speaker, offers its microphone. Neither offer has arrived when the other is sent.
  held = [];
  const ctx = new AudioContext();
  const tone = ctx.createOscillator();
  const out = ctx.createMediaStreamDestination();
  tone.connect(out);
  tone.start();
  server.addTrack(out.stream.getAudioTracks()[0], out.stream);
  await server.setLocalDescription();
  await gathered(server);
  await audio.setSpeaker(true);
  await until(() => held.some((m) => m.type === 'rtc.offer'), 'the client offers');
  const clientStateAtGlare = audio.pc.signalingState;
  await audio.handle({ type: 'rtc.offer', sdp: server.localDescription.sdp });
  const queued = held;
  held = null;
  for (const m of queued) wire = wire.then(() => onServer(m));
  await wire;

  // 3. Both directions end up negotiated and audio flows both ways.
  const mic = audio.pc.getTransceivers()[0];
  await until(() => audio.pc.signalingState === 'stable' && server.signalingState === 'stable'
    && mic.currentDirection === 'sendrecv', 'the microphone is negotiated');
  const serverHeard = await inbound(server);
  const clientHeard = await inbound(audio.pc);
  await until(async () => (await inbound(server)) > serverHeard + 500, 'server hears the mic');
  await until(async () => (await inbound(audio.pc)) > clientHeard + 500, 'client hears the server');
  const result = {
    log,
    clientStateAtGlare,
    queued: queued.map((m) => m.type),
    playing: [...box.querySelectorAll('audio')].length,
    micSending: audio.mic.getAudioTracks()[0].readyState,
  };
  audio.close();
  server.close();
  await ctx.close();
  return result;
}
"""


async def test_client_is_polite_in_glare(browsers: Browsers) -> None:
    page = await browsers.page("alice")
    result = await page.evaluate(GLARE)
    # Both offers were in flight at once: the client had its own offer out...
    assert result["clientStateAtGlare"] == "have-local-offer", result
    # ...rolled it back and answered the server's (its stale offer went out before the answer)
    assert result["queued"][:1] == ["rtc.offer"] and "rtc.answer" in result["queued"], result
    # ...which the impolite server ignored,
    assert "server ignored the offer" in result["log"], result
    # and still both directions carry audio in the end (asserted in the page by byte counts).
    assert result["playing"] >= 1, result
    assert result["micSending"] == "live", result
