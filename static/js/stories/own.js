// Things only an author sees: who viewed a story, the inbox of replies and reactions,
// reply/reaction switches and delete.

import { api, describeError } from '../api.js';
import { avatar, confirmSheet, h, relativeTime, sheet, toast } from '../ui.js';

/** The seen-by list of one story, newest first, paged. Returns the dialog. */
export function openViewers(story, onClose) {
  const list = h('ul', { class: 'people-list', 'aria-label': 'Viewers' });
  const count = h('p', { class: 'hint', 'aria-live': 'polite' }, 'Loading…');
  const more = h('button', { type: 'button', class: 'btn', hidden: true }, 'Load more');
  let cursor = null;
  async function load() {
    more.disabled = true;
    try {
      const page = await api(`/v1/stories/${encodeURIComponent(story.id)}/viewers`, {
        query: { cursor, limit: 50 },
      });
      const n = page.view_count;
      count.textContent = n === 0 ? 'No one has seen this story yet.' : `Seen by ${n} ${n === 1 ? 'person' : 'people'}`;
      for (const v of page.viewers) {
        list.append(
          h(
            'li',
            { class: 'person', dataset: { userId: v.user_id } },
            avatar(v.user_id, 36),
            h('span', { class: 'person-name' }, v.user_id),
            h('time', { class: 'person-meta', datetime: v.seen_at }, relativeTime(v.seen_at)),
          ),
        );
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (e) {
      count.textContent = describeError(e);
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', load);
  const dialog = sheet('Seen by', count, list, more);
  dialog.classList.add('viewers-sheet');
  if (onClose) dialog.addEventListener('close', onClose);
  load();
  return dialog;
}

/** Reply/reaction switches and delete for one of your stories. */
export function openStorySettings(story, { onChange, onDeleted, onClose } = {}) {
  let closing = true; // whether closing the sheet ends the interaction (not so for delete)
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const remove = async () => {
    // The confirmation replaces this sheet: the caller stays paused until it is answered.
    closing = false;
    dialog.close();
    if (await deleteStory(story)) onDeleted?.(story);
    else onClose?.();
  };
  const dialog = sheet(
    'Story settings',
    settingSwitch(story, 'allow_replies', 'Allow replies', error, onChange),
    settingSwitch(story, 'allow_reactions', 'Allow reactions', error, onChange),
    error,
    h('button', { type: 'button', class: 'btn btn-danger', onclick: remove }, 'Delete story'),
  );
  dialog.addEventListener('close', () => closing && onClose?.());
  return dialog;
}

/** A checkbox for one of the story's boolean settings, saved at once (PATCH); on failure it
 *  flips back and `error` says why. */
function settingSwitch(story, field, label, error, onChange) {
  const box = h('input', { type: 'checkbox', checked: story[field] });
  box.addEventListener('change', async () => {
    error.hidden = true;
    box.disabled = true;
    try {
      const updated = await api(`/v1/stories/${encodeURIComponent(story.id)}`, {
        method: 'PATCH',
        body: { [field]: box.checked },
      });
      Object.assign(story, updated);
      if (onChange) onChange(story);
    } catch (e) {
      box.checked = !box.checked;
      error.textContent = describeError(e);
      error.hidden = false;
    } finally {
      box.disabled = false;
    }
  });
  return h('label', { class: 'choice' }, box, ` ${label}`);
}

export async function deleteStory(story) {
  const ok = await confirmSheet('Delete story?', 'It disappears for everyone right away.', 'Delete');
  if (!ok) return false;
  try {
    await api(`/v1/stories/${encodeURIComponent(story.id)}`, { method: 'DELETE' });
    toast('Story deleted.');
    return true;
  } catch (e) {
    toast(describeError(e), 'error');
    return false;
  }
}

function inboxItem(item) {
  const what =
    item.kind === 'reaction'
      ? h('span', { class: 'inbox-emoji', 'aria-label': `reacted ${item.emoji}` }, item.emoji)
      : h('span', { class: 'inbox-text' }, item.text);
  return h(
    'li',
    { class: 'person inbox-item', dataset: { kind: item.kind, storyId: item.story_id } },
    avatar(item.from_user, 36),
    h(
      'div',
      { class: 'inbox-body' },
      h('span', { class: 'person-name' }, item.from_user),
      h('span', { class: 'hint' }, item.kind === 'reaction' ? ' reacted to your story' : ' replied'),
      h('div', {}, what),
    ),
    h('time', { class: 'person-meta', datetime: item.created_at }, relativeTime(item.created_at)),
  );
}

/** The inbox of replies and reactions to your stories, rendered into `container`. */
export async function renderInbox(container) {
  const list = h('ul', { class: 'people-list inbox', 'aria-label': 'Replies and reactions' });
  const more = h('button', { type: 'button', class: 'btn', hidden: true }, 'Load more');
  container.replaceChildren(list, more);
  let cursor = null;
  async function load() {
    more.disabled = true;
    try {
      const page = await api('/v1/stories/inbox', { query: { cursor, limit: 30 } });
      if (!cursor && page.items.length === 0) {
        list.append(h('li', { class: 'empty' }, 'No replies or reactions yet.'));
      }
      for (const item of page.items) list.append(inboxItem(item));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (e) {
      list.append(h('li', { class: 'form-error', role: 'alert' }, describeError(e)));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', load);
  await load();
}
