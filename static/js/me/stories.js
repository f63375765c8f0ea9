// "Your stories" on the "you" page: your live stories, newest first, each with its
// seen-by count (the viewer list) and delete.

import { api, describeError } from '../api.js';
import { deleteStory, openViewers } from '../stories/own.js';
import { h, icon, mount, relativeTime } from '../ui.js';
import { storyKindLabel } from './relations.js';

const enc = encodeURIComponent;

export async function renderMyStories(section, me) {
  const list = h('ul', { class: 'my-stories', 'aria-label': 'Your live stories' });
  const newStory = h('a', { class: 'btn btn-small btn-primary', href: '/compose' }, icon('plus', 16), ' New');
  mount(section, h('div', { class: 'section-head' }, h('h2', { id: 'mystories-title' }, 'Your stories'), newStory), list);
  try {
    const page = await api(`/v1/users/${enc(me)}/stories`);
    if (!page.stories.length) list.append(h('li', { class: 'empty' }, 'No live stories. They last 24 hours.'));
    for (const story of [...page.stories].reverse()) list.append(storyRow(story, me));
  } catch (e) {
    list.append(h('li', { class: 'form-error' }, describeError(e)));
  }
}

function thumbnail(story) {
  if (story.kind === 'text') {
    return h('span', { class: 'thumb thumb-text', style: { background: story.background || '#1d9bf0' } }, (story.text || '').slice(0, 24));
  }
  return h('img', { class: 'thumb', src: story.media?.thumbnail_url || story.media?.url, alt: '' });
}

function storyRow(story, me) {
  const when = relativeTime(story.created_at);
  const open = h(
    'a',
    { href: `/stories/${enc(me)}/${enc(story.id)}?from=me`, class: 'my-story-open', 'aria-label': `Open your ${story.kind} story from ${when}` },
    thumbnail(story),
  );
  const row = h(
    'li',
    { class: 'my-story', dataset: { storyId: story.id } },
    open,
    h(
      'div',
      { class: 'my-story-text' },
      h('span', {}, storyKindLabel(story.kind), ' · ', when),
      h('span', { class: 'hint' }, `expires ${relativeTime(story.expires_at)}`),
    ),
    h('span', { class: 'person-actions' }, seenByButton(story), deleteButton(story, () => row.remove())),
  );
  return row;
}

function seenByButton(story) {
  const n = story.view_count ?? 0;
  return h('button', { type: 'button', class: 'btn btn-small seen-by', 'aria-label': `Seen by ${n}`, onclick: () => openViewers(story) }, icon('eye', 16), ` ${n}`);
}

function deleteButton(story, deleted) {
  const onclick = async () => {
    if (await deleteStory(story)) deleted();
  };
  return h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Delete story', title: 'Delete story', onclick }, icon('trash'));
}
