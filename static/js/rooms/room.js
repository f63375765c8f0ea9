// The room page (/rooms/<id>, which is also the share link): stage with speaking
// indicators and mute icons, listeners, raised hands, invitations, reactions and host
// controls, over the room WebSocket (rooms/socket.js) and WebRTC audio (rooms/rtc.js).

import { api, describeError } from '../api.js';
import { here } from '../router.js';
import { session } from '../session.js';
import { renderSignIn } from '../signin.js';
import { avatar, confirmSheet, formatDateTime, h, icon, iconButton, mount, sheet, toast } from '../ui.js';
import { RoomAudio } from './rtc.js';
import { RoomSocket } from './socket.js';

const enc = encodeURIComponent;
const STAGE = ['host', 'cohost', 'speaker'];
const RANK = { host: 3, cohost: 2, speaker: 1, listener: 0 };
const ROLE_LABEL = { host: 'Host', cohost: 'Co-host', speaker: 'Speaker', listener: 'Listener' };
const BIG_ROOM = 200; // the server's room_listener_events_max
const ENDED = {
  ended_by_host: 'The host ended this room.',
  host_left: 'The host left, so this room has ended.',
  cancelled: 'This room was cancelled.',
};
const ROOM_REACTIONS_FALLBACK = ['👏', '❤️', '😂', '💯', '🔥', '🙌'];

const onStage = (p) => p && STAGE.includes(p.role);
const moderates = (p) => p && (p.role === 'host' || p.role === 'cohost');

export async function renderRoom(view, roomId) {
  if (!session.user) return renderPreview(view, roomId);
  let room;
  try {
    room = await api(`/v1/rooms/${enc(roomId)}`);
  } catch (e) {
    mount(
      view,
      h('div', { class: 'panel', role: 'alert' }, h('h1', {}, 'Room unavailable'), h('p', {}, describeError(e)), h('a', { class: 'btn', href: '/' }, 'Back to rooms')),
    );
    return null;
  }
  const page = new RoomPage(view, room);
  return () => page.destroy();
}

/** Someone opened a share link without being signed in: a public preview, then sign-in. */
async function renderPreview(view, roomId) {
  let intro = null;
  try {
    const p = await api(`/v1/rooms/${enc(roomId)}/preview`, { auth: false });
    intro = h(
      'div',
      { class: 'room-preview' },
      p.state === 'live' ? h('span', { class: 'badge badge-live' }, 'LIVE') : h('span', { class: 'badge' }, p.state === 'scheduled' ? formatDateTime(p.scheduled_for) : 'Ended'),
      h('h2', {}, p.title),
      h('p', { class: 'person' }, avatar(p.host, 28), h('span', {}, ` hosted by ${p.host}`)),
      p.state === 'live' ? h('p', { class: 'hint' }, `${p.listener_count + p.speaker_count} in the room`) : null,
      h('p', {}, 'Sign in to join this room.'),
    );
  } catch (e) {
    intro = h('p', { class: 'form-error' }, describeError(e));
  }
  return renderSignIn(view, { next: here(), intro });
}

class RoomPage {
  constructor(view, room) {
    this.view = view;
    this.room = room;
    this.me = session.user.user_id;
    this.participants = new Map();
    this.socket = null;
    this.audio = null;
    this.inviteFrom = null;
    this.final = null; // a sentence once the room is over for us (ended, removed)
    this.autoplayBlocked = false;
    this.connection = 'connecting';
    this.pollTimer = null;
    this.reactions = ROOM_REACTIONS_FALLBACK; // until the welcome names the room's set
    window.ephemeraRoom = this; // a handle for devtools and the browser tests
    this.build();
    this.start();
  }

  destroy() {
    clearInterval(this.pollTimer);
    this.socket?.close();
    this.audio?.close();
    this.socket = null;
    this.audio = null;
    if (window.ephemeraRoom === this) window.ephemeraRoom = null;
  }

  get mine() {
    return this.participants.get(this.me) || null;
  }

