// "You": who you are, finding and following people, your live stories with their
// seen-by lists, the inbox of replies and reactions, and your connections. Its parts are
// in me/: people (people.js), the relation buttons (toggles.js), your stories
// (stories.js), and the words and endpoints as plain data (relations.js).

import { api } from './api.js';
import { navigate } from './router.js';
import { refreshMe, session, signOut } from './session.js';
import { avatar, h, mount } from './ui.js';
import { renderInbox } from './stories/own.js';
import { renderFind, renderFollowers, renderFollowing } from './me/people.js';
import { countsLine, setPaths } from './me/relations.js';
import { renderMyStories } from './me/stories.js';

export async function renderMe(view) {
  const me = session.user.user_id;
  const s = sections();
  mount(
    view,
    h('div', { class: 'me-grid' }, h('div', { class: 'me-col' }, s.profile, s.find, s.following, s.followers), h('div', { class: 'me-col' }, s.stories, s.inbox)),
  );
  const refreshCounts = async () => {
    await refreshMe().catch(() => {});
    renderProfile(s.profile, me);
  };
  const ctx = { me, sets: await loadSets(me) };
  ctx.followsChanged = () => {
    refreshCounts();
    renderFollowing(s.following, ctx);
  };
  renderProfile(s.profile, me);
  renderFind(s.find, ctx);
  mount(s.inbox, h('h2', { id: 'inbox-title' }, 'Replies and reactions'));
  const inboxBody = h('div');
  s.inbox.append(inboxBody);
  await Promise.all([renderFollowing(s.following, ctx), renderFollowers(s.followers, ctx), renderMyStories(s.stories, me), renderInbox(inboxBody)]);
  refreshCounts();
  return null;
}

function sections() {
  const section = (cls, title) => h('section', { class: `panel ${cls}`, 'aria-labelledby': title });
  return {
    profile: h('section', { class: 'panel profile me-profile', 'aria-label': 'Your profile' }),
    find: section('me-find', 'find-title'),
    stories: section('me-stories', 'mystories-title'),
    inbox: section('me-inbox', 'inbox-title'),
    following: section('me-following', 'following-title'),
    followers: section('me-followers', 'followers-title'),
  };
}

/** The page's sets of user ids (following, close friends, muted, hidden from); a list
 *  that cannot be read counts as empty. */
async function loadSets(me) {
  const paths = Object.entries(setPaths(me));
  const sets = await Promise.all(paths.map(([, path]) => userSet(path)));
  return Object.fromEntries(paths.map(([name], i) => [name, sets[i]]));
}

async function userSet(path) {
  try {
    const page = await api(path, { query: { limit: 200 } });
    return new Set(page.users);
  } catch {
    return new Set();
  }
}

function renderProfile(profile, me) {
  const signOutNow = () => {
    signOut();
    navigate('/');
  };
  mount(
    profile,
    avatar(me, 72),
    h('div', { class: 'profile-text' }, h('h1', { id: 'me-name' }, me), h('p', { class: 'hint' }, countsLine(session.user))),
    h('button', { type: 'button', class: 'btn btn-small', onclick: signOutNow }, 'Sign out'),
  );
}
