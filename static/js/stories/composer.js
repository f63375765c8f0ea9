// The story composer: text on a background colour, a photo, or a video; audience and
// reply/reaction switches; an upload progress bar and clear errors. Its parts are in
// composer/: the text pane (text.js), the media pane (media.js), the type switch, options
// and progress bar (options.js) and the checks and words as plain functions (rules.js).

import { api, describeError, upload } from '../api.js';
import { navigate } from '../router.js';
import { session } from '../session.js';
import { h, mount, toast } from '../ui.js';
import { mediaPane } from './composer/media.js';
import { kindTabs, storyOptions, uploadProgress } from './composer/options.js';
import { initialKind, mediaFields, missingProblem, sizeProblem } from './composer/rules.js';
import { textPane } from './composer/text.js';

export function renderComposer(view, query) {
  const cfg = session.config;
  const c = composerParts(cfg, initialKind(query.get('kind')));
  mount(view, composerForm(c, cfg, (e) => publish(e, c, cfg)));
  c.setKind(c.kind);
  if (c.kind === 'text') c.text.focus();
  return () => {
    c.pending?.abort();
    c.media.destroy();
  };
}

/** The composer's parts and state: the chosen kind and the upload in flight (`pending`). */
function composerParts(cfg, kind) {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const showError = (message) => {
    error.textContent = message;
    error.hidden = !message;
  };
  const c = { kind, pending: null, error, showError, text: textPane(cfg), media: mediaPane(cfg, showError), options: storyOptions() };
  c.submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Share story');
  c.progress = uploadProgress(() => c.pending?.abort());
  c.setKind = (next) => {
    c.kind = next;
    showError('');
    c.text.el.hidden = next !== 'text';
    c.media.el.hidden = next === 'text';
    c.media.setKind(next);
  };
  c.tabs = kindTabs(kind, c.setKind);
  return c;
}

async function publish(e, c, cfg) {
  e.preventDefault();
  if (c.pending) return;
  c.showError('');
  c.submit.disabled = true;
  try {
    if (c.kind === 'text') await postText(c.text, c.options.values());
    else await postMedia(c, cfg);
    toast('Story shared.');
    navigate('/');
  } catch (err) {
    c.showError(describeError(err));
    c.progress.el.hidden = true;
  } finally {
    c.pending = null;
    c.submit.disabled = false;
  }
}

function composerForm({ tabs, text, media, options, progress, error, submit }, cfg, onsubmit) {
  const expiry = Math.round(cfg.ttl_seconds / 3600);
  return h(
    'form',
    { class: 'panel composer', 'aria-labelledby': 'compose-title', onsubmit },
    h('h1', { id: 'compose-title' }, 'New story'),
    tabs,
    text.el,
    media.el,
    options.el,
    progress.el,
    error,
    h('div', { class: 'row-actions' }, h('a', { class: 'btn', href: '/' }, 'Cancel'), submit),
    h('p', { class: 'hint' }, `Stories disappear after ${expiry} hours.`),
  );
}

async function postText(text, options) {
  const problem = missingProblem('text', { text: text.text() });
  if (problem) throw new Error(problem);
  await api('/v1/stories', { method: 'POST', body: { text: text.text(), background: text.background(), ...options } });
}

/** Upload the chosen file with its fields; the upload is `c.pending` meanwhile (Cancel). */
async function postMedia(c, cfg) {
  const file = c.media.file();
  const problem = missingProblem(c.kind, { file }) || sizeProblem(file.size, cfg);
  if (problem) throw new Error(problem);
  const data = new FormData();
  data.append('file', file, file.name);
  for (const [k, v] of mediaFields(c.media.caption(), c.options.values())) data.append(k, v);
  c.progress.el.hidden = false;
  c.progress.set(0);
  c.pending = upload('/v1/stories/media', data, c.progress.set);
  await c.pending.promise;
  c.progress.set(1);
}