  // ---- skeleton -----------------------------------------------------------------------
  build() {
    this.header = h('header', { class: 'room-head' });
    this.banners = h('div', { class: 'room-banners', 'aria-live': 'polite' });
    this.stageTitle = h('h2', { id: 'stage-title' }, 'On stage');
    this.stage = h('ul', { class: 'stage', 'aria-label': 'Speakers' });
    this.hands = h('section', { class: 'hands', 'aria-labelledby': 'hands-title', hidden: true });
    this.listeners = h('section', { class: 'listeners', 'aria-labelledby': 'listeners-title' });
    this.controls = h('div', { class: 'room-controls', role: 'toolbar', 'aria-label': 'Room controls' });
    this.floats = h('div', { class: 'floats', 'aria-hidden': 'true' });
    this.audioBox = h('div', { class: 'audio-box', hidden: true });
    this.body = h('div', { class: 'room-body' }, h('section', { class: 'stage-section', 'aria-labelledby': 'stage-title' }, this.stageTitle, this.stage), this.hands, this.listeners);
    mount(this.view, h('div', { class: 'room', dataset: { roomId: this.room.id } }, this.header, this.banners, this.body, this.controls, this.floats, this.audioBox));
    this.renderHeader();
  }

  renderHeader() {
    const r = this.room;
    const badge =
      r.state === 'live' ? h('span', { class: 'badge badge-live' }, 'LIVE') : r.state === 'scheduled' ? h('span', { class: 'badge' }, 'Scheduled') : h('span', { class: 'badge' }, 'Ended');
    const count = this.listenerCount();
    mount(
      this.header,
      h('a', { href: '/', class: 'icon-btn', 'aria-label': 'Back to rooms', title: 'Back to rooms' }, icon('back')),
      h(
        'div',
        { class: 'room-head-text' },
        h('div', { class: 'room-head-badges' }, badge, r.state === 'live' ? h('span', { class: 'listener-count', 'aria-label': `${count} listening` }, `${count} listening`) : null),
        h('h1', { class: 'room-name' }, r.title),
        r.description ? h('p', { class: 'room-desc' }, r.description) : null,
      ),
      iconButton('share', 'Share room link', () => this.share()),
    );
  }

  listenerCount() {
    // Participants events keep small rooms exact and live. Past BIG_ROOM listeners the
    // server stops announcing each one (docs/protocol.md): then the room's own count,
    // refreshed by room.updated, is the better figure.
    let n = 0;
    for (const p of this.participants.values()) if (p.role === 'listener' && p.connected !== false) n += 1;
    const counted = this.room.listener_count ?? 0;
    return counted >= BIG_ROOM ? Math.max(n, counted) : n;
  }

  shareUrl() {
    return this.room.share_url || `${location.origin}/rooms/${enc(this.room.id)}`;
  }

  async share() {
    const url = this.shareUrl();
    const field = h('input', { readonly: true, value: url, 'aria-label': 'Room link', class: 'share-url', onfocus: (e) => e.target.select() });
    const copy = h(
      'button',
      {
        type: 'button',
        class: 'btn btn-primary',
        onclick: async () => {
          try {
            await navigator.clipboard.writeText(url);
            copy.textContent = 'Copied';
          } catch {
            field.select();
            copy.textContent = 'Press Ctrl+C to copy';
          }
        },
      },
      'Copy link',
    );
    const actions = [copy];
    if (navigator.share) {
      actions.push(h('button', { type: 'button', class: 'btn', onclick: () => navigator.share({ title: this.room.title, url }).catch(() => {}) }, 'Share…'));
    }
    sheet('Share this room', h('p', { class: 'hint' }, 'Anyone with the link can open the room page; it carries no credentials.'), field, h('div', { class: 'row-actions' }, actions));
  }

  // ---- lifecycle ----------------------------------------------------------------------
  start() {
    if (this.room.state === 'live') this.join();
    else if (this.room.state === 'scheduled') this.renderScheduled();
    else this.finish('This room has ended.');
  }

