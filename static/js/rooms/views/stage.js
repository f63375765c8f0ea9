// The stage: host, co-hosts and speakers as tiles with a speaking ring and a mute badge.

import { keyed } from '../../keyed.js';
import { avatar, h, icon } from '../../ui.js';
import { stagePeople } from '../state.js';
import { ROLE_LABEL, tileStatus } from './labels.js';

/** Draw the stage into `list` (a <ul>) and its count into `title`; `open(userId)` on a press. */
export function renderStage(title, list, state, open) {
  const people = stagePeople(state);
  title.textContent = `On stage (${people.length})`;
  const tiles = keyed(list, people, {
    key: (p) => p.user_id,
    // Speaking changes several times a second: it is painted in place, never redrawn.
    sig: (p) => `${p.role}|${p.muted}|${p.connected !== false}|${p.user_id === state.me}`,
    render: (p) => tile(p, p.user_id === state.me, open),
  });
  tiles.forEach((el, i) => paintSpeaking(el, people[i], state.speaking.has(people[i].user_id)));
}

function tile(p, isMe, open) {
  const name = isMe ? `${p.user_id} (you)` : p.user_id;
  return h(
    'li',
    { class: `tile ${p.connected === false ? 'is-away' : ''}`, dataset: { userId: p.user_id, role: p.role, muted: p.muted ? 'true' : 'false', speaking: 'false' } },
    h(
      'button',
      { type: 'button', class: 'tile-btn', dataset: { key: `tile-${p.user_id}`, name }, onclick: () => open(p.user_id) },
      h('span', { class: 'tile-avatar' }, avatar(p.user_id, 64), p.muted ? h('span', { class: 'mute-badge', title: 'Muted' }, icon('micOff', 14)) : null),
      h('span', { class: 'tile-name' }, name),
      h('span', { class: 'tile-role' }, ROLE_LABEL[p.role]),
    ),
  );
}

function paintSpeaking(el, p, on) {
  el.classList.toggle('is-speaking', on);
  el.dataset.speaking = on ? 'true' : 'false';
  const button = el.firstElementChild;
  button.setAttribute('aria-label', `${button.dataset.name}: ${tileStatus(p, on)}`);
}
