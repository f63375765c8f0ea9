// The stories tray: a row of avatar rings, own entry first, unseen highlighted, seen greyed.
// It stays live while on screen: the server pushes the whole tray (Server-Sent Events,
// GET /v1/stories/tray/events, docs/stories.md) at once and after every change.

import { api, describeError, getToken } from '../api.js';
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

function renderEntries(list, entries) {
  trayState.authors = entries.map((e) => e.author);
  const items = [];
  if (!entries.some((e) => e.author === session.user.user_id)) items.push(addItem());
  for (const entry of entries) items.push(trayItem(entry));
  if (entries.length === 0) {
    items.push(h('li', { class: 'tray-empty' }, 'No stories yet. Follow people to see theirs here.'));
  }
  list.replaceChildren(...items);
}

// The one live tray of the page (a new render replaces it).
let live = null;

/** Keep `list` in step with the server while `container` is on the page. EventSource
 *  reconnects by itself after a dropped connection (the first event is the whole tray
 *  again); an answer other than 200 (401, 429, 503) or an expired token ends it, so after
 *  a pause the tray is read once (a 401 there signs the user out) and a new stream opens. */
function stayLive(container, list) {
  if (live) live.close();
  const url = `/v1/stories/tray/events?token=${encodeURIComponent(getToken() || '')}`;
  const source = new EventSource(url);
  let retry = null;
  const close = () => {
    source.close();
    clearTimeout(retry);
    observer.disconnect();
    if (live && live.source === source) live = null;
  };
  const reopen = () => {
    close();
    retry = setTimeout(async () => {
      if (!container.isConnected) return;
      try {
        renderEntries(list, (await api('/v1/stories/tray')).entries);
      } catch {
        /* shown on the next successful read */
      }
      if (container.isConnected) stayLive(container, list);
    }, 5000);
  };
  source.addEventListener('tray', (e) => renderEntries(list, JSON.parse(e.data).entries));
  source.addEventListener('expired', reopen);
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) reopen();
  };
  // The route replaced the page: stop listening.
  const observer = new MutationObserver(() => container.isConnected || close());
  if (container.parentNode) observer.observe(container.parentNode, { childList: true });
  live = { source, close };
}

/** Render the tray into `container`; resolves once loaded, then keeps it live. */
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
  renderEntries(list, entries);
  stayLive(container, list);
}