  renderScheduled() {
    const r = this.room;
    const isHost = r.host === this.me;
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const act = (path, after) => async () => {
      error.hidden = true;
      try {
        this.room = await api(`/v1/rooms/${enc(r.id)}/${path}`, { method: 'POST' }) || (await api(`/v1/rooms/${enc(r.id)}`));
        this.renderHeader();
        after();
      } catch (e) {
        error.textContent = describeError(e);
        error.hidden = false;
      }
    };
    mount(
      this.body,
      h(
        'div',
        { class: 'panel scheduled' },
        avatar(r.host, 64),
        h('p', {}, `Hosted by ${r.host}`),
        h('p', { class: 'scheduled-time' }, 'Starts ', h('time', { datetime: r.scheduled_for }, formatDateTime(r.scheduled_for))),
        isHost
          ? h(
              'div',
              { class: 'row-actions' },
              h('button', { type: 'button', class: 'btn btn-primary', onclick: act('start', () => this.start()) }, 'Start now'),
              h('button', { type: 'button', class: 'btn', onclick: () => this.editScheduled() }, 'Edit'),
              h(
                'button',
                {
                  type: 'button',
                  class: 'btn btn-danger',
                  onclick: async () => {
                    if (await confirmSheet('Cancel this room?', 'People waiting for it will see that it was cancelled.', 'Cancel room')) {
                      await act('cancel', () => this.finish('This room was cancelled.'))();
                    }
                  },
                },
                'Cancel room',
              ),
            )
          : h('p', { class: 'hint' }, 'This page joins the room by itself when the host starts it.'),
        error,
      ),
    );
    mount(this.controls);
    clearInterval(this.pollTimer);
    this.pollTimer = setInterval(async () => {
      try {
        const fresh = await api(`/v1/rooms/${enc(r.id)}`);
        if (fresh.state !== this.room.state) {
          this.room = fresh;
          clearInterval(this.pollTimer);
          this.renderHeader();
          this.start();
        }
      } catch {
        /* keep polling */
      }
    }, 5000);
  }

  editScheduled() {
    const r = this.room;
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const pad = (n) => String(n).padStart(2, '0');
    const d = new Date(r.scheduled_for);
    const local = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const form = h(
      'form',
      {
        class: 'form',
        onsubmit: async (e) => {
          e.preventDefault();
          const data = new FormData(form);
          try {
            this.room = await api(`/v1/rooms/${enc(r.id)}`, {
              method: 'PATCH',
              body: { title: String(data.get('title')).trim(), scheduled_for: new Date(String(data.get('when'))).toISOString() },
            });
            dialog.close();
            this.renderHeader();
            this.renderScheduled();
          } catch (err) {
            error.textContent = describeError(err);
            error.hidden = false;
          }
        },
      },
      h('label', { for: 'edit-title' }, 'Title'),
      h('input', { id: 'edit-title', name: 'title', value: r.title, required: true, maxlength: 100 }),
      h('label', { for: 'edit-when' }, 'Start time'),
      h('input', { id: 'edit-when', name: 'when', type: 'datetime-local', value: local, required: true }),
      error,
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save'),
    );
    const dialog = sheet('Edit room', form);
  }

  rebuildBody() {
    mount(this.body, h('section', { class: 'stage-section', 'aria-labelledby': 'stage-title' }, this.stageTitle, this.stage), this.hands, this.listeners);
  }

  join() {
    const url = this.room.ws_url || `${location.origin.replace(/^http/, 'ws')}/v1/rooms/${enc(this.room.id)}/ws`;
    this.rebuildBody();
    this.renderControlsIdle();
    this.socket = new RoomSocket(
      url,
      (msg) => this.onMessage(msg),
      (state, info) => this.onSocketState(state, info),
    );
  }

  onSocketState(state, info = {}) {
    this.connection = state;
    if (state === 'closed') {
      this.audio?.close();
      this.audio = null;
      if (info.final && !this.final && info.refused) {
        this.refusedJoin();
      } else if (info.final && !this.final) {
        const why =
          info.code === 4403 ? 'You cannot join this room.' : info.code === 4409 ? 'You joined this room from another tab or device.' : info.reason || 'Disconnected from the room.';
        this.finish(why, info.code !== 4403);
      }
    }
    this.renderBanners();
  }

  /** The server would not let us in: say why if the room's state explains it. */
  async refusedJoin() {
    let fresh = null;
    try {
      fresh = await api(`/v1/rooms/${enc(this.room.id)}`);
    } catch {
      /* the sentence below covers it */
    }
    if (fresh) {
      this.room = fresh;
      this.renderHeader();
    }
    if (fresh?.state === 'ended') this.finish('This room has ended.');
    else if (fresh?.state === 'scheduled') {
      this.final = null;
      this.socket = null;
      this.renderScheduled();
    } else this.finish('You cannot join this room (you may have been removed from it).', true);
  }

