// The room's header (state badge, listener count, title, description, share) and the
// share sheet.

import { remount } from '../../keyed.js';
import { h, icon, iconButton, sheet } from '../../ui.js';
import { listenerCount } from '../state.js';

const BADGE = { live: ['badge badge-live', 'LIVE'], scheduled: ['badge', 'Scheduled'] };

export function renderHeader(header, state) {
  const r = state.room;
  const count = listenerCount(state);
  const [cls, text] = BADGE[r.state] || ['badge', 'Ended'];
  const rec = r.recorded && r.state === 'live' ? h('span', { class: 'badge badge-rec', title: 'This room is being recorded', 'aria-label': 'Recording' }, '● REC') : null;
  remount(header, JSON.stringify([r.state, r.title, r.description, count, r.share_url, r.recorded]), () => [
    h('a', { href: '/', class: 'icon-btn', 'aria-label': 'Back to rooms', title: 'Back to rooms' }, icon('back')),
    h(
      'div',
      { class: 'room-head-text' },
      h('div', { class: 'room-head-badges' }, h('span', { class: cls }, text), rec, r.state === 'live' ? h('span', { class: 'listener-count', 'aria-label': `${count} listening` }, `${count} listening`) : null),
      h('h1', { class: 'room-name' }, r.title),
      r.description ? h('p', { class: 'room-desc' }, r.description) : null,
    ),
    iconButton('share', 'Share room link', () => shareSheet(r)),
  ]);
}

function shareSheet(room) {
  const url = room.share_url || `${location.origin}/rooms/${encodeURIComponent(room.id)}`;
  const field = h('input', { readonly: true, value: url, 'aria-label': 'Room link', class: 'share-url', onfocus: (e) => e.target.select() });
  const copy = h('button', { type: 'button', class: 'btn btn-primary' }, 'Copy link');
  copy.onclick = async () => {
    try {
      await navigator.clipboard.writeText(url);
      copy.textContent = 'Copied';
    } catch {
      field.select();
      copy.textContent = 'Press Ctrl+C to copy';
    }
  };
  const share = navigator.share ? h('button', { type: 'button', class: 'btn', onclick: () => navigator.share({ title: room.title, url }).catch(() => {}) }, 'Share…') : null;
  sheet('Share this room', h('p', { class: 'hint' }, 'Anyone with the link can open the room page; it carries no credentials.'), field, h('div', { class: 'row-actions' }, copy, share));
}
