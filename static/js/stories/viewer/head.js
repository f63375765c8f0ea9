// The viewer's head: whose story and when, its audience, and the author's own tools
// (the seen-by list and the settings sheet).

import { h, icon, iconButton, mount, relativeTime } from '../../ui.js';
import { openStorySettings, openViewers } from '../own.js';
import { audienceBadge, seenByLabel } from './rules.js';

export function renderMeta(meta, story, who) {
  const badge = audienceBadge(story.audience);
  mount(
    meta,
    h('span', { class: 'viewer-author' }, who),
    h('time', { class: 'viewer-time', datetime: story.created_at }, relativeTime(story.created_at)),
    badge ? h('span', { class: 'badge badge-small' }, badge) : null,
  );
}

/**
 * The author's tools for `story`. `on.sheet(open)` is told when a sheet opens and closes
 * (the player pauses meanwhile), `on.changed(story)` after a setting changed and
 * `on.deleted(story)` after the story was deleted.
 */
export function renderOwnTools(box, story, on) {
  const n = story.view_count ?? 0;
  const seenBy = () => {
    on.sheet(true);
    openViewers(story, () => on.sheet(false));
  };
  const settings = () => {
    on.sheet(true);
    openStorySettings(story, {
      onChange: () => on.changed(story),
      onDeleted: (s) => on.deleted(s),
      onClose: () => on.sheet(false),
    });
  };
  mount(
    box,
    h('button', { type: 'button', class: 'pill on-dark viewers-btn', 'aria-label': seenByLabel(n), onclick: seenBy }, icon('eye', 16), ` ${n}`),
    iconButton('more', 'Story settings', settings, 'on-dark'),
  );
}