  finish(sentence, canRetry = false) {
    this.final = sentence;
    this.socket?.close();
    this.audio?.close();
    this.socket = null;
    this.audio = null;
    clearInterval(this.pollTimer);
    mount(
      this.body,
      h(
        'div',
        { class: 'panel room-over', role: 'status' },
        h('p', {}, sentence),
        h(
          'div',
          { class: 'row-actions' },
          canRetry ? h('button', { type: 'button', class: 'btn btn-primary', onclick: () => this.retry() }, 'Try again') : null,
          h('a', { class: 'btn', href: '/' }, 'Back to rooms'),
        ),
      ),
    );
    this.renderBanners();
    mount(this.controls);
  }

  async retry() {
    this.final = null;
    this.participants.clear();
    try {
      this.room = await api(`/v1/rooms/${enc(this.room.id)}`);
    } catch (e) {
      toast(describeError(e), 'error');
      return;
    }
    this.rebuildBody();
    this.renderHeader();
    this.start();
  }

  // ---- protocol -----------------------------------------------------------------------
  onMessage(msg) {
    switch (msg.type) {
      case 'welcome':
        this.onWelcome(msg);
        break;
      case 'participant.joined':
      case 'participant.updated':
        this.upsert(msg.participant);
        break;
      case 'participant.left':
        this.participants.delete(msg.user_id);
        this.renderAll();
        break;
      case 'invite.received':
        this.inviteFrom = msg.from_user;
        this.renderBanners();
        this.renderControls();
        break;
      case 'reaction':
        this.floatReaction(msg.user_id, msg.emoji);
        break;
      case 'speaking':
        this.onSpeaking(msg.user_ids || []);
        break;
      case 'room.updated':
        this.room = { ...this.room, ...msg.room };
        this.renderHeader();
        break;
      case 'room.ended':
        this.room = { ...this.room, state: 'ended' };
        this.renderHeader();
        this.finish(ENDED[msg.reason] || 'This room has ended.');
        break;
      case 'removed':
        this.finish('You were removed from this room.');
        break;
      case 'error':
        toast(msg.message || msg.code, 'error');
        break;
      case 'rtc.offer':
      case 'rtc.answer':
      case 'rtc.ice':
      case 'rtc.restart':
        this.audio?.handle(msg);
        break;
      default:
        break; // pong, and types newer than this client
    }
  }

  onWelcome(msg) {
    this.me = msg.you || this.me;
    if (Array.isArray(msg.reactions) && msg.reactions.length) this.reactions = msg.reactions;
    this.room = { ...this.room, ...msg.room };
    this.participants = new Map(msg.participants.map((p) => [p.user_id, p]));
    const mine = this.mine;
    if (mine?.invited) this.inviteFrom = this.inviteFrom || this.room.host;
    // A fresh connection has a fresh peer connection on the server side.
    this.audio?.close();
    this.audio = new RoomAudio({
      iceServers: msg.ice_servers,
      signal: (type, data) => this.socket?.send(type, data),
      container: this.audioBox,
      onAutoplayBlocked: (blocked) => {
        this.autoplayBlocked = blocked;
        this.renderBanners();
      },
      onMicError: (e) => this.micFailed(e),
      onConnectionState: (state) => {
        this.rtcState = state;
        this.renderBanners();
      },
    });
    this.audio.start(onStage(mine), Boolean(mine?.muted));
    this.renderHeader();
    this.renderAll();
  }

  micFailed(e) {
    const why = e && e.name === 'NotAllowedError' ? 'Microphone access was refused' : 'No microphone is available';
    toast(`${why}: you stay muted.`, 'error');
    if (onStage(this.mine) && !this.mine.muted) this.socket?.send('mute', { user_id: this.me });
  }

  upsert(p) {
    const before = this.participants.get(p.user_id);
    this.participants.set(p.user_id, p);
    if (p.user_id === this.me) this.onMyChange(before, p);
    this.renderAll();
  }

  onMyChange(before, now) {
    if (!this.audio) return;
    if (onStage(now) !== onStage(before)) {
      if (onStage(now)) {
        this.inviteFrom = null;
        toast(now.role === 'cohost' ? 'You are a co-host now.' : 'You are on stage: people can hear you.');
      } else if (before) {
        toast('You are a listener now.');
      }
      this.audio.setMuted(Boolean(now.muted));
      this.audio.setSpeaker(onStage(now));
    } else if (now.role !== before?.role && now.role === 'cohost') {
      toast('You are a co-host now.');
    }
    if (Boolean(now.muted) !== Boolean(before?.muted)) {
      this.audio.setMuted(Boolean(now.muted));
      if (now.muted && before && !before.muted && this.pendingSelfMute !== true) toast('A host muted you.');
      this.pendingSelfMute = false;
    }
    if (!now.invited && before?.invited) this.inviteFrom = null;
  }

