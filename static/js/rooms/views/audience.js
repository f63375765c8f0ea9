// Everyone off stage: the raised hands we can answer, and the listeners' grid.

import { keyed, remount } from '../../keyed.js';
import { avatar, h } from '../../ui.js';
import { handsToAnswer, listenerCount, listeners, targetActions } from '../state.js';

const SHOWN = 60; // listeners drawn; the rest are a count

/** The raised hands section: only the hands the server lets us accept or dismiss. */
export function renderHands(section, state, send) {
  const raised = handsToAnswer(state);
  section.hidden = raised.length === 0;
  if (section.hidden) return;
  remount(section, 'frame', () => [h('h2', { id: 'hands-title' }), h('ul', { class: 'people-list' })]);
  section.firstElementChild.textContent = `Raised hands (${raised.length})`;
  keyed(section.lastElementChild, raised, {
    key: (p) => p.user_id,
    sig: (p) => targetActions(state, p).join(' '),
    render: (p) => hand(p, targetActions(state, p), send),
  });
}

function hand(p, types, send) {
  const id = p.user_id;
  const answer = (type, label, text, primary) =>
    types.includes(type)
      ? h('button', { type: 'button', class: `btn btn-small ${primary ? 'btn-primary' : ''}`, 'aria-label': label, dataset: { key: `${type}-${id}` }, onclick: () => send(type, { user_id: id }) }, text)
      : null;
  return h(
    'li',
    { class: 'person', dataset: { userId: id } },
    avatar(id, 36),
    h('span', { class: 'person-name' }, id),
    h('span', { class: 'person-actions' }, answer('hand.accept', `Accept ${id}'s hand`, 'Accept', true), answer('hand.dismiss', `Dismiss ${id}'s hand`, 'Dismiss', false)),
  );
}

/** The listeners' grid (the first SHOWN of them) under its heading with the count. */
export function renderListeners(section, state, open) {
  const people = listeners(state);
  const count = listenerCount(state);
  remount(section, 'frame', () => [h('h2', { id: 'listeners-title' }), h('p', { class: 'hint' }, 'No listeners yet. Share the link!'), h('ul', { class: 'listener-grid' }), h('p', { class: 'hint more-listeners' })]);
  const [title, empty, grid, more] = section.children;
  title.textContent = `Listeners (${count})`;
  empty.hidden = people.length > 0;
  grid.hidden = people.length === 0;
  const shown = people.slice(0, SHOWN);
  keyed(grid, shown, {
    key: (p) => p.user_id,
    sig: (p) => `${p.hand_raised}|${p.user_id === state.me}`,
    render: (p) => listener(p, p.user_id === state.me, open),
  });
  more.hidden = count <= shown.length;
  more.textContent = `+${count - shown.length} more`;
}

function listener(p, isMe, open) {
  const label = `${p.user_id}${p.hand_raised ? ', hand raised' : ''}${isMe ? ' (you)' : ''}`;
  return h(
    'li',
    { dataset: { userId: p.user_id } },
    h(
      'button',
      { type: 'button', class: 'listener-btn', 'aria-label': label, dataset: { key: `listener-${p.user_id}` }, onclick: () => open(p.user_id) },
      avatar(p.user_id, 44),
      p.hand_raised ? h('span', { class: 'hand-badge' }, '✋') : null,
      h('span', { class: 'listener-name' }, p.user_id),
    ),
  );
}
