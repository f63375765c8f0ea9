// People on the "you" page: finding someone by user id (with every relation button), and
// the lists of whom you follow and who follows you.

import { api, describeError } from '../api.js';
import { avatar, h, mount } from '../ui.js';
import { relationToggle } from './toggles.js';

const enc = encodeURIComponent;

/** The "Find people" form and its result, in `section`. */
export function renderFind(section, ctx) {
  const result = h('div', { class: 'find-result', 'aria-live': 'polite' });
  const input = h('input', {
    id: 'find-user',
    name: 'user_id',
    placeholder: 'user id, e.g. bob',
    autocomplete: 'off',
    autocapitalize: 'none',
    spellcheck: false,
    pattern: '[A-Za-z0-9_.\\-]{1,64}',
    required: true,
  });
  const onsubmit = (e) => {
    e.preventDefault();
    find(input.value.trim(), result, ctx);
  };
  mount(
    section,
    h('h2', { id: 'find-title' }, 'Find people'),
    h(
      'form',
      { class: 'inline-form', onsubmit },
      h('label', { for: 'find-user', class: 'visually-hidden' }, 'User id'),
      input,
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Find'),
    ),
    result,
  );
}

async function find(userId, result, ctx) {
  if (userId === ctx.me) {
    mount(result, h('p', { class: 'hint' }, 'That is you.'));
    return;
  }
  try {
    const rel = await api(`/v1/users/${enc(userId)}/relationship`);
    if (rel.following) ctx.sets.following.add(userId);
    else ctx.sets.following.delete(userId);
    mount(result, personCard(userId, rel, ctx));
  } catch (err) {
    mount(result, h('p', { class: 'form-error', role: 'alert' }, describeError(err)));
  }
}

function personCard(userId, rel, ctx) {
  const followsYou = rel.followed_by ? h('span', { class: 'badge badge-small' }, 'Follows you') : null;
  return h(
    'div',
    { class: 'person-card', dataset: { userId } },
    h('div', { class: 'person' }, avatar(userId, 48), h('span', { class: 'person-name' }, userId), followsYou),
    h(
      'div',
      { class: 'person-actions wrap' },
      ['follow', 'closeFriend', 'mute', 'hide', 'block'].map((kind) => relationToggle(ctx, kind, userId, rel.blocked)),
    ),
  );
}

function personRow(userId, actions) {
  return h(
    'li',
    { class: 'person', dataset: { userId } },
    avatar(userId, 36),
    h('span', { class: 'person-name' }, userId),
    h('span', { class: 'person-actions' }, actions),
  );
}

/** Whom you follow, each with Follow and Mute stories. */
export function renderFollowing(section, ctx) {
  return renderPeople(section, ctx, {
    title: 'Following',
    path: `/v1/users/${enc(ctx.me)}/following`,
    empty: 'You do not follow anyone yet.',
    kinds: ['follow', 'mute'],
  });
}

/** Who follows you, each with Follow and Close friend. */
export function renderFollowers(section, ctx) {
  return renderPeople(section, ctx, {
    title: 'Followers',
    path: `/v1/users/${enc(ctx.me)}/followers`,
    empty: 'No followers yet.',
    kinds: ['follow', 'closeFriend'],
  });
}

async function renderPeople(section, ctx, { title, path, empty, kinds }) {
  const list = h('ul', { class: 'people-list', 'aria-label': title });
  mount(section, h('h2', { id: `${title.toLowerCase()}-title` }, title), list);
  try {
    const { users } = await api(path, { query: { limit: 200 } });
    if (!users.length) list.append(h('li', { class: 'empty' }, empty));
    for (const u of users) list.append(personRow(u, kinds.map((kind) => relationToggle(ctx, kind, u))));
  } catch (e) {
    list.append(h('li', { class: 'form-error' }, describeError(e)));
  }
}
