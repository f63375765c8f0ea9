// One participant's sheet: who they are, Follow, and the moderation actions the server
// offers us for someone in their state (`actions.targets`). The sheet follows the room
// while it is open: a button comes or goes as the server's offer changes, and the others
// stay the same elements.

import { api, describeError } from '../../api.js';
import { keyed } from '../../keyed.js';
import { avatar, h, sheet, toast } from '../../ui.js';
import { targetActions } from '../state.js';
import { personStatus, targetButtons } from './labels.js';

const enc = encodeURIComponent;

/** Open the sheet of `userId`; returns `{update(state), isOpen(), close()}` for the page. */
export function openPerson(userId, state, send) {
  const isMe = userId === state.me;
  const status = h('p', { class: 'hint' });
  const actions = h('div', { class: 'stack-actions' });
  const dialog = sheet(
    isMe ? 'You' : userId,
    h('div', { class: 'person person-big' }, avatar(userId, 64), h('div', {}, h('strong', {}, userId), status)),
    isMe ? null : followButton(userId),
    actions,
  );
  const act = (type) => {
    dialog.close();
    send(type, { user_id: userId });
  };
  const update = (s) => {
    const p = s.participants.get(userId);
    status.textContent = p ? personStatus(p) : 'Left the room';
    const buttons = p ? targetButtons(p, targetActions(s, p)) : [];
    actions.hidden = buttons.length === 0;
    keyed(actions, buttons, {
      key: (b) => b.type,
      sig: (b) => b.label,
      render: (b) => h('button', { type: 'button', class: `btn ${b.danger ? 'btn-danger' : ''}`, dataset: { key: b.type }, onclick: () => act(b.type) }, b.label),
    });
  };
  update(state);
  return { update, isOpen: () => dialog.open, close: () => dialog.close() };
}

/** Follow / Following. The button takes its place at once (disabled until the relationship
 *  is known), so the actions below it never move under a pointer about to press them. */
function followButton(userId) {
  const btn = h('button', { type: 'button', class: 'btn btn-small', disabled: true, 'aria-busy': 'true' }, 'Follow');
  let on = false;
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
  api(`/v1/users/${enc(userId)}/relationship`).then(
    (rel) => {
      on = rel.following;
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
      paint();
    },
    () => {
      btn.style.visibility = 'hidden'; // unavailable: no button, but its place stays
    },
  );
  return h('div', { class: 'follow-slot' }, btn);
}
