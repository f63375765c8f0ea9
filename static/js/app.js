// Entry point: a path router (history API, router.js) over the screens. Each screen is
// `render(view, params)` and may return a cleanup function, called when the route changes
// (timers, sockets, media). The server answers every one of these paths with index.html.
//
//   /                        tray of stories + rooms
//   /stories/<author>        full-screen story viewer (?story=<id> starts at that story)
//   /stories/<author>/<id>   the same, starting at one story (a story's share link)
//   /compose                 story composer
//   /rooms/<id>              a room (its share link)
//   /me                      who you are, people, your stories, inbox
//
// Old hash links (#/rooms/<id>) are redirected to the path form.

import { here, navigate, startRouter } from './router.js';
import { session, restore } from './session.js';
import { avatar, mount, h, toast } from './ui.js';
import { renderSignIn } from './signin.js';
import { renderHome } from './home.js';
import { renderMe } from './me.js';
import { renderViewer } from './stories/viewer.js';
import { renderComposer } from './stories/composer.js';
import { renderRoom } from './rooms/room.js';

const routes = [
  { pattern: /^\/$/, name: 'home', render: renderHome },
  { pattern: /^\/stories\/([^/]+)$/, name: 'viewer', render: renderViewer, fullscreen: true },
  { pattern: /^\/stories\/([^/]+)\/([^/]+)$/, name: 'viewer', render: renderSharedStory, fullscreen: true },
  { pattern: /^\/compose$/, name: 'compose', render: renderComposer },
  { pattern: /^\/rooms\/([^/]+)$/, name: 'room', render: renderRoom, public: true },
  { pattern: /^\/me$/, name: 'me', render: renderMe },
];

const view = document.getElementById('view');
let cleanup = null;
let renderId = 0;
let routed = false; // the first page's title comes from the server (a room's title)

function renderSharedStory(el, author, storyId, query) {
  const params = new URLSearchParams(query);
  params.set('story', storyId);
  return renderViewer(el, author, params);
}

const isAppPath = (path) => routes.some((r) => r.pattern.test(path));

function updateChrome(routeName) {
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === routeName) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const badge = document.getElementById('me-badge');
  if (session.user) mount(badge, avatar(session.user.user_id, 32));
  else mount(badge, h('span', { class: 'signin-chip' }, 'Sign in'));
  document.body.classList.toggle('signed-out', !session.user);
}

async function route() {
  const id = ++renderId;
  runCleanup();
  const path = location.pathname;
  const match = routes.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  if (!match) {
    navigate('/', { replace: true });
    return;
  }
  const { r, m } = match;
  prepareView(r);
  if (!session.user && !r.public) {
    cleanup = renderSignIn(view, { next: here() });
    return;
  }
  await renderRoute(id, r, m.slice(1).map(decodeURIComponent), new URLSearchParams(location.search));
}

function runCleanup() {
  if (!cleanup) return;
  try {
    cleanup();
  } catch (e) {
    console.error(e);
  }
  cleanup = null;
}

/** The page around a screen: title, full screen or not, navigation, an empty view. */
function prepareView(r) {
  if (routed) document.title = 'Ephemera';
  routed = true;
  document.body.classList.toggle('fullscreen', Boolean(r.fullscreen));
  updateChrome(r.name);
  view.replaceChildren();
  view.className = `view view-${r.name}`;
}

/** Render screen `r`; render number `id` keeps its cleanup only if no route came since. */
async function renderRoute(id, r, params, query) {
  try {
    const result = await r.render(view, ...params, query);
    if (id !== renderId) {
      if (typeof result === 'function') result(); // the route changed while rendering
      return;
    }
    cleanup = typeof result === 'function' ? result : null;
  } catch (e) {
    console.error(e);
    if (id === renderId) {
      mount(view, h('div', { class: 'panel error-panel', role: 'alert' }, e.message || String(e)));
    }
  }
}

/** Re-render the current route (after sign-in, or when something changed under it). */
export function rerender() {
  route();
}

window.addEventListener('ephemera:unauthorized', () => {
  if (session.user) {
    toast('Your session ended. Sign in again.', 'error');
    session.user = null;
    route();
  }
});

async function boot() {
  try {
    await restore();
  } catch (e) {
    toast(e.message, 'error');
  }
  startRouter(route, isAppPath);
}

boot();
