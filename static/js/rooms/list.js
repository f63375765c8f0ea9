// Live and scheduled rooms, and the form to start or schedule one.

import { api, describeError } from '../api.js';
import { navigate } from '../router.js';
import { avatar, formatDateTime, h, icon, mount, sheet, toast } from '../ui.js';

function roomCard(room) {
  const live = room.state === 'live';
  const people = room.listener_count + room.speaker_count;
  return h(
    'li',
    {},
    h(
      'a',
      {
        class: `room-card ${live ? 'room-live' : 'room-scheduled'}`,
        href: `/rooms/${encodeURIComponent(room.id)}`,
        dataset: { roomId: room.id },
      },
      h(
        'div',
        { class: 'room-card-top' },
        live
          ? h('span', { class: 'badge badge-live' }, 'LIVE')
          : h('span', { class: 'badge' }, formatDateTime(room.scheduled_for)),
        room.language ? h('span', { class: 'room-lang' }, room.language.toUpperCase()) : null,
      ),
      h('h3', { class: 'room-title' }, room.title),
      room.description ? h('p', { class: 'room-desc' }, room.description) : null,
      h(
        'div',
        { class: 'room-card-bottom' },
        avatar(room.host, 28),
        h('span', { class: 'room-host' }, room.host),
        live
          ? h('span', { class: 'room-count' }, `${people} ${people === 1 ? 'person' : 'people'} listening`)
          : null,
      ),
    ),
  );
}

async function section(container, state, title, empty) {
  let rooms;
  let problem = null;
  try {
    ({ rooms } = await api('/v1/rooms', { query: { state } }));
  } catch (e) {
    problem = describeError(e);
  }
  // Refreshes re-render only when something changed, so focus and scroll stay put.
  const key = problem || JSON.stringify(rooms.map((r) => [r.id, r.title, r.state, r.listener_count, r.speaker_count]));
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  const list = h('ul', { class: 'room-list', 'aria-label': title });
  if (problem) list.append(h('li', { class: 'form-error', role: 'alert' }, `Rooms are unavailable: ${problem}`));
  else if (rooms.length === 0) list.append(h('li', { class: 'empty' }, empty));
  else for (const room of rooms) list.append(roomCard(room));
  mount(container, h('h2', { class: 'section-title' }, title), list);
}

export async function renderRoomLists(container) {
  let live = container.querySelector('.rooms-live');
  let scheduled = container.querySelector('.rooms-scheduled');
  if (!live || !scheduled) {
    live = h('section', { class: 'rooms-live' });
    scheduled = h('section', { class: 'rooms-scheduled' });
    mount(container, live, scheduled);
  }
  await Promise.all([
    section(live, 'live', 'Live now', 'No live rooms right now. Start one!'),
    section(scheduled, 'scheduled', 'Scheduled', 'Nothing scheduled.'),
  ]);
}

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** The create body from the form, or an error sentence (a scheduled time in the past). */
export function createBody(data, scheduledAt, now = Date.now()) {
  const body = { title: String(data.get('title')).trim(), speaker_policy: data.get('speaker_policy') };
  const description = String(data.get('description') || '').trim();
  if (description) body.description = description;
  const language = String(data.get('language') || '').trim();
  if (language) body.language = language;
  if (scheduledAt === null) return { body };
  const at = new Date(scheduledAt);
  if (Number.isNaN(at.getTime()) || at.getTime() < now) return { error: 'Pick a time in the future.' };
  body.scheduled_for = at.toISOString();
  return { body };
}

function roomFields(schedule, when) {
  const choice = (value, text, checked = false) => h('label', { class: 'choice' }, h('input', { type: 'radio', name: 'speaker_policy', value, checked }), text);
  return [
    h('label', { for: 'room-title' }, 'Title'),
    h('input', { id: 'room-title', name: 'title', required: true, maxlength: 100, placeholder: 'What do you want to talk about?' }),
    h('label', { for: 'room-description' }, 'Description (optional)'),
    h('textarea', { id: 'room-description', name: 'description', rows: 2, maxlength: 500 }),
    h('label', { for: 'room-language' }, 'Language'),
    h('input', { id: 'room-language', name: 'language', value: 'en', maxlength: 16, size: 6 }),
    h('fieldset', {}, h('legend', {}, 'Who can speak'), choice('anyone_can_request', ' Anyone can raise a hand to ask', true), choice('invited_only', ' Only people I invite')),
    h('label', { class: 'choice' }, schedule, ' Schedule for later'),
    h('label', { for: 'room-when', class: 'visually-hidden' }, 'Start time'),
    when,
  ];
}

async function createRoom(body, done) {
  const room = await api('/v1/rooms', { method: 'POST', body });
  done();
  toast(room.state === 'live' ? 'Your room is live.' : 'Room scheduled.');
  navigate(`/rooms/${encodeURIComponent(room.id)}`);
}

/** The "start a room" sheet: live now, or scheduled for later. */
export function openCreateRoom() {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const when = h('input', { type: 'datetime-local', id: 'room-when', name: 'scheduled_for', value: localInputValue(new Date(Date.now() + 3600_000)), disabled: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Start room now');
  const schedule = h('input', { type: 'checkbox', id: 'room-schedule', name: 'schedule' });
  schedule.onchange = () => {
    when.disabled = !schedule.checked;
    submit.textContent = schedule.checked ? 'Schedule room' : 'Start room now';
  };
  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  const onsubmit = async (e) => {
    e.preventDefault();
    error.hidden = true;
    const { body, error: wrong } = createBody(new FormData(form), schedule.checked ? when.value : null);
    if (wrong) return fail(wrong);
    submit.disabled = true;
    await createRoom(body, () => dialog.close()).catch((err) => fail(describeError(err)));
    submit.disabled = false;
  };
  const form = h('form', { class: 'form create-room', onsubmit }, roomFields(schedule, when), error, submit);
  const dialog = sheet('Start a room', form);
  form.querySelector('#room-title').focus();
  return dialog;
}

export function createRoomButton() {
  return h(
    'button',
    { type: 'button', class: 'btn btn-primary', onclick: () => openCreateRoom() },
    icon('mic', 18),
    ' Start a room',
  );
}
