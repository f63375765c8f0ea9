// Path routes with the history API. Links inside the app (<a href="/rooms/…">) change the
// route without reloading the page; hash links of the old router (#/rooms/<id>) are
// redirected to their path form, so links shared before still open the same screen.

let onRoute = () => {};
let isRoute = () => false;
let last = null; // the path + query last handed to onRoute

/** Where the app is: the path and query string (e.g. to come back after signing in). */
export function here() {
  return location.pathname + location.search;
}

/** Go to an app path such as `/rooms/<id>`; `replace` keeps the current entry out of Back. */
export function navigate(to, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  last = here();
  onRoute();
}

/** The path of an old `#/path?query` hash route; null for an in-page anchor like `#view`. */
export function pathFromHash(hash) {
  return hash.startsWith('#/') ? hash.slice(1) : null;
}

// Back/Forward and hash changes: route again only when the path or query changed (a click
// on an in-page anchor changes neither).
function sync() {
  const path = pathFromHash(location.hash);
  if (path !== null) history.replaceState(null, '', path);
  if (here() === last) return;
  last = here();
  onRoute();
}

function followLink(e) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target instanceof Element ? e.target.closest('a[href]') : null;
  if (!a || (a.target && a.target !== '_self') || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.hash || !isRoute(url.pathname)) return;
  e.preventDefault();
  if (url.pathname + url.search !== here()) navigate(url.pathname + url.search);
}

/** Start routing: `route()` renders the current location, `matches(path)` says which paths
 *  are the app's own (links to anything else, like /docs, load normally). */
export function startRouter(route, matches) {
  onRoute = route;
  isRoute = matches;
  window.addEventListener('popstate', sync);
  window.addEventListener('hashchange', sync);
  document.addEventListener('click', followLink);
  sync();
}
