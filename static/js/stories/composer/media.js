// The composer's media pane: the file picker, a local preview of the chosen photo or
// video, its name and size, and the caption. Files are checked before any upload (size,
// and a video's length once its metadata is known).

import { h, icon, mount } from '../../ui.js';
import { acceptFor, chooseLabel, fitsKind, lengthProblem, megabytes, noneChosen, sizeProblem } from './rules.js';

/** Returns `{el, setKind(kind), file(), caption(), destroy()}`; problems go to `showError`. */
export function mediaPane(cfg, showError) {
  let kind = 'text'; // the page sets it at once
  let file = null;
  let objectUrl = null;
  const input = h('input', { type: 'file', id: 'story-file', name: 'file', class: 'visually-hidden', onchange: () => pick(input.files[0] || null) });
  const label = h('label', { for: 'story-file', class: 'btn file-btn' });
  const preview = h('div', { class: 'compose-preview media-preview' });
  const info = h('p', { class: 'hint', 'aria-live': 'polite' });
  const caption = h('input', { id: 'story-caption', name: 'caption', maxlength: cfg.max_text, placeholder: 'Add a caption (optional)', autocomplete: 'off' });
  const el = h('div', { class: 'compose-pane' }, preview, h('div', { class: 'file-row' }, input, label, info), h('label', { for: 'story-caption' }, 'Caption'), caption);

  function setKind(next) {
    kind = next;
    input.accept = acceptFor(kind, cfg);
    if (file && !fitsKind(file.type, kind)) pick(null);
    mount(label, icon('plus', 18), chooseLabel(kind));
    if (!file) mount(preview, h('span', { class: 'hint' }, noneChosen(kind)));
  }

  function pick(f) {
    showError('');
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
    file = f;
    info.textContent = f ? `${f.name} · ${megabytes(f.size)}` : '';
    if (!f) {
      input.value = '';
      setKind(kind);
      return;
    }
    showError(sizeProblem(f.size, cfg) || '');
    objectUrl = URL.createObjectURL(f);
    mount(preview, filePreview(f, objectUrl, kind, cfg, showError));
  }

  return {
    el,
    setKind,
    file: () => file,
    caption: () => caption.value.trim(),
    destroy: () => objectUrl && URL.revokeObjectURL(objectUrl),
  };
}

function filePreview(f, src, kind, cfg, showError) {
  if (kind === 'video' || f.type.startsWith('video/')) return videoPreview(src, cfg, showError);
  return h('img', { src, alt: 'Photo preview' });
}

function videoPreview(src, cfg, showError) {
  const video = h('video', { src, muted: true, playsinline: true, controls: true, 'aria-label': 'Video preview' });
  video.muted = true;
  video.addEventListener('loadedmetadata', () => {
    const tooLong = lengthProblem(video.duration, cfg);
    if (tooLong) showError(tooLong);
  });
  return video;
}
