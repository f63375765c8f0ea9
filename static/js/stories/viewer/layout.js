// The viewer's frame: the stage with its two tap zones, the top bar (progress segments,
// the head, sound, pause, close) and the footer. The player fills the parts.

import { avatar, h, icon, iconButton, mount } from '../../ui.js';
import { HOLD_MS } from './rules.js';

/**
 * The viewer's elements. `on` holds the player's handlers: prev(), next(), hold(on),
 * pause(), sound(), close().
 */
export function viewerLayout(author, own, on) {
  const parts = {
    segments: h('div', { class: 'segments', 'aria-hidden': 'true' }),
    position: h('span', { class: 'visually-hidden', 'aria-live': 'polite' }),
    meta: h('div', { class: 'viewer-meta' }),
    ownTools: h('div', { class: 'viewer-own' }),
    soundBtn: iconButton('speaker', 'Unmute video', on.sound, 'on-dark'),
    pauseBtn: iconButton('pause', 'Pause', on.pause, 'on-dark'),
    content: h('div', { class: 'viewer-content' }),
    footer: h('div', { class: 'viewer-footer' }),
  };
  parts.soundBtn.hidden = true;
  parts.root = h(
    'div',
    { class: 'viewer', role: 'dialog', 'aria-modal': 'true', 'aria-label': own ? 'Your stories' : `Stories by ${author}` },
    h(
      'div',
      { class: 'viewer-stage' },
      parts.content,
      tapZone('tap-prev', 'Previous story', on.prev, on.hold),
      tapZone('tap-next', 'Next story', on.next, on.hold),
      topBar(author, parts, on.close),
      parts.footer,
    ),
  );
  return parts;
}

function topBar(author, parts, close) {
  return h(
    'div',
    { class: 'viewer-top' },
    parts.segments,
    parts.position,
    h(
      'div',
      { class: 'viewer-head' },
      avatar(author, 36),
      parts.meta,
      parts.ownTools,
      parts.soundBtn,
      parts.pauseBtn,
      iconButton('close', 'Close stories', close, 'on-dark'),
    ),
  );
}

/** A tap zone: a click calls go(); a press held longer than HOLD_MS calls hold(true), and
 *  hold(false) on release, without going anywhere. */
function tapZone(cls, label, go, hold) {
  const btn = h('button', { type: 'button', class: `tap-zone ${cls}`, 'aria-label': label });
  let timer = null;
  let held = false;
  btn.addEventListener('pointerdown', () => {
    held = false;
    timer = setTimeout(() => {
      held = true;
      hold(true);
    }, HOLD_MS);
  });
  const release = () => {
    clearTimeout(timer);
    if (held) hold(false);
  };
  for (const type of ['pointerup', 'pointercancel', 'pointerleave']) btn.addEventListener(type, release);
  btn.addEventListener('click', (e) => {
    e.preventDefault();
    if (held) held = false;
    else go();
  });
  btn.addEventListener('contextmenu', (e) => e.preventDefault()); // long press on phones
  return btn;
}

/** One progress segment per story; returns the fills, in story order. */
export function renderSegments(segments, count) {
  const fills = Array.from({ length: count }, () => h('div', { class: 'seg-fill' }));
  mount(
    segments,
    fills.map((fill, i) => h('div', { class: 'seg', dataset: { index: String(i) } }, fill)),
  );
  return fills;
}

export function paintPause(btn, userPaused) {
  const label = userPaused ? 'Play' : 'Pause';
  btn.setAttribute('aria-label', label);
  btn.title = label;
  btn.replaceChildren(icon(userPaused ? 'play' : 'pause'));
}

export function paintSound(btn, muted) {
  const label = muted ? 'Unmute video' : 'Mute video';
  btn.setAttribute('aria-label', label);
  btn.title = label;
  btn.classList.toggle('is-off', muted);
}
