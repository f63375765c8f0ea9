// Reactions float up from the sender's tile (or from the bottom for listeners) and fade.

import { h } from '../../ui.js';

const FLOAT_MS = 2200; // the length of the `floatup` animation in app.css

export function floatReaction(floats, stage, userId, emoji) {
  const el = h('span', { class: 'float', title: userId }, emoji);
  const tile = stage.querySelector(`[data-user-id="${CSS.escape(userId)}"]`);
  if (tile) {
    const box = floats.getBoundingClientRect();
    const r = tile.getBoundingClientRect();
    el.style.left = `${r.left - box.left + r.width / 2 - 14}px`;
    el.style.top = `${r.top - box.top}px`;
  } else {
    el.style.left = `${20 + Math.random() * 60}%`;
    el.style.bottom = '80px';
  }
  floats.append(el);
  setTimeout(() => el.remove(), FLOAT_MS);
}
