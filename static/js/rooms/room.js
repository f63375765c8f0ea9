// The room page (/rooms/<id>, which is also the share link). It holds one state, changed
// only by the pure reducer (state.js) with each server message and each fact the page
// learns; the views (views/*.js) draw that state; this module owns what has effects: the
// WebSocket (socket.js), the audio (rtc.js), timers, toasts and HTTP calls.
//
//   server message ──> reduce(state, message) ──> effects (audio, toasts) ──> views
//
// Which buttons exist is decided by the server: its `actions` message (docs/protocol.md).

import { api, describeError } from '../api.js';
import { here } from '../router.js';
import { session } from '../session.js';
import { renderSignIn } from '../signin.js';
import { h, mount, toast } from '../ui.js';
import { RoomAudio } from './rtc.js';
import { RoomSocket } from './socket.js';
import { initialState, may, mine, onStage, reduce } from './state.js';
import { renderHands, renderListeners } from './views/audience.js';
import { renderBanners } from './views/banners.js';
import { renderControls } from './views/controls.js';
import { floatReaction } from './views/floats.js';
import { renderHeader } from './views/header.js';
import { previewIntro, renderOver, renderScheduled } from './views/panels.js';
import { openPerson } from './views/person.js';
import { listenLive, renderReplay } from './views/replay.js';
import { renderStage } from './views/stage.js';

const enc = encodeURIComponent;
const POLL_MS = 5000; // a scheduled room's page checks whether it started
const CLOSED = {
  4403: 'You cannot join this room.',
  4409: 'You joined this room from another tab or device.',
};

export async function renderRoom(view, roomId) {
  // Someone opened a share link without being signed in: a public preview, then sign-in.
  if (!session.user) return renderSignIn(view, { next: here(), intro: await previewIntro(roomId) });
  let room;
  try {
    room = await api(`/v1/rooms/${enc(roomId)}`);
  } catch (e) {
    const back = h('a', { class: 'btn', href: '/' }, 'Back to rooms');
    mount(view, h('div', { class: 'panel', role: 'alert' }, h('h1', {}, 'Room unavailable'), h('p', {}, describeError(e)), back));
    return null;
  }
  const page = new RoomPage(view, room);
  return () => page.destroy();
}

class RoomPage {
  constructor(view, room) {
    this.state = initialState(room, session.user.user_id);
    this.socket = null;
    this.audio = null;
    this.person = null; // the open participant sheet
    this.pollTimer = null;
    this.shown = null; // which body is drawn: live, scheduled, or the over sentence
    window.ephemeraRoom = this; // a handle for devtools and the browser tests
    this.build(view);
    this.start();
  }

  destroy() {
    this.closeConnections();
    this.person?.close();
    if (window.ephemeraRoom === this) window.ephemeraRoom = null;
  }

  build(view) {
    this.header = h('header', { class: 'room-head' });
    this.banners = h('div', { class: 'room-banners', 'aria-live': 'polite' });
    this.stageTitle = h('h2', { id: 'stage-title' }, 'On stage');
    this.stage = h('ul', { class: 'stage', 'aria-label': 'Speakers' });
    this.stageSection = h('section', { class: 'stage-section', 'aria-labelledby': 'stage-title' }, this.stageTitle, this.stage);
    this.hands = h('section', { class: 'hands', 'aria-labelledby': 'hands-title', hidden: true });
    this.listeners = h('section', { class: 'listeners', 'aria-labelledby': 'listeners-title' });
    this.body = h('div', { class: 'room-body' });
    this.controls = h('div', { class: 'room-controls', role: 'toolbar', 'aria-label': 'Room controls' });
    this.floats = h('div', { class: 'floats', 'aria-hidden': 'true' });
    this.audioBox = h('div', { class: 'audio-box', hidden: true });
    const room = h('div', { class: 'room', dataset: { roomId: this.state.room.id } }, this.header, this.banners, this.body, this.controls, this.floats, this.audioBox);
    mount(view, room);
  }

  // ---- the state ----------------------------------------------------------------------
  dispatch(message) {
    const before = this.state;
    this.state = reduce(before, message);
    this.effects(before, this.state);
    this.render();
  }

  effects(before, now) {
    if (now.welcomes !== before.welcomes) this.startAudio();
    else this.followMyRole(mine(before), mine(now));
    for (const notice of now.notices) {
      if (notice.kind === 'reaction') floatReaction(this.floats, this.stage, notice.userId, notice.emoji);
      else toast(notice.text, notice.kind === 'error' ? 'error' : 'info');
      if (notice.kind === 'error') console.warn(`room: the server refused a message: ${notice.code}: ${notice.text}`);
    }
    if (now.over && !before.over) this.closeConnections();
  }

  render() {
    const s = this.state;
    const send = (type, data) => this.send(type, data);
    renderHeader(this.header, s);
    renderBanners(this.banners, s, { send, resume: () => this.audio?.resume(), listenHls: () => this.listenHls() });
    renderControls(this.controls, s, { send, muteSelf: () => this.muteSelf() });
    if (s.over) return this.showBody(`over:${s.over.text}`, () => this.showOver(s));
    if (s.room.state !== 'live') return;
    this.showBody('live', () => mount(this.body, this.stageSection, this.hands, this.listeners));
    const open = (userId) => (this.person = openPerson(userId, this.state, send));
    renderStage(this.stageTitle, this.stage, s, open);
    renderHands(this.hands, s, send);
    renderListeners(this.listeners, s, open);
    if (this.person?.isOpen()) this.person.update(s);
  }