  onSpeaking(userIds) {
    const speaking = new Set(userIds);
    for (const p of this.participants.values()) p.speaking = speaking.has(p.user_id);
    for (const tile of this.stage.querySelectorAll('[data-user-id]')) {
      const on = speaking.has(tile.dataset.userId);
      tile.classList.toggle('is-speaking', on);
      tile.dataset.speaking = on ? 'true' : 'false';
    }
  }

  send(type, data = {}) {
    if (!this.socket || !this.socket.send(type, data)) toast('Not connected to the room yet.', 'error');
  }

  // ---- rendering ----------------------------------------------------------------------
  renderAll() {
    if (this.final) return;
    // Keep keyboard focus on the same control across re-renders.
    const key = document.activeElement?.dataset?.key;
    this.renderStage();
    this.renderHands();
    this.renderListeners();
    this.renderControls();
    this.renderBanners();
    this.renderHeader();
    if (key) document.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
  }

  sorted(filter) {
    const order = { host: 0, cohost: 1, speaker: 2, listener: 3 };
    return [...this.participants.values()].filter(filter).sort((a, b) => order[a.role] - order[b.role]);
  }

  renderStage() {
    const people = this.sorted(onStage);
    this.stageTitle.textContent = `On stage (${people.length})`;
    mount(
      this.stage,
      people.map((p) => {
        const status = [ROLE_LABEL[p.role], p.muted ? 'muted' : null, p.speaking ? 'speaking' : null, p.connected === false ? 'reconnecting' : null].filter(Boolean).join(', ');
        return h(
          'li',
          {
            class: `tile ${p.speaking ? 'is-speaking' : ''} ${p.connected === false ? 'is-away' : ''}`,
            dataset: { userId: p.user_id, role: p.role, muted: p.muted ? 'true' : 'false', speaking: p.speaking ? 'true' : 'false' },
          },
          h(
            'button',
            { type: 'button', class: 'tile-btn', 'aria-label': `${p.user_id}${p.user_id === this.me ? ' (you)' : ''}: ${status}`, dataset: { key: `tile-${p.user_id}` }, onclick: () => this.personSheet(p.user_id) },
            h('span', { class: 'tile-avatar' }, avatar(p.user_id, 64), p.muted ? h('span', { class: 'mute-badge', title: 'Muted' }, icon('micOff', 14)) : null),
            h('span', { class: 'tile-name' }, p.user_id === this.me ? `${p.user_id} (you)` : p.user_id),
            h('span', { class: 'tile-role' }, ROLE_LABEL[p.role]),
          ),
        );
      }),
    );
  }

  renderHands() {
    const mods = moderates(this.mine);
    const raised = this.sorted((p) => p.hand_raised && !onStage(p));
    this.hands.hidden = !mods || raised.length === 0;
    if (this.hands.hidden) return this.hands.replaceChildren();
    mount(
      this.hands,
      h('h2', { id: 'hands-title' }, `Raised hands (${raised.length})`),
      h(
        'ul',
        { class: 'people-list' },
        raised.map((p) =>
          h(
            'li',
            { class: 'person', dataset: { userId: p.user_id } },
            avatar(p.user_id, 36),
            h('span', { class: 'person-name' }, p.user_id),
            h(
              'span',
              { class: 'person-actions' },
              h('button', { type: 'button', class: 'btn btn-small btn-primary', 'aria-label': `Accept ${p.user_id}'s hand`, dataset: { key: `accept-${p.user_id}` }, onclick: () => this.send('hand.accept', { user_id: p.user_id }) }, 'Accept'),
              h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Dismiss ${p.user_id}'s hand`, dataset: { key: `dismiss-${p.user_id}` }, onclick: () => this.send('hand.dismiss', { user_id: p.user_id }) }, 'Dismiss'),
            ),
          ),
        ),
      ),
    );
  }

