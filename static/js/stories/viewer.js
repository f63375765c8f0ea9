// The full-screen story viewer: plays one author's stories in order with segmented progress
// bars, auto-advance (photo/text PHOTO_MS, video its length), tap or arrow keys for
// next/previous, hold to pause, and marks each story seen. Authors see who viewed; others
// can reply and react when the author allows it. The parts are in viewer/: the frame
// (layout.js), the story itself (content.js), the head (head.js), the footer (footer.js)
// and the decisions as plain functions (rules.js).

import { api, describeError } from '../api.js';
import { navigate } from '../router.js';
import { session } from '../session.js';
import { h, mount } from '../ui.js';
import { trayState } from './tray.js';
import { missingStory, storyMedia, textStory } from './viewer/content.js';
import { renderFooter } from './viewer/footer.js';
import { renderMeta, renderOwnTools } from './viewer/head.js';
import { paintPause, paintSound, renderSegments, viewerLayout } from './viewer/layout.js';
import { PHOTO_MS, authorAfter, fillWidth, keyCommand, startIndex, videoProgress } from './viewer/rules.js';

export async function renderViewer(view, author, query) {
  let stories;
  try {
    ({ stories } = await api(`/v1/users/${encodeURIComponent(author)}/stories`));
  } catch (e) {
    mount(view, emptyViewer(author, describeError(e)));
    return null;
  }
  if (stories.length === 0) {
    mount(view, emptyViewer(author, 'No stories to show: they may have expired.'));
    return null;
  }
  const start = startIndex(stories, query.get('story'));
  const player = new StoryPlayer(view, author, stories, start, query.get('from') === 'me' ? '/me' : '/');
  return () => player.destroy();
}

function emptyViewer(author, message) {
  return h(
    'div',
    { class: 'viewer viewer-empty', role: 'dialog', 'aria-label': `Stories by ${author}` },
    h('p', {}, message),
    h('a', { class: 'btn', href: '/' }, 'Back'),
  );
}

class StoryPlayer {
  constructor(view, author, stories, start, exitTo) {
    this.exitTo = exitTo;
    this.author = author;
    this.stories = stories;
    this.own = author === session.user.user_id;
    this.pauses = new Set(); // why we are paused: hold, sheet, typing, user, hidden
    this.elapsed = 0;
    this.ready = false;
    this.lastTick = null;
    this.media = null;
    this.parts = viewerLayout(author, this.own, {
      prev: () => this.prev(),
      next: () => this.next(),
      hold: (on) => this.setPause('hold', on),
      pause: () => this.setPause('user', !this.pauses.has('user')),
      sound: () => this.toggleSound(),
      close: () => this.close(),
    });
    mount(view, this.parts.root);
    this.fills = renderSegments(this.parts.segments, stories.length);
    this.onKey = (e) => this.key(e);
    this.onVisibility = () => this.setPause('hidden', document.hidden);
    document.addEventListener('keydown', this.onKey);
    document.addEventListener('visibilitychange', this.onVisibility);
    this.show(start);
    this.frame = requestAnimationFrame((t) => this.tick(t));
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.frame = null;
    document.removeEventListener('keydown', this.onKey);
    document.removeEventListener('visibilitychange', this.onVisibility);
    if (this.media instanceof HTMLVideoElement) this.media.pause();
    this.media = null;
  }

  get story() {
    return this.stories[this.index];
  }

  // ---- showing a story ----------------------------------------------------------------
  show(i) {
    if (this.media instanceof HTMLVideoElement) this.media.pause();
    this.index = i;
    this.elapsed = 0;
    this.lastTick = null;
    const story = this.story;
    this.fills.forEach((fill, j) => {
      fill.style.width = j < i ? '100%' : '0%';
    });
    const { root, position, meta, ownTools } = this.parts;
    position.textContent = `Story ${i + 1} of ${this.stories.length}`;
    root.dataset.storyId = story.id;
    root.dataset.kind = story.kind;
    renderMeta(meta, story, this.own ? 'Your story' : this.author);
    this.renderContent(story);
    if (this.own) renderOwnTools(ownTools, story, this.ownHandlers());
    else ownTools.replaceChildren();
    this.redrawFooter(story);
    if (!this.own && !story.seen) this.markSeen(story);
  }

