// The stories tray: a row of avatar rings, own entry first, unseen highlighted, seen greyed.

import { api, describeError } from '../api.js';
import { session } from '../session.js';
import { avatar, h, icon, mount } from '../ui.js';

// The tray's author order, kept so the viewer can move on to the next author.
export const trayState = { authors: [] };

function entryLabel(entry, own) {
  const who = own ? 'Your story' : entry.author;
  const n = entry.story_count;
  const stories = `${n} ${n === 1 ? 'story' : 'stories'}`;
  if (entry.all_seen) return `${who}: ${stories}, all seen`;
  return `${who}: ${entry.unseen_count} new of ${stories}`;
}

function trayItem(entry) {
  const own = entry.author === session.user.user_id;
  return h(
    'li',
    { class: 'tray-item' },
    h(
      'a',
      {
        href: `/stories/${encodeURIComponent(entry.author)}`,
        class: `tray-link ${entry.all_seen ? 'ring-seen' : 'ring-unseen'}`,
        'aria-label': entryLabel(entry, own),
        dataset: { author: entry.author, seen: entry.all_seen ? 'true' : 'false' },
      },
      h('span', { class: 'ring' }, avatar(entry.author, 56)),
      h('span', { class: 'tray-name' }, own ? 'Your story' : entry.author),
    ),
  );
}

function addItem() {
  return h(
    'li',
    { class: 'tray-item' },
    h(
      'a',
      { href: '/compose', class: 'tray-link tray-add', 'aria-label': 'Add a story' },
      h('span', { class: 'ring ring-none' }, avatar(session.user.user_id, 56), h('span', { class: 'add-badge' }, icon('plus', 16))),
      h('span', { class: 'tray-name' }, 'Add story'),
    ),
  );
}

/** Render the tray into `container`; resolves once loaded. */
export async function renderTray(container) {
  const list = h('ul', { class: 'tray', 'aria-label': 'Stories' });
  mount(container, list);
  let entries;
  try {
    ({ entries } = await api('/v1/stories/tray'));
  } catch (e) {
    mount(container, h('p', { class: 'form-error', role: 'alert' }, `Stories are unavailable: ${describeError(e)}`));
    return;
  }
  trayState.authors = entries.map((e) => e.author);
  const hasOwn = entries.some((e) => e.author === session.user.user_id);
  if (!hasOwn) list.append(addItem());
  for (const entry of entries) list.append(trayItem(entry));
  if (entries.length === 0) {
    list.append(h('li', { class: 'tray-empty' }, 'No stories yet. Follow people to see theirs here.'));
  }
}
