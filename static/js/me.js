// "You": who you are, finding and following people, your live stories with their
// seen-by lists, the inbox of replies and reactions, and your connections.

import { api, describeError } from './api.js';
import { navigate } from './router.js';
import { refreshMe, session, signOut } from './session.js';
import { avatar, h, icon, mount, relativeTime, toast } from './ui.js';
import { deleteStory, openViewers, renderInbox } from './stories/own.js';

const enc = encodeURIComponent;

async function userSet(path) {
  try {
    const page = await api(path, { query: { limit: 200 } });
    return new Set(page.users);
  } catch {
    return new Set();
  }
}

/** A two-state button bound to a PUT/DELETE pair, e.g. follow/unfollow. */
function toggleButton({ on, onLabel, offLabel, onText, offText, path, after }) {
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

function personRow(userId, actions) {
  return h(
    'li',
    { class: 'person', dataset: { userId } },
    avatar(userId, 36),
    h('span', { class: 'person-name' }, userId),
    h('span', { class: 'person-actions' }, actions),
  );
}

export async function renderMe(view) {
  const me = session.user.user_id;
  const profile = h('section', { class: 'panel profile me-profile', 'aria-label': 'Your profile' });
  const find = h('section', { class: 'panel me-find', 'aria-labelledby': 'find-title' });
  const stories = h('section', { class: 'panel me-stories', 'aria-labelledby': 'mystories-title' });
  const inbox = h('section', { class: 'panel me-inbox', 'aria-labelledby': 'inbox-title' });
  const following = h('section', { class: 'panel me-following', 'aria-labelledby': 'following-title' });
  const followers = h('section', { class: 'panel me-followers', 'aria-labelledby': 'followers-title' });
  mount(
    view,
    h('div', { class: 'me-grid' }, h('div', { class: 'me-col' }, profile, find, following, followers), h('div', { class: 'me-col' }, stories, inbox)),
  );

  const [followingSet, closeFriends, muted, hiddenFrom] = await Promise.all([
    userSet(`/v1/users/${enc(me)}/following`),
    userSet('/v1/me/close-friends'),
    userSet('/v1/me/story-mutes'),
    userSet('/v1/me/story-hidden'),
  ]);

  const refreshCounts = async () => {
    await refreshMe().catch(() => {});
    renderProfile();
  };

  function renderProfile() {
    const u = session.user;
    mount(
      profile,
      avatar(me, 72),
      h(
        'div',
        { class: 'profile-text' },
        h('h1', { id: 'me-name' }, me),
        h('p', { class: 'hint' }, `${u.followers} followers · ${u.following} following`),
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'btn btn-small',
          onclick: () => {
            signOut();
            navigate('/');
          },
        },
        'Sign out',
      ),
    );
  }
  renderProfile();

  const followToggle = (userId) =>
    toggleButton({
      on: followingSet.has(userId),
      onText: 'Following',
      offText: 'Follow',
      onLabel: `Unfollow ${userId}`,
      offLabel: `Follow ${userId}`,
      path: `/v1/users/${enc(userId)}/follow`,
      after: (on) => {
        if (on) followingSet.add(userId);
        else followingSet.delete(userId);
        refreshCounts();
        renderFollowing();
      },
    });
  const setToggle = (set, userId, path, onText, offText, onLabel, offLabel) =>
    toggleButton({
      on: set.has(userId),
      onText,
      offText,
      onLabel,
      offLabel,
      path,
      after: (on) => (on ? set.add(userId) : set.delete(userId)),
    });
  const closeFriendToggle = (userId) =>
    setToggle(closeFriends, userId, `/v1/me/close-friends/${enc(userId)}`, '★ Close friend', '☆ Close friend', `Remove ${userId} from close friends`, `Add ${userId} to close friends`);
  const muteToggle = (userId) =>
    setToggle(muted, userId, `/v1/me/story-mutes/${enc(userId)}`, 'Stories muted', 'Mute stories', `Unmute ${userId}'s stories`, `Mute ${userId}'s stories`);
  const hideToggle = (userId) =>
    setToggle(hiddenFrom, userId, `/v1/me/story-hidden/${enc(userId)}`, 'Hidden from', 'Hide my stories', `Show my stories to ${userId}`, `Hide my stories from ${userId}`);

  // ---- find someone -------------------------------------------------------------------
  const findResult = h('div', { class: 'find-result', 'aria-live': 'polite' });
  const findInput = h('input', {
    id: 'find-user',
    name: 'user_id',
    placeholder: 'user id, e.g. bob',
    autocomplete: 'off',
    autocapitalize: 'none',
    spellcheck: false,
    pattern: '[A-Za-z0-9_.\\-]{1,64}',
    required: true,
  });
  mount(
    find,
    h('h2', { id: 'find-title' }, 'Find people'),
    h(
      'form',
      {
        class: 'inline-form',
        onsubmit: async (e) => {
          e.preventDefault();
          const userId = findInput.value.trim();
          if (userId === me) {
            mount(findResult, h('p', { class: 'hint' }, 'That is you.'));
            return;
          }
          try {
            const rel = await api(`/v1/users/${enc(userId)}/relationship`);
            if (rel.following) followingSet.add(userId);
            else followingSet.delete(userId);
            mount(
              findResult,
              h(
                'div',
                { class: 'person-card', dataset: { userId } },
                h('div', { class: 'person' }, avatar(userId, 48), h('span', { class: 'person-name' }, userId), rel.followed_by ? h('span', { class: 'badge badge-small' }, 'Follows you') : null),
                h(
                  'div',
                  { class: 'person-actions wrap' },
                  followToggle(userId),
                  closeFriendToggle(userId),
                  muteToggle(userId),
                  hideToggle(userId),
                  toggleButton({
                    on: rel.blocked,
                    onText: 'Blocked',
                    offText: 'Block',
                    onLabel: `Unblock ${userId}`,
                    offLabel: `Block ${userId}`,
                    path: `/v1/me/blocks/${enc(userId)}`,
                    after: (on) => {
                      if (on) followingSet.delete(userId);
                      refreshCounts();
                      renderFollowing();
                    },
                  }),
                ),
              ),
            );
          } catch (err) {
            mount(findResult, h('p', { class: 'form-error', role: 'alert' }, describeError(err)));
          }
        },
      },
      h('label', { for: 'find-user', class: 'visually-hidden' }, 'User id'),
      findInput,
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Find'),
    ),
    findResult,
  );

  // ---- connections --------------------------------------------------------------------
  async function renderFollowing() {
    const list = h('ul', { class: 'people-list', 'aria-label': 'Following' });
    mount(following, h('h2', { id: 'following-title' }, 'Following'), list);
    try {
      const { users } = await api(`/v1/users/${enc(me)}/following`, { query: { limit: 200 } });
      if (!users.length) list.append(h('li', { class: 'empty' }, 'You do not follow anyone yet.'));
      for (const u of users) list.append(personRow(u, [followToggle(u), muteToggle(u)]));
    } catch (e) {
      list.append(h('li', { class: 'form-error' }, describeError(e)));
    }
  }
  async function renderFollowers() {
    const list = h('ul', { class: 'people-list', 'aria-label': 'Followers' });
    mount(followers, h('h2', { id: 'followers-title' }, 'Followers'), list);
    try {
      const { users } = await api(`/v1/users/${enc(me)}/followers`, { query: { limit: 200 } });
      if (!users.length) list.append(h('li', { class: 'empty' }, 'No followers yet.'));
      for (const u of users) list.append(personRow(u, [followToggle(u), closeFriendToggle(u)]));
    } catch (e) {
      list.append(h('li', { class: 'form-error' }, describeError(e)));
    }
  }

  // ---- your stories -------------------------------------------------------------------
  async function renderMyStories() {
    const list = h('ul', { class: 'my-stories', 'aria-label': 'Your live stories' });
    mount(
      stories,
      h('div', { class: 'section-head' }, h('h2', { id: 'mystories-title' }, 'Your stories'), h('a', { class: 'btn btn-small btn-primary', href: '/compose' }, icon('plus', 16), ' New')),
      list,
    );
    try {
      const page = await api(`/v1/users/${enc(me)}/stories`);
      if (!page.stories.length) list.append(h('li', { class: 'empty' }, 'No live stories. They last 24 hours.'));
      for (const story of [...page.stories].reverse()) list.append(myStoryRow(story));
    } catch (e) {
      list.append(h('li', { class: 'form-error' }, describeError(e)));
    }
  }
  function myStoryRow(story) {
    let thumb;
    if (story.kind === 'text') {
      thumb = h('span', { class: 'thumb thumb-text', style: { background: story.background || '#1d9bf0' } }, (story.text || '').slice(0, 24));
    } else {
      thumb = h('img', { class: 'thumb', src: story.media?.thumbnail_url || story.media?.url, alt: '' });
    }
    const n = story.view_count ?? 0;
    const row = h(
      'li',
      { class: 'my-story', dataset: { storyId: story.id } },
      h('a', { href: `/stories/${enc(me)}/${enc(story.id)}?from=me`, class: 'my-story-open', 'aria-label': `Open your ${story.kind} story from ${relativeTime(story.created_at)}` }, thumb),
      h(
        'div',
        { class: 'my-story-text' },
        h('span', {}, story.kind === 'text' ? 'Text' : story.kind === 'photo' ? 'Photo' : 'Video', ' · ', relativeTime(story.created_at)),
        h('span', { class: 'hint' }, `expires ${relativeTime(story.expires_at)}`),
      ),
      h(
        'span',
        { class: 'person-actions' },
        h('button', { type: 'button', class: 'btn btn-small seen-by', 'aria-label': `Seen by ${n}`, onclick: () => openViewers(story) }, icon('eye', 16), ` ${n}`),
        h(
          'button',
          {
            type: 'button',
            class: 'icon-btn',
            'aria-label': 'Delete story',
            title: 'Delete story',
            onclick: async () => {
              if (await deleteStory(story)) row.remove();
            },
          },
          icon('trash'),
        ),
      ),
    );
    return row;
  }

  mount(inbox, h('h2', { id: 'inbox-title' }, 'Replies and reactions'));
  const inboxBody = h('div');
  inbox.append(inboxBody);
  await Promise.all([renderFollowing(), renderFollowers(), renderMyStories(), renderInbox(inboxBody)]);
  refreshCounts();
  return null;
}