  renderContent(story) {
    const current = (el) => el === this.media;
    const el = storyMedia(story, this.author, {
      loaded: (m) => current(m) && this.mediaReady(),
      ended: (m) => current(m) && this.next(), // the progress loop may have moved on already
      failed: (m) => current(m) && this.mediaFailed(),
    });
    this.media = el;
    this.ready = el === null; // a text story is ready at once
    this.parts.soundBtn.hidden = !(el instanceof HTMLVideoElement);
    mount(this.parts.content, el ? h('div', { class: 'story-media-box' }, el) : textStory(story));
  }

  redrawFooter(story) {
    renderFooter(this.parts.footer, story, {
      own: this.own,
      author: this.author,
      root: this.parts.root,
      typing: (on) => this.setPause('typing', on),
    });
  }

  ownHandlers() {
    return {
      sheet: (open) => this.setPause('sheet', open),
      changed: (story) => this.redrawFooter(story),
      deleted: (story) => this.removeStory(story),
    };
  }

  mediaReady() {
    this.ready = true;
    this.playVideo();
  }

  mediaFailed() {
    mount(this.parts.content, missingStory());
    this.media = null;
    this.ready = true;
  }

  async playVideo() {
    const video = this.media;
    if (!(video instanceof HTMLVideoElement) || this.pauses.size) return;
    try {
      await video.play();
    } catch (e) {
      if (e.name !== 'NotAllowedError' || video !== this.media) return;
      // Autoplay with sound is blocked until the user interacts: play muted instead.
      video.muted = true;
      this.updateSoundButton();
      await video.play().catch(() => {}); // still blocked: the progress waits
    }
    this.updateSoundButton();
  }

  toggleSound() {
    if (!(this.media instanceof HTMLVideoElement)) return;
    this.media.muted = !this.media.muted;
    this.updateSoundButton();
  }

  updateSoundButton() {
    if (this.media instanceof HTMLVideoElement) paintSound(this.parts.soundBtn, this.media.muted);
  }

  async markSeen(story) {
    try {
      await api(`/v1/stories/${encodeURIComponent(story.id)}/seen`, { method: 'POST' });
      story.seen = true;
    } catch {
      /* an expired or deleted story: nothing to record */
    }
  }

  removeStory(story) {
    const i = this.stories.indexOf(story);
    if (i < 0) return;
    this.stories.splice(i, 1);
    this.pauses.delete('sheet');
    if (!this.stories.length) {
      this.close();
      return;
    }
    this.fills = renderSegments(this.parts.segments, this.stories.length);
    this.show(Math.min(i, this.stories.length - 1));
  }

  // ---- playback -----------------------------------------------------------------------
  setPause(reason, on) {
    const before = this.pauses.size > 0;
    if (on) this.pauses.add(reason);
    else this.pauses.delete(reason);
    const now = this.pauses.size > 0;
    this.parts.root.classList.toggle('is-paused', now);
    paintPause(this.parts.pauseBtn, this.pauses.has('user'));
    if (before === now) return;
    this.lastTick = null;
    if (this.media instanceof HTMLVideoElement) {
      if (now) this.media.pause();
      else this.playVideo();
    }
  }

  tick(t) {
    if (this.frame === null) return;
    this.frame = requestAnimationFrame((x) => this.tick(x));
    const dt = this.lastTick === null ? 0 : t - this.lastTick;
    this.lastTick = t;
    if (!this.ready || this.pauses.size > 0) return;
    const progress = this.progress(dt);
    const fill = this.fills[this.index];
    if (fill) fill.style.width = fillWidth(progress);
    if (progress >= 1) this.next();
  }

  /** How far the current story has played, 0..1, `dt` ms after the last frame. */
  progress(dt) {
    if (this.media instanceof HTMLVideoElement) return videoProgress(this.media, this.story.media?.duration);
    this.elapsed += dt;
    return this.elapsed / PHOTO_MS;
  }

  next() {
    if (this.index < this.stories.length - 1) this.show(this.index + 1);
    else this.nextAuthor();
  }

  prev() {
    this.show(Math.max(0, this.index - 1));
  }

  nextAuthor() {
    const following = authorAfter(trayState.authors, this.author);
    if (following) navigate(`/stories/${encodeURIComponent(following)}`);
    else this.close();
  }

  close() {
    navigate(this.exitTo);
  }

  key(e) {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement) return;
    if (document.querySelector('dialog[open]')) return;
    const command = keyCommand(e.key);
    if (command === null) return;
    e.preventDefault();
    if (command === 'pause') this.setPause('user', !this.pauses.has('user'));
    else this[command]();
  }
}
