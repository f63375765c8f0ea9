// The composer's text pane: the text on its background colour, the characters left, and
// the background swatches (the server's `backgrounds`).

import { h } from '../../ui.js';
import { charactersLeft } from './rules.js';

/** Returns `{el, text(), background(), focus()}`. */
export function textPane(cfg) {
  let background = cfg.backgrounds[0];
  const counter = h('span', { class: 'hint counter', 'aria-live': 'polite' });
  const textArea = h('textarea', {
    id: 'story-text',
    name: 'text',
    class: 'compose-text',
    rows: 5,
    maxlength: cfg.max_text,
    placeholder: 'Type something…',
    'aria-label': 'Story text',
    oninput: () => count(),
  });
  const count = () => {
    const { text, warn } = charactersLeft(cfg.max_text, textArea.value.length);
    counter.textContent = text;
    counter.classList.toggle('warn', warn);
  };
  const preview = h('div', { class: 'compose-preview text-preview', style: { background } }, textArea);
  const pick = (color) => {
    background = color;
    preview.style.background = color;
  };
  count();
  return {
    el: h('div', { class: 'compose-pane' }, preview, counter, swatches(cfg.backgrounds, pick)),
    text: () => textArea.value.trim(),
    background: () => background,
    focus: () => textArea.focus(),
  };
}

function swatches(colors, pick) {
  return h(
    'div',
    { class: 'swatches', role: 'radiogroup', 'aria-label': 'Background colour' },
    colors.map((color, i) =>
      h(
        'label',
        { class: 'swatch', style: { background: color }, title: color },
        h('input', {
          type: 'radio',
          name: 'background',
          value: color,
          checked: i === 0,
          'aria-label': `Background ${color}`,
          onchange: () => pick(color),
        }),
      ),
    ),
  );
}
