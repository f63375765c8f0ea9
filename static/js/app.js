// Entry point: a hash router over the screens. Each screen is `render(view, params)` and may
// return a cleanup function, called when the route changes (timers, sockets, media).
//
//   #/                     tray of stories + rooms
//   #/stories/<author>     full-screen story viewer
//   #/compose              story composer
//   #/rooms/<id>           a room (the share link opens this directly)
//   #/me                   who you are, people, your stories, inbox

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
  { pattern: /^\/compose$/, name: 'compose', render: renderComposer },
  { pattern: /^\/rooms\/([^/]+)$/, name: 'room', render: renderRoom, public: true },
  { pattern: /^\/me$/, name: 'me', render: renderMe },
];

const view = document.getElementById('view');
let cleanup = null;
let renderId = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  return { path, query: new URLSearchParams(qs || '') };
}

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
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
    cleanup = null;
  }
  const { path, query } = parseHash();
  const match = routes.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  if (!match) {
    location.replace('#/');
    return;
  }
  const { r, m } = match;
  document.body.classList.toggle('fullscreen', Boolean(r.fullscreen));
  updateChrome(r.name);
  view.replaceChildren();
  view.className = `view view-${r.name}`;
  if (!session.user && !r.public) {
    cleanup = renderSignIn(view, { next: location.hash });
    return;
  }
  const params = m.slice(1).map(decodeURIComponent);
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

window.addEventListener('hashchange', route);
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
  route();
}

boot();
