// What a story shows: text on its background colour, or its photo or video element.

import { h } from '../../ui.js';
import { textSize } from './rules.js';

export function textStory(story) {
  return h(
    'div',
    { class: `story-text size-${textSize(story.text)}`, style: { background: story.background || '#1d9bf0' } },
    h('p', {}, story.text),
  );
}

export function missingStory() {
  return h('div', { class: 'story-text size-m story-missing' }, h('p', {}, 'This story could not be loaded.'));
}

/**
 * The photo or video element of a media story (null for a text story). `on.loaded(el)`,
 * `on.ended(el)` and `on.failed(el)` are told which element fired, so the player can ignore
 * a story it has already moved on from.
 */
export function storyMedia(story, author, on) {
  if (story.kind === 'text') return null;
  const m = story.media || {};
  const el = story.kind === 'photo' ? photo(m, story.caption || `Photo story by ${author}`, on) : video(m, on);
  el.addEventListener('error', () => on.failed(el));
  return el;
}

function photo(m, alt, on) {
  const el = h('img', { class: 'story-media', src: m.url, alt, draggable: 'false' });
  el.addEventListener('load', () => on.loaded(el));
  return el;
}

function video(m, on) {
  const el = h('video', { class: 'story-media', src: m.url, playsinline: true, preload: 'auto', poster: m.thumbnail_url || false });
  el.setAttribute('playsinline', '');
  el.addEventListener('loadeddata', () => on.loaded(el));
  el.addEventListener('ended', () => on.ended(el));
  return el;
}
