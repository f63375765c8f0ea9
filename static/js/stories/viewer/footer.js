// Under a story: its caption, then for the author a note of what is switched off, and for
// everyone else the reaction buttons and the reply field (when the author allows them).

import { api, describeError } from '../../api.js';
import { session } from '../../session.js';
import { h, icon, mount, toast } from '../../ui.js';
import { ownNote } from './rules.js';

const enc = encodeURIComponent;

/**
 * Fill the footer for `story`. `ctx`: `own` (the author is looking), `author`, `root` (where
 * a reaction bursts) and `typing(on)` (the player pauses while a reply is being written).
 */
export function renderFooter(footer, story, ctx) {
  const caption = story.caption ? h('p', { class: 'story-caption' }, story.caption) : null;
  if (ctx.own) {
    const note = ownNote(story);
    mount(footer, caption, note ? h('p', { class: 'viewer-note' }, note) : null);
    return;
  }
  const closed = !story.allow_reactions && !story.allow_replies;
  mount(
    footer,
    caption,
    story.allow_reactions ? reactionBar(story, ctx.root) : null,
    story.allow_replies ? replyForm(story, ctx) : null,
    closed ? h('p', { class: 'viewer-note' }, 'Replies and reactions are off for this story.') : null,
  );
}

function reactionBar(story, root) {
  return h(
    'div',
    { class: 'reactions', role: 'group', 'aria-label': 'React' },
    session.config.allowed_reactions.map((emoji) =>
      h('button', { type: 'button', class: 'reaction-btn', 'aria-label': `React ${emoji}`, onclick: () => react(story, emoji, root) }, emoji),
    ),
  );
}

async function react(story, emoji, root) {
  const burst = h('span', { class: 'reaction-burst', 'aria-hidden': 'true' }, emoji);
  root.append(burst);
  setTimeout(() => burst.remove(), 1200);
  try {
    await api(`/v1/stories/${enc(story.id)}/reactions`, { method: 'POST', body: { emoji } });
    toast(`You reacted ${emoji}`);
  } catch (e) {
    toast(describeError(e), 'error');
  }
}

function replyForm(story, { author, typing }) {
  const input = h('input', {
    type: 'text',
    name: 'reply',
    class: 'reply-input',
    placeholder: `Reply to ${author}…`,
    'aria-label': `Reply to ${author}`,
    maxlength: session.config.max_text,
    autocomplete: 'off',
    onfocus: () => typing(true),
    onblur: () => typing(!!input.value),
  });
  const onsubmit = (e) => {
    e.preventDefault();
    sendReply(story, input, author, typing);
  };
  return h(
    'form',
    { class: 'reply-form', onsubmit },
    input,
    h('button', { type: 'submit', class: 'icon-btn on-dark', 'aria-label': 'Send reply', title: 'Send reply' }, icon('send')),
  );
}

async function sendReply(story, input, author, typing) {
  const text = input.value.trim();
  if (!text) return;
  input.disabled = true;
  try {
    await api(`/v1/stories/${enc(story.id)}/replies`, { method: 'POST', body: { text } });
    input.value = '';
    toast(`Reply sent to ${author}.`);
    input.blur();
    typing(false);
  } catch (err) {
    toast(describeError(err), 'error');
  } finally {
    input.disabled = false;
  }
}
