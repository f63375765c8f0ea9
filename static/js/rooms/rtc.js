// Room audio over WebRTC with the server's SFU, using the "perfect negotiation" pattern.
//
// The browser is the *polite* peer: when its own offer collides with one from the server
// (glare), it rolls back and answers the server's offer; its change is renegotiated after.
// The first transceiver carries our microphone when we speak: it starts recvonly for
// listeners and becomes sendrecv with the mic track when we become a speaker (on the role
// event, or already while answering a server offer that says `publish: true`), so the
// microphone is asked for only then. Incoming speaker tracks play in <audio> elements;
// when the browser blocks autoplay, `onAutoplayBlocked` lets the page show "tap to listen".
//
// `rtc.restart` from the server (the media node serving us is gone, or we may speak now and
// speakers publish elsewhere) and a connection that fails both start a new peer connection
// and offer again: the server places it anew. Same socket, same microphone.

const GATHER_MS = 2000; // aiortc takes candidates in the SDP: wait for gathering, bounded
const RESTART_AFTER_FAILURE_MS = 1000; // then offer again on a new connection

export class RoomAudio {
  /**
   * @param {object} o
   * @param {RTCIceServer[]} o.iceServers
   * @param {(type: string, data: object) => void} o.signal   sends rtc.offer/answer/ice
   * @param {HTMLElement} o.container  where <audio> elements live
   * @param {(blocked: boolean) => void} o.onAutoplayBlocked
   * @param {(error: Error) => void} o.onMicError
   * @param {(state: string) => void} [o.onConnectionState]
   */
  constructor({ iceServers, signal, container, onAutoplayBlocked, onMicError, onConnectionState }) {
    this.signal = signal;
    this.container = container;
    this.onAutoplayBlocked = onAutoplayBlocked;
    this.onMicError = onMicError;
    this.onConnectionState = onConnectionState || (() => {});
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [] });
    this.makingOffer = false;
    this.offerGeneration = 0; // bumped by each offer and each rollback
    this.mic = null; // MediaStream from getUserMedia, while speaking
    this.muted = false;
    this.speaking = false;
    this.closed = false;
    this.blocked = false;
    this.queue = Promise.resolve(); // signaling messages are handled one at a time
    this.speakerChange = Promise.resolve();
    this.descriptionSent = false;
    this.audios = new Map(); // stream id -> <audio>
    this.transceiver = null;
    this.iceServers = iceServers || [];
    this.restartTimer = null;
    this.watch(this.pc);
  }

  watch(pc) {
    pc.onnegotiationneeded = () => this.pc === pc && this.negotiate();
    pc.onicecandidate = ({ candidate }) => {
      // Candidates gathered before our description left are inside its SDP already.
      if (this.pc === pc && this.descriptionSent && candidate) this.signal('rtc.ice', { candidate: candidate.toJSON() });
    };
    pc.ontrack = (event) => this.pc === pc && this.addRemote(event);
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      this.onConnectionState(pc.connectionState);
      clearTimeout(this.restartTimer);
      if (pc.connectionState === 'failed') this.restartTimer = setTimeout(() => this.pc === pc && this.restart(), RESTART_AFTER_FAILURE_MS);
    };
  }

  /** A new peer connection in place of this one (same microphone); it offers at once. */
  restart(publish = false) {
    if (this.closed) return;
    const old = this.pc;
    this.pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.offerGeneration += 1;
    this.descriptionSent = false;
    this.watch(this.pc);
    old.close();
    this.removeRemotes();
    const track = this.speaking && this.mic ? this.mic.getAudioTracks()[0] : null;
    this.transceiver = track
      ? this.pc.addTransceiver(track, { direction: 'sendrecv', streams: [this.mic] })
      : this.pc.addTransceiver('audio', { direction: 'recvonly' });
    if (publish && !this.speaking) this.setSpeaker(true);
  }

  /** Open the audio path: recvonly, or sendrecv with the mic if we start as a speaker. */
  async start(asSpeaker, muted = false) {
    this.muted = muted;
    if (asSpeaker && (await this.openMic())) {
      const [track] = this.mic.getAudioTracks();
      this.transceiver = this.pc.addTransceiver(track, { direction: 'sendrecv', streams: [this.mic] });
      this.speaking = true;
    } else {
      this.transceiver = this.pc.addTransceiver('audio', { direction: 'recvonly' });
    }
    // addTransceiver fires negotiationneeded: our first offer goes out from there.
  }

  async openMic() {
    if (this.mic) return true;
    try {
      this.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: false,
      });
    } catch (e) {
      this.onMicError(e);
      return false;
    }
    this.applyMute();
    // Pages that capture the microphone may autoplay: audio that was blocked can start now.
    if (this.blocked) this.resume();
    return !this.closed;
  }

  /** Become a speaker (asks for the microphone now) or go back to listening (releases it). */
  setSpeaker(on) {
    // One change at a time: the role event and the server's offer may both ask for it.
    this.speakerChange = this.speakerChange.then(() => this.applySpeaker(on));
    return this.speakerChange;
  }

  async applySpeaker(on) {
    if (this.closed || on === this.speaking) return;
    if (on) {
      if (!(await this.openMic()) || this.closed) return;
      this.speaking = true;
      const [track] = this.mic.getAudioTracks();
      await this.transceiver.sender.replaceTrack(track);
      this.transceiver.sender.setStreams?.(this.mic);
      this.transceiver.direction = 'sendrecv'; // fires negotiationneeded
    } else {
      this.speaking = false;
      this.transceiver.direction = 'recvonly';
      await this.transceiver.sender.replaceTrack(null);
      this.releaseMic();
    }
  }

  setMuted(muted) {
    this.muted = muted;
    this.applyMute();
  }

  applyMute() {
    for (const t of this.mic ? this.mic.getAudioTracks() : []) t.enabled = !this.muted;
  }

  releaseMic() {
    for (const t of this.mic ? this.mic.getTracks() : []) t.stop();
    this.mic = null;
  }

  // ---- negotiation --------------------------------------------------------------------
  async waitForCandidates() {
    const pc = this.pc;
    if (pc.iceGatheringState === 'complete') return;
    await new Promise((resolve) => {
      const timer = setTimeout(done, GATHER_MS);
      function done() {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      }
      function check() {
        if (pc.iceGatheringState === 'complete') done();
      }
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  async negotiate() {
    if (this.closed) return;
    const pc = this.pc;
    try {
      this.makingOffer = true;
      const generation = ++this.offerGeneration;
      await pc.setLocalDescription();
      await this.waitForCandidates();
      // A server offer may have rolled ours back meanwhile: then there is nothing to send,
      // and negotiationneeded fires again once the state is stable.
      if (this.closed || generation !== this.offerGeneration || pc.signalingState !== 'have-local-offer') return;
      this.signal('rtc.offer', { sdp: pc.localDescription.sdp });
      this.descriptionSent = true;
    } catch (e) {
      console.warn('rtc: offer failed', e);
    } finally {
      this.makingOffer = false;
    }
  }

  /** Handle rtc.offer / rtc.answer / rtc.ice / rtc.restart from the server, in order. */
  handle(msg) {
    this.queue = this.queue.then(() => this.handleOne(msg)).catch((e) => console.warn('rtc:', msg.type, e));
    return this.queue;
  }

  async handleOne(msg) {
    if (this.closed) return;
    if (msg.type === 'rtc.restart') return this.restart(msg.publish === true);
    const pc = this.pc;
    if (msg.type === 'rtc.offer' || msg.type === 'rtc.answer') {
      const description = { type: msg.type === 'rtc.offer' ? 'offer' : 'answer', sdp: msg.sdp };
      if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') return; // stale
      const collision = description.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
      if (collision) {
        // Polite: roll back our offer and take the server's.
        // (If our offer is still being set, setRemoteDescription rolls it back implicitly.)
        this.offerGeneration += 1;
        if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
      }
      await pc.setRemoteDescription(description);
      if (description.type === 'offer') {
        // The server says we may publish now (we just became a speaker): attach the
        // microphone before answering, which saves a second negotiation of our own.
        if (msg.publish === true && !this.speaking) await this.setSpeaker(true);
        await pc.setLocalDescription();
        await this.waitForCandidates();
        this.signal('rtc.answer', { sdp: pc.localDescription.sdp });
        this.descriptionSent = true;
      }
    } else if (msg.type === 'rtc.ice') {
      try {
        await pc.addIceCandidate(msg.candidate || null);
      } catch (e) {
        if (pc.remoteDescription) console.warn('rtc: bad candidate', e);
      }
    }
  }

  // ---- remote audio -------------------------------------------------------------------
  addRemote(event) {
    const stream = event.streams[0] || new MediaStream([event.track]);
    let audio = this.audios.get(stream.id);
    if (!audio) {
      audio = document.createElement('audio');
      audio.autoplay = true;
      audio.dataset.stream = stream.id;
      this.audios.set(stream.id, audio);
      this.container.append(audio);
      stream.addEventListener('removetrack', () => {
        if (stream.getTracks().length === 0) {
          audio.remove();
          this.audios.delete(stream.id);
        }
      });
    }
    audio.srcObject = stream;
    this.play(audio);
  }

  play(audio) {
    audio.play().then(
      () => this.setBlocked(false),
      (e) => {
        if (e.name === 'NotAllowedError') this.setBlocked(true);
      },
    );
  }

  setBlocked(blocked) {
    if (this.blocked === blocked) return;
    this.blocked = blocked;
    this.onAutoplayBlocked(blocked);
  }

  /** Called from a click ("tap to listen"): a user gesture lets audio play. */
  resume() {
    for (const audio of this.audios.values()) this.play(audio);
    if (this.audios.size === 0) this.setBlocked(false);
  }

  /** Bytes of audio received so far (all speakers): for tests and the debug overlay. */
  async inboundAudioBytes() {
    let total = 0;
    const stats = await this.pc.getStats();
    stats.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') total += r.bytesReceived || 0;
    });
    return total;
  }

  /** Bytes of our microphone audio sent so far. */
  async outboundAudioBytes() {
    let total = 0;
    const stats = await this.pc.getStats();
    stats.forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'audio') total += r.bytesSent || 0;
    });
    return total;
  }

  removeRemotes() {
    for (const audio of this.audios.values()) {
      audio.srcObject = null;
      audio.remove();
    }
    this.audios.clear();
  }

  close() {
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.releaseMic();
    this.removeRemotes();
    this.pc.close();
  }
}
