// The story composer: text on a background colour, a photo, or a video; audience and
// reply/reaction switches; an upload progress bar and clear errors.

import { api, describeError, upload } from '../api.js';
import { navigate } from '../router.js';
import { session } from '../session.js';
import { h, icon, mount, toast } from '../ui.js';

const KINDS = [
  { id: 'text', label: 'Text' },
  { id: 'photo', label: 'Photo' },
  { id: 'video', label: 'Video' },
];

function megabytes(bytes) {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MB`;
}

export function renderComposer(view, query) {
  const cfg = session.config;
  let kind = ['text', 'photo', 'video'].includes(query.get('kind')) ? query.get('kind') : 'text';
  let background = cfg.backgrounds[0];
  let file = null;
  let objectUrl = null;
  let pending = null; // the upload in flight ({abort})

  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const showError = (message) => {
    error.textContent = message;
    error.hidden = !message;
  };

  // ---- kind switcher ----------------------------------------------------------------
  const tabs = h(
    'div',
    { class: 'segmented', role: 'radiogroup', 'aria-label': 'Story type' },
    KINDS.map((k) =>
      h(
        'label',
        { class: 'segmented-opt' },
        h('input', {
          type: 'radio',
          name: 'kind',
          value: k.id,
          checked: k.id === kind,
          onchange: () => setKind(k.id),
        }),
        h('span', {}, k.label),
      ),
    ),
  );

  // ---- text ---------------------------------------------------------------------------
  const counter = h('span', { class: 'hint counter', 'aria-live': 'polite' });
  const textArea = h('textarea', {
    id: 'story-text',
    name: 'text',
    class: 'compose-text',
    rows: 5,
    maxlength: cfg.max_text,
    placeholder: 'Type something…',
    'aria-label': 'Story text',
    oninput: () => updateCounter(),
  });
  const updateCounter = () => {
    const left = cfg.max_text - textArea.value.length;
    counter.textContent = `${left} characters left`;
    counter.classList.toggle('warn', left < 20);
  };
  const swatches = h(
    'div',
    { class: 'swatches', role: 'radiogroup', 'aria-label': 'Background colour' },
    cfg.backgrounds.map((color, i) =>
      h(
        'label',
        { class: 'swatch', style: { background: color }, title: color },
        h('input', {
          type: 'radio',
          name: 'background',
          value: color,
          checked: i === 0,
          'aria-label': `Background ${color}`,
          onchange: () => {
            background = color;
            textPreview.style.background = color;
          },
        }),
      ),
    ),
  );
  const textPreview = h('div', { class: 'compose-preview text-preview', style: { background } }, textArea);
  const textPane = h('div', { class: 'compose-pane' }, textPreview, counter, swatches);

  // ---- media --------------------------------------------------------------------------
  const fileInput = h('input', {
    type: 'file',
    id: 'story-file',
    name: 'file',
    class: 'visually-hidden',
    onchange: () => pickFile(fileInput.files[0] || null),
  });
  const pickLabel = h('label', { for: 'story-file', class: 'btn file-btn' });
  const mediaPreview = h('div', { class: 'compose-preview media-preview' });
  const fileInfo = h('p', { class: 'hint', 'aria-live': 'polite' });
  const caption = h('input', {
    id: 'story-caption',
    name: 'caption',
    maxlength: cfg.max_text,
    placeholder: 'Add a caption (optional)',
    autocomplete: 'off',
  });
  const mediaPane = h(
    'div',
    { class: 'compose-pane' },
    mediaPreview,
    h('div', { class: 'file-row' }, fileInput, pickLabel, fileInfo),
    h('label', { for: 'story-caption' }, 'Caption'),
    caption,
  );

  // ---- options ------------------------------------------------------------------------
  const audience = h(
    'select',
    { id: 'story-audience', name: 'audience' },
    h('option', { value: 'followers' }, 'Followers'),
    h('option', { value: 'close_friends' }, 'Close friends'),
    h('option', { value: 'public' }, 'Everyone'),
  );
  const allowReplies = h('input', { type: 'checkbox', name: 'allow_replies', checked: true });
  const allowReactions = h('input', { type: 'checkbox', name: 'allow_reactions', checked: true });
  const options = h(
    'div',
    { class: 'compose-options' },
    h('label', { for: 'story-audience' }, 'Who can see it'),
    audience,
    h('label', { class: 'choice' }, allowReplies, ' Allow replies'),
    h('label', { class: 'choice' }, allowReactions, ' Allow reactions'),
  );

  // ---- progress and submit ------------------------------------------------------------
  const bar = h('progress', { id: 'upload-progress', max: 100, value: 0, 'aria-label': 'Upload progress' });
  const barText = h('span', { class: 'hint' }, '0%');
  const cancel = h('button', { type: 'button', class: 'btn btn-small', onclick: () => pending?.abort() }, 'Cancel');
  const progress = h('div', { class: 'upload-progress', hidden: true }, bar, barText, cancel);
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Share story');
  const expiry = Math.round(cfg.ttl_seconds / 3600);

  const form = h(
    'form',
    { class: 'panel composer', 'aria-labelledby': 'compose-title', onsubmit: (e) => publish(e) },
    h('h1', { id: 'compose-title' }, 'New story'),
    tabs,
    textPane,
    mediaPane,
    options,
    progress,
    error,
    h('div', { class: 'row-actions' }, h('a', { class: 'btn', href: '/' }, 'Cancel'), submit),
    h('p', { class: 'hint' }, `Stories disappear after ${expiry} hours.`),
  );
  mount(view, form);

  function setKind(next) {
    kind = next;
    showError('');
    textPane.hidden = kind !== 'text';
    mediaPane.hidden = kind === 'text';
    fileInput.accept = (kind === 'photo' ? cfg.image_types || ['image/*'] : cfg.video_types || ['video/*']).join(',');
    if (file && !file.type.startsWith(kind === 'photo' ? 'image/' : 'video/')) pickFile(null);
    mount(pickLabel, icon('plus', 18), kind === 'photo' ? ' Choose photo' : ' Choose video');
    if (!file) mount(mediaPreview, h('span', { class: 'hint' }, kind === 'photo' ? 'No photo chosen' : 'No video chosen'));
  }

  async function pickFile(f) {
    showError('');
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
    file = f;
    if (!f) {
      fileInput.value = '';
      fileInfo.textContent = '';
      setKind(kind);
      return;
    }
    fileInfo.textContent = `${f.name} · ${megabytes(f.size)}`;
    if (f.size > cfg.max_upload_bytes) {
      showError(`This file is ${megabytes(f.size)}; the limit is ${megabytes(cfg.max_upload_bytes)}.`);
    }
    objectUrl = URL.createObjectURL(f);
    if (kind === 'video' || f.type.startsWith('video/')) {
      const video = h('video', { src: objectUrl, muted: true, playsinline: true, controls: true, 'aria-label': 'Video preview' });
      video.muted = true;
      video.addEventListener('loadedmetadata', () => {
        if (video.duration > cfg.max_video_seconds) {
          showError(`This video is ${Math.round(video.duration)} s long; stories take up to ${cfg.max_video_seconds} s.`);
        }
      });
      mount(mediaPreview, video);
    } else {
      mount(mediaPreview, h('img', { src: objectUrl, alt: 'Photo preview' }));
    }
  }

  async function publish(e) {
    e.preventDefault();
    if (pending) return;
    showError('');
    const common = {
      audience: audience.value,
      allow_replies: allowReplies.checked,
      allow_reactions: allowReactions.checked,
    };
    submit.disabled = true;
    try {
      if (kind === 'text') {
        const text = textArea.value.trim();
        if (!text) throw new Error('Write something first.');
        await api('/v1/stories', { method: 'POST', body: { text, background, ...common } });
      } else {
        if (!file) throw new Error(kind === 'photo' ? 'Choose a photo first.' : 'Choose a video first.');
        if (file.size > cfg.max_upload_bytes) {
          throw new Error(`This file is ${megabytes(file.size)}; the limit is ${megabytes(cfg.max_upload_bytes)}.`);
        }
        const data = new FormData();
        data.append('file', file, file.name);
        if (caption.value.trim()) data.append('caption', caption.value.trim());
        for (const [k, v] of Object.entries(common)) data.append(k, String(v));
        progress.hidden = false;
        setProgress(0);
        pending = upload('/v1/stories/media', data, setProgress);
        await pending.promise;
        setProgress(1);
      }
      toast('Story shared.');
      navigate('/');
    } catch (err) {
      showError(describeError(err));
      progress.hidden = true;
    } finally {
      pending = null;
      submit.disabled = false;
    }
  }

  function setProgress(fraction) {
    const pct = Math.round(fraction * 100);
    bar.value = pct;
    barText.textContent = fraction >= 1 ? 'Processing…' : `${pct}%`;
  }

  setKind(kind);
  updateCounter();
  if (kind === 'text') textArea.focus();
  return () => {
    pending?.abort();
    if (objectUrl) URL.revokeObjectURL(objectUrl);
  };
}