  renderListeners() {
    const people = this.sorted((p) => p.role === 'listener' && p.connected !== false);
    const shown = people.slice(0, 60);
    mount(
      this.listeners,
      h('h2', { id: 'listeners-title' }, `Listeners (${this.listenerCount()})`),
      people.length === 0
        ? h('p', { class: 'hint' }, 'No listeners yet. Share the link!')
        : h(
            'ul',
            { class: 'listener-grid' },
            shown.map((p) =>
              h(
                'li',
                { dataset: { userId: p.user_id } },
                h(
                  'button',
                  { type: 'button', class: 'listener-btn', 'aria-label': `${p.user_id}${p.hand_raised ? ', hand raised' : ''}${p.user_id === this.me ? ' (you)' : ''}`, onclick: () => this.personSheet(p.user_id) },
                  avatar(p.user_id, 44),
                  p.hand_raised ? h('span', { class: 'hand-badge' }, '✋') : null,
                  h('span', { class: 'listener-name' }, p.user_id),
                ),
              ),
            ),
            this.listenerCount() > shown.length ? h('li', { class: 'hint more-listeners' }, `+${this.listenerCount() - shown.length} more`) : null,
          ),
    );
  }

  renderBanners() {
    const items = [];
    if (!this.final && this.connection === 'connecting' && this.socket) items.push(h('div', { class: 'banner' }, 'Connecting to the room…'));
    if (!this.final && this.connection === 'closed' && this.socket) items.push(h('div', { class: 'banner banner-warn' }, 'Connection lost. Reconnecting…'));
    if (!this.final && this.rtcState === 'failed') items.push(h('div', { class: 'banner banner-warn' }, 'Audio connection failed.'));
    if (!this.final && this.autoplayBlocked) {
      items.push(
        h(
          'button',
          { type: 'button', class: 'banner banner-action tap-to-listen', onclick: () => this.audio?.resume() },
          icon('speaker', 18),
          ' Tap to listen',
        ),
      );
    }
    const mine = this.mine;
    if (!this.final && this.inviteFrom && mine && !onStage(mine)) {
      items.push(
        h(
          'div',
          { class: 'banner banner-invite', role: 'alert' },
          h('span', {}, `${this.inviteFrom} invited you to speak.`),
          h('button', { type: 'button', class: 'btn btn-small btn-primary', onclick: () => this.send('invite.accept') }, 'Join as speaker'),
          h(
            'button',
            {
              type: 'button',
              class: 'btn btn-small',
              onclick: () => {
                this.send('invite.decline');
                this.inviteFrom = null;
                this.renderBanners();
                this.renderControls();
              },
            },
            'Not now',
          ),
        ),
      );
    }
    mount(this.banners, items);
  }

  renderControlsIdle() {
    mount(this.controls, h('a', { class: 'btn', href: '/' }, icon('leave', 18), ' Leave'));
  }