  showOver(s) {
    renderOver(this.body, s.over, () => this.retry());
    if (!s.room.recorded || s.room.state !== 'ended') return;
    this.stopReplay = renderReplay(this.body.appendChild(h('div', { class: 'replay-box' })), s.room.id);
  }

  /** WebRTC failed (or is missing): the recorded room's live HLS instead. */
  async listenHls() {
    this.audio?.close();
    this.audio = null;
    this.stopHls?.();
    this.stopHls = await listenLive(this.audioBox, this.state.room.id, (text) => toast(text, 'error'));
  }

  showBody(which, draw) {
    if (this.shown === which) return;
    this.shown = which;
    draw();
  }

  // ---- lifecycle ----------------------------------------------------------------------
  start() {
    const r = this.state.room;
    if (r.state === 'live') this.join();
    else if (r.state === 'scheduled') this.showScheduled();
    else this.dispatch({ type: 'client.over', text: r.ended_reason === 'cancelled' ? 'This room was cancelled.' : 'This room has ended.' });
  }

  showScheduled() {
    this.shown = 'scheduled';
    this.dispatch({ type: 'client.connection', state: 'idle' });
    const r = this.state.room;
    renderScheduled(this.body, r, r.host === this.state.me, (room) => this.roomChanged(room));
    clearInterval(this.pollTimer);
    this.pollTimer = setInterval(async () => {
      const fresh = await api(`/v1/rooms/${enc(r.id)}`).catch(() => null); // keep polling
      if (fresh && fresh.state !== this.state.room.state) this.roomChanged(fresh);
    }, POLL_MS);
  }

  /** The room read over HTTP changed state (started, cancelled, edited): show it anew. */
  roomChanged(room) {
    clearInterval(this.pollTimer);
    this.dispatch({ type: 'client.room', room });
    this.start();
  }

  join() {
    // Any server process takes the room's socket, wherever the room's audio is served.
    const path = `/v1/rooms/${enc(this.state.room.id)}/ws`;
    this.render();
    this.socket = new RoomSocket(
      path,
      (msg) => this.onMessage(msg),
      (state, info) => this.onSocketState(state, info),
    );
  }

  onMessage(msg) {
    if (msg.type.startsWith('rtc.')) this.audio?.handle(msg);
    else this.dispatch(msg);
  }

  onSocketState(state, info = {}) {
    this.dispatch({ type: 'client.connection', state });
    if (state !== 'closed') return;
    this.audio?.close();
    this.audio = null;
    if (!info.final || this.state.over) return;
    if (info.refused) this.refusedJoin();
    else this.dispatch({ type: 'client.over', text: CLOSED[info.code] || info.reason || 'Disconnected from the room.', retry: info.code !== 4403 });
  }

  /** The server would not let us in (an HTTP answer before the handshake): say why if the
   *  room's state explains it. */
  async refusedJoin() {
    this.socket = null;
    const fresh = await api(`/v1/rooms/${enc(this.state.room.id)}`).catch(() => null);
    if (fresh) this.dispatch({ type: 'client.room', room: fresh });
    if (fresh?.state === 'scheduled') return this.showScheduled();
    const text = fresh?.state === 'ended' ? 'This room has ended.' : 'You cannot join this room (you may have been removed from it).';
    this.dispatch({ type: 'client.over', text, retry: fresh?.state !== 'ended' });
  }

  async retry() {
    let room;
    try {
      room = await api(`/v1/rooms/${enc(this.state.room.id)}`);
    } catch (e) {
      toast(describeError(e), 'error');
      return;
    }
    this.roomChanged(room);
  }

  closeConnections() {
    clearInterval(this.pollTimer);
    this.stopHls?.();
    this.stopReplay?.();
    this.socket?.close();
    this.audio?.close();
    this.socket = null;
    this.audio = null;
  }

  // ---- sending and audio --------------------------------------------------------------
  send(type, data = {}) {
    if (!this.socket?.send(type, data)) return toast('Not connected to the room yet.', 'error');
    this.dispatch({ type: 'client.sent', message: { type, ...data } });
  }

  muteSelf() {
    this.audio?.setMuted(true); // silent at once, before the server's answer
    this.send('mute', { user_id: this.state.me });
  }

  /** A fresh connection has a fresh peer connection on the server side: so do we. */
  startAudio() {
    this.audio?.close();
    if (typeof RTCPeerConnection === 'undefined') return this.dispatch({ type: 'client.rtc', state: 'failed' }); // HLS may help
    const me = mine(this.state);
    const audio = new RoomAudio({
      iceServers: this.state.iceServers,
      signal: (type, data) => this.socket?.send(type, data),
      container: this.audioBox,
      onAutoplayBlocked: (blocked) => audio === this.audio && this.dispatch({ type: 'client.autoplay', blocked }),
      onMicError: (e) => audio === this.audio && this.micFailed(e),
      onConnectionState: (state) => audio === this.audio && this.dispatch({ type: 'client.rtc', state }),
    });
    this.audio = audio;
    audio.start(onStage(me), Boolean(me?.muted));
  }

  followMyRole(before, now) {
    if (!this.audio || !now) return;
    if (onStage(now) !== onStage(before)) {
      this.audio.setMuted(Boolean(now.muted));
      this.audio.setSpeaker(onStage(now));
    } else if (Boolean(now.muted) !== Boolean(before?.muted)) {
      this.audio.setMuted(Boolean(now.muted));
    }
  }

  micFailed(e) {
    const why = e && e.name === 'NotAllowedError' ? 'Microphone access was refused' : 'No microphone is available';
    toast(`${why}: you stay muted.`, 'error');
    if (may(this.state, 'mute')) this.send('mute', { user_id: this.state.me });
  }
}
