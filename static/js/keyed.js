// Redrawing without replacing what did not change. A screen that redraws everything on each
// event replaces the very button a person is pressing (the press is lost when the element
// under the pointer goes away between mousedown and mouseup) and drops keyboard focus; these
// helpers touch only the parts whose content changed.

const signatures = new WeakMap(); // element -> signature of what it shows
const entries = new WeakMap(); // list element -> Map(key -> {sig, el})

/** Replace `el`'s children with `build()` only when `sig` differs from what it shows. */
export function remount(el, sig, build) {
  if (signatures.get(el) === sig) return false;
  signatures.set(el, sig);
  keepingFocus(el, () => el.replaceChildren(...[build()].flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)));
  return true;
}

/**
 * Show `items` in `parent` in order, one child element each: an item whose `sig` is the
 * same as last time keeps its element (and any press or focus on it), others are rendered
 * anew; elements are moved only where the order changed.
 */
export function keyed(parent, items, { key, sig, render }) {
  const before = entries.get(parent) || new Map();
  const after = new Map();
  const wanted = items.map((item) => {
    const k = key(item);
    const s = sig(item);
    const old = before.get(k);
    const entry = old && old.sig === s ? old : { sig: s, el: render(item) };
    if (old && old !== entry) swapFocus(old.el, entry.el);
    after.set(k, entry);
    return entry.el;
  });
  wanted.forEach((el, i) => {
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
  });
  while (parent.children.length > wanted.length) parent.lastElementChild.remove();
  entries.set(parent, after);
  return wanted;
}

function focusKey(el) {
  const active = document.activeElement;
  return active && active !== el && el.contains(active) ? active.dataset?.key : undefined;
}

function keepingFocus(el, change) {
  const k = focusKey(el);
  change();
  if (k) el.querySelector(`[data-key="${CSS.escape(k)}"]`)?.focus();
}

function swapFocus(oldEl, newEl) {
  const k = focusKey(oldEl) ?? (document.activeElement === oldEl ? oldEl.dataset.key : undefined);
  if (!k) return;
  queueMicrotask(() => (newEl.dataset.key === k ? newEl : newEl.querySelector(`[data-key="${CSS.escape(k)}"]`))?.focus());
}