  renderControls() {
    const mine = this.mine;
    if (!mine || this.final) return this.renderControlsIdle();
    const buttons = [];
    if (onStage(mine)) {
      buttons.push(
        h(
          'button',
          {
            type: 'button',
            class: `btn btn-round mic-btn ${mine.muted ? 'is-off' : ''}`,
            'aria-label': mine.muted ? 'Unmute microphone' : 'Mute microphone',
            'aria-pressed': mine.muted ? 'true' : 'false',
            title: mine.muted ? 'Unmute' : 'Mute',
            dataset: { key: 'mic' },
            onclick: () => {
              if (mine.muted) this.send('unmute');
              else {
                this.pendingSelfMute = true;
                this.audio?.setMuted(true);
                this.send('mute', { user_id: this.me });
              }
            },
          },
          icon(mine.muted ? 'micOff' : 'mic', 22),
        ),
      );
      if (mine.role !== 'host') {
        buttons.push(h('button', { type: 'button', class: 'btn', dataset: { key: 'stepdown' }, onclick: () => this.send('role.step_down') }, 'Step down'));
      }
    } else if (this.room.speaker_policy !== 'invited_only' || mine.hand_raised) {
      buttons.push(
        h(
          'button',
          {
            type: 'button',
            class: `btn hand-btn ${mine.hand_raised ? 'btn-active' : ''}`,
            'aria-pressed': mine.hand_raised ? 'true' : 'false',
            dataset: { key: 'hand' },
            onclick: () => this.send(mine.hand_raised ? 'hand.lower' : 'hand.raise'),
          },
          '✋ ',
          mine.hand_raised ? 'Lower hand' : 'Raise hand',
        ),
      );
    }
    const reacts = h(
      'div',
      { class: 'reactions', role: 'group', 'aria-label': 'React' },
      this.reactions.slice(0, 6).map((emoji) => h('button', { type: 'button', class: 'reaction-btn', 'aria-label': `React ${emoji}`, dataset: { key: `react-${emoji}` }, onclick: () => this.send('react', { emoji }) }, emoji)),
    );
    const right = [];
    if (mine.role === 'host') {
      right.push(
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-danger',
            dataset: { key: 'end' },
            onclick: async () => {
              if (await confirmSheet('End this room?', 'Everyone is disconnected and the room closes for good.', 'End room')) this.send('room.end');
            },
          },
          'End room',
        ),
      );
    }
    right.push(h('a', { class: 'btn', href: '/', dataset: { key: 'leave' } }, icon('leave', 18), ' Leave'));
    mount(this.controls, h('div', { class: 'controls-left' }, buttons), reacts, h('div', { class: 'controls-right' }, right));
  }

  floatReaction(userId, emoji) {
    const el = h('span', { class: 'float' }, emoji);
    const tile = this.stage.querySelector(`[data-user-id="${CSS.escape(userId)}"]`);
    const box = this.floats.getBoundingClientRect();
    if (tile) {
      const r = tile.getBoundingClientRect();
      el.style.left = `${r.left - box.left + r.width / 2 - 14}px`;
      el.style.top = `${r.top - box.top}px`;
    } else {
      el.style.left = `${20 + Math.random() * 60}%`;
      el.style.bottom = '80px';
    }
    el.title = userId;
    this.floats.append(el);
    setTimeout(() => el.remove(), 2200);
  }

  // ---- one participant: follow, and moderation for hosts -------------------------------
  async personSheet(userId) {
    const p = this.participants.get(userId);
    if (!p) return;
    const mine = this.mine;
    const isMe = userId === this.me;
    const actions = [];
    const act = (label, type, data, danger = false) =>
      h(
        'button',
        {
          type: 'button',
          class: `btn ${danger ? 'btn-danger' : ''}`,
          onclick: () => {
            dialog.close();
            this.send(type, data);
          },
        },
        label,
      );
    // Mirrors the server's rules (rooms/control/rules.py): moderating needs a strictly higher rank.
    if (!isMe && moderates(mine) && RANK[mine.role] > RANK[p.role]) {
      if (p.role === 'listener') {
        if (p.hand_raised) actions.push(act('Accept hand', 'hand.accept', { user_id: userId }));
        else if (!p.invited) actions.push(act('Invite to speak', 'invite.send', { user_id: userId }));
        else actions.push(h('p', { class: 'hint' }, 'Invitation sent.'));
      }
      if (onStage(p) && !p.muted) actions.push(act('Mute', 'mute', { user_id: userId }));
      if (p.role === 'speaker' && mine.role === 'host') actions.push(act('Make co-host', 'role.cohost', { user_id: userId }));
      if (p.role === 'cohost') actions.push(act('Make speaker', 'role.demote', { user_id: userId }));
      if (p.role === 'speaker') actions.push(act('Move to listeners', 'role.demote', { user_id: userId }));
      actions.push(act('Remove from room', 'remove', { user_id: userId }, true));
    }
    const follow = h('div', { class: 'follow-slot' });
    const dialog = sheet(
      isMe ? 'You' : userId,
      h('div', { class: 'person person-big' }, avatar(userId, 64), h('div', {}, h('strong', {}, userId), h('p', { class: 'hint' }, [ROLE_LABEL[p.role], p.muted ? 'muted' : null, p.hand_raised ? 'hand raised' : null].filter(Boolean).join(' · ')))),
      follow,
      actions.length ? h('div', { class: 'stack-actions' }, actions) : null,
    );
    if (!isMe) {
      try {
        const rel = await api(`/v1/users/${enc(userId)}/relationship`);
        let on = rel.following;
        const btn = h('button', { type: 'button', class: 'btn btn-small' });
        const paint = () => {
          btn.textContent = on ? 'Following' : 'Follow';
          btn.setAttribute('aria-pressed', on ? 'true' : 'false');
          btn.setAttribute('aria-label', on ? `Unfollow ${userId}` : `Follow ${userId}`);
          btn.classList.toggle('btn-active', on);
        };
        btn.onclick = async () => {
          try {
            await api(`/v1/users/${enc(userId)}/follow`, { method: on ? 'DELETE' : 'PUT' });
            on = !on;
            paint();
          } catch (e) {
            toast(describeError(e), 'error');
          }
        };
        paint();
        mount(follow, btn);
      } catch {
        /* no follow button when the relationship is unavailable */
      }
    }
  }
}
