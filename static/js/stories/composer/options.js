// The composer's smaller parts: the story type switch, the audience and reply/reaction
// options, and the upload progress bar.

import { h } from '../../ui.js';
import { KINDS } from './rules.js';

/** Text / Photo / Video radio buttons; `pick(kind)` on change. */
export function kindTabs(kind, pick) {
  return h(
    'div',
    { class: 'segmented', role: 'radiogroup', 'aria-label': 'Story type' },
    KINDS.map((k) =>
      h(
        'label',
        { class: 'segmented-opt' },
        h('input', { type: 'radio', name: 'kind', value: k.id, checked: k.id === kind, onchange: () => pick(k.id) }),
        h('span', {}, k.label),
      ),
    ),
  );
}

/** Who can see it, allow replies, allow reactions. Returns `{el, values()}`. */
export function storyOptions() {
  const audience = h(
    'select',
    { id: 'story-audience', name: 'audience' },
    h('option', { value: 'followers' }, 'Followers'),
    h('option', { value: 'close_friends' }, 'Close friends'),
    h('option', { value: 'public' }, 'Everyone'),
  );
  const allowReplies = h('input', { type: 'checkbox', name: 'allow_replies', checked: true });
  const allowReactions = h('input', { type: 'checkbox', name: 'allow_reactions', checked: true });
  return {
    el: h(
      'div',
      { class: 'compose-options' },
      h('label', { for: 'story-audience' }, 'Who can see it'),
      audience,
      h('label', { class: 'choice' }, allowReplies, ' Allow replies'),
      h('label', { class: 'choice' }, allowReactions, ' Allow reactions'),
    ),
    values: () => ({ audience: audience.value, allow_replies: allowReplies.checked, allow_reactions: allowReactions.checked }),
  };
}

/** The upload progress bar with its Cancel button. Returns `{el, set(fraction)}`; hidden
 *  until `el.hidden` is cleared. */
export function uploadProgress(cancel) {
  const bar = h('progress', { id: 'upload-progress', max: 100, value: 0, 'aria-label': 'Upload progress' });
  const text = h('span', { class: 'hint' }, '0%');
  const button = h('button', { type: 'button', class: 'btn btn-small', onclick: cancel }, 'Cancel');
  const set = (fraction) => {
    const pct = Math.round(fraction * 100);
    bar.value = pct;
    text.textContent = fraction >= 1 ? 'Processing…' : `${pct}%`;
  };
  return { el: h('div', { class: 'upload-progress', hidden: true }, bar, text, button), set };
}
