// The control bar: microphone, hand, step down, reactions, end room, leave. Each button
// is there because the server's `actions.self` offers that message now.

import { remount } from '../../keyed.js';
import { confirmSheet, h, icon } from '../../ui.js';
import { may, mine } from '../state.js';

const leave = () => h('a', { class: 'btn', href: '/', dataset: { key: 'leave' } }, icon('leave', 18), ' Leave');

/**
 * Draw the bar for `state`. `send(type, data)` sends a room message; `muteSelf()` mutes
 * our microphone at once and tells the server.
 */
export function renderControls(bar, state, { send, muteSelf }) {
  if (state.over || state.room.state !== 'live') return remount(bar, 'none', () => []);
  if (!mine(state)) return remount(bar, 'idle', leave);
  const self = state.actions?.self || [];
  const sig = JSON.stringify([self, state.reactions]);
  return remount(bar, sig, () => [
    h('div', { class: 'controls-left' }, micButton(state, send, muteSelf), handButton(state, send), may(state, 'role.step_down') ? h('button', { type: 'button', class: 'btn', dataset: { key: 'stepdown' }, onclick: () => send('role.step_down') }, 'Step down') : null),
    reactions(state.reactions, send),
    h('div', { class: 'controls-right' }, may(state, 'recording.start') ? recordButton(send) : null, may(state, 'room.end') ? endButton(send) : null, leave()),
  ]);
}

function micButton(state, send, muteSelf) {
  const muted = may(state, 'unmute');
  if (!muted && !may(state, 'mute')) return null;
  return h(
    'button',
    {
      type: 'button',
      class: `btn btn-round mic-btn ${muted ? 'is-off' : ''}`,
      'aria-label': muted ? 'Unmute microphone' : 'Mute microphone',
      'aria-pressed': muted ? 'true' : 'false',
      title: muted ? 'Unmute' : 'Mute',
      dataset: { key: 'mic' },
      onclick: () => (muted ? send('unmute') : muteSelf()),
    },
    icon(muted ? 'micOff' : 'mic', 22),
  );
}

function handButton(state, send) {
  const raised = may(state, 'hand.lower');
  if (!raised && !may(state, 'hand.raise')) return null;
  return h(
    'button',
    {
      type: 'button',
      class: `btn hand-btn ${raised ? 'btn-active' : ''}`,
      'aria-pressed': raised ? 'true' : 'false',
      dataset: { key: 'hand' },
      onclick: () => send(raised ? 'hand.lower' : 'hand.raise'),
    },
    '✋ ',
    raised ? 'Lower hand' : 'Raise hand',
  );
}

function reactions(emojis, send) {
  return h(
    'div',
    { class: 'reactions', role: 'group', 'aria-label': 'React' },
    emojis.slice(0, 6).map((emoji) => h('button', { type: 'button', class: 'reaction-btn', 'aria-label': `React ${emoji}`, dataset: { key: `react-${emoji}` }, onclick: () => send('react', { emoji }) }, emoji)),
  );
}

function recordButton(send) {
  const start = async () => {
    if (await confirmSheet('Record this room?', 'Everyone is told. The recording can be listened to live over HLS and as a replay after the room ends.', 'Start recording')) send('recording.start');
  };
  return h('button', { type: 'button', class: 'btn', dataset: { key: 'record' }, onclick: start }, '● Record');
}

function endButton(send) {
  const end = async () => {
    if (await confirmSheet('End this room?', 'Everyone is disconnected and the room closes for good.', 'End room')) send('room.end');
  };
  return h('button', { type: 'button', class: 'btn btn-danger', dataset: { key: 'end' }, onclick: end }, 'End room');
}
