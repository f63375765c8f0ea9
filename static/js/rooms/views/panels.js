// The room page's body when the room is not live for us: the public preview (signed out),
// a scheduled room (the host starts, edits or cancels it over HTTP), and the end.

import { api, describeError } from '../../api.js';
import { avatar, confirmSheet, formatDateTime, h, mount, sheet } from '../../ui.js';

const enc = encodeURIComponent;

/** The public preview shown above the sign-in form for someone signed out. */
export async function previewIntro(roomId) {
  try {
    const p = await api(`/v1/rooms/${enc(roomId)}/preview`, { auth: false });
    const live = p.state === 'live';
    return h(
      'div',
      { class: 'room-preview' },
      live ? h('span', { class: 'badge badge-live' }, 'LIVE') : h('span', { class: 'badge' }, p.state === 'scheduled' ? formatDateTime(p.scheduled_for) : 'Ended'),
      h('h2', {}, p.title),
      h('p', { class: 'person' }, avatar(p.host, 28), h('span', {}, ` hosted by ${p.host}`)),
      live ? h('p', { class: 'hint' }, `${p.listener_count + p.speaker_count} in the room`) : null,
      h('p', {}, 'Sign in to join this room.'),
    );
  } catch (e) {
    return h('p', { class: 'form-error' }, describeError(e));
  }
}

/** The words of the reminder toggle and of the count under it. */
export function reminderText(reminded, count) {
  const others = reminded ? count - 1 : count;
  let people = count === 0 ? 'Nobody has asked for a reminder yet.' : `${count} ${count === 1 ? 'person wants' : 'people want'} a reminder.`;
  if (reminded) people = others === 0 ? 'You will be reminded.' : `You and ${others} ${others === 1 ? 'other' : 'others'} will be reminded.`;
  return { label: reminded ? 'Reminder set' : 'Remind me', people };
}

/** "Remind me": a toggle button (aria-pressed) for a scheduled room, with the count. */
function reminderToggle(room) {
  const url = `/v1/rooms/${enc(room.id)}/reminder`;
  const button = h('button', { type: 'button', class: 'btn remind', 'aria-pressed': 'false', disabled: true }, 'Remind me');
  const people = h('p', { class: 'hint reminder-count' }, '');
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const show = (r) => {
    const text = reminderText(r.reminded, r.reminder_count);
    button.textContent = text.label;
    button.setAttribute('aria-pressed', String(r.reminded));
    button.disabled = false;
    people.textContent = text.people;
  };
  show({ reminded: false, reminder_count: room.reminder_count ?? 0 });
  button.disabled = true;
  api(url).then(show, (e) => ((error.textContent = describeError(e)), (error.hidden = false)));
  button.onclick = async () => {
    error.hidden = true;
    button.disabled = true;
    const on = button.getAttribute('aria-pressed') !== 'true';
    try {
      show(await api(url, { method: on ? 'PUT' : 'DELETE' }));
    } catch (e) {
      error.textContent = describeError(e);
      error.hidden = false;
      button.disabled = false;
    }
  };
  return h('div', { class: 'reminder' }, button, people, error);
}

/**
 * A scheduled room. `changed(room)` gets the room after the host started, cancelled or
 * edited it; everyone else is told the page joins by itself (the page polls).
 */
export function renderScheduled(body, room, isHost, changed) {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const act = (path) => async () => {
    error.hidden = true;
    try {
      changed((await api(`/v1/rooms/${enc(room.id)}/${path}`, { method: 'POST' })) || (await api(`/v1/rooms/${enc(room.id)}`)));
    } catch (e) {
      error.textContent = describeError(e);
      error.hidden = false;
    }
  };
  const cancel = async () => {
    if (await confirmSheet('Cancel this room?', 'People waiting for it will see that it was cancelled.', 'Cancel room')) await act('cancel')();
  };
  const hostActions = h(
    'div',
    { class: 'row-actions' },
    h('button', { type: 'button', class: 'btn btn-primary', onclick: act('start') }, 'Start now'),
    h('button', { type: 'button', class: 'btn', onclick: () => editScheduled(room, changed) }, 'Edit'),
    h('button', { type: 'button', class: 'btn btn-danger', onclick: cancel }, 'Cancel room'),
  );
  mount(
    body,
    h(
      'div',
      { class: 'panel scheduled' },
      avatar(room.host, 64),
      h('p', {}, `Hosted by ${room.host}`),
      h('p', { class: 'scheduled-time' }, 'Starts ', h('time', { datetime: room.scheduled_for }, formatDateTime(room.scheduled_for))),
      isHost ? hostActions : h('p', { class: 'hint' }, 'This page joins the room by itself when the host starts it.'),
      isHost ? h('p', { class: 'hint reminder-count' }, reminderText(false, room.reminder_count ?? 0).people) : reminderToggle(room),
      error,
    ),
  );
}

function localInput(iso) {
  const pad = (n) => String(n).padStart(2, '0');
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function editScheduled(room, changed) {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const save = async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    try {
      const body = { title: String(data.get('title')).trim(), scheduled_for: new Date(String(data.get('when'))).toISOString() };
      const fresh = await api(`/v1/rooms/${enc(room.id)}`, { method: 'PATCH', body });
      dialog.close();
      changed(fresh);
    } catch (err) {
      error.textContent = describeError(err);
      error.hidden = false;
    }
  };
  const form = h(
    'form',
    { class: 'form', onsubmit: save },
    h('label', { for: 'edit-title' }, 'Title'),
    h('input', { id: 'edit-title', name: 'title', value: room.title, required: true, maxlength: 100 }),
    h('label', { for: 'edit-when' }, 'Start time'),
    h('input', { id: 'edit-when', name: 'when', type: 'datetime-local', value: localInput(room.scheduled_for), required: true }),
    error,
    h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save'),
  );
  const dialog = sheet('Edit room', form);
}

/** The room is over for us: why, and the way back (and a retry when one may help). */
export function renderOver(body, over, retry) {
  mount(
    body,
    h(
      'div',
      { class: 'panel room-over', role: 'status' },
      h('p', {}, over.text),
      h('div', { class: 'row-actions' }, over.retry ? h('button', { type: 'button', class: 'btn btn-primary', onclick: retry }, 'Try again') : null, h('a', { class: 'btn', href: '/' }, 'Back to rooms')),
    ),
  );
}
