// Two-state buttons bound to a PUT/DELETE pair (follow, close friend, mute, hide, block),
// and what the "you" page does after each one changes.

import { api, describeError } from '../api.js';
import { h, toast } from '../ui.js';
import { relation } from './relations.js';

/** A two-state button: PUT `path` turns it on, DELETE turns it off; `after(on)` follows. */
export function toggleButton({ on, onLabel, offLabel, onText, offText, path, after }) {
  const btn = h('button', { type: 'button', class: 'btn btn-small' });
  const paint = () => {
    btn.textContent = on ? onText : offText;
    btn.setAttribute('aria-pressed', on ? 'true' : 'false');
    btn.setAttribute('aria-label', on ? onLabel : offLabel);
    btn.classList.toggle('btn-active', on);
  };
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    try {
      await api(path, { method: on ? 'DELETE' : 'PUT' });
      on = !on;
      paint();
      after?.(on);
    } catch (e) {
      toast(describeError(e), 'error');
    } finally {
      btn.disabled = false;
    }
  });
  paint();
  return btn;
}

/**
 * The button for relation `kind` (see relations.js) to `userId`. `ctx.sets` holds the
 * page's sets of user ids, kept up to date; `ctx.followsChanged()` redraws what depends
 * on whom we follow. `blocked` is the block's state (blocks have no set on the page).
 */
export function relationToggle(ctx, kind, userId, blocked = false) {
  const { set, ...words } = relation(kind, userId);
  const members = set ? ctx.sets[set] : null;
  return toggleButton({
    ...words,
    on: members ? members.has(userId) : blocked,
    after: (on) => changed(ctx, kind, userId, on),
  });
}

function changed(ctx, kind, userId, on) {
  const { set } = relation(kind, userId);
  if (set) {
    if (on) ctx.sets[set].add(userId);
    else ctx.sets[set].delete(userId);
  } else if (on) {
    ctx.sets.following.delete(userId); // blocking someone unfollows them
  }
  if (kind === 'follow' || kind === 'block') ctx.followsChanged();
}
