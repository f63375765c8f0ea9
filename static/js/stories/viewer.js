// The full-screen story viewer: plays one author's stories in order with segmented progress
// bars, auto-advance (photo/text PHOTO_MS, video its length), tap or arrow keys for
// next/previous, hold to pause, and marks each story seen. Authors see who viewed; others
// can reply and react when the author allows it.

import { api, describeError } from '../api.js';
import { navigate } from '../router.js';
import { session } from '../session.js';
import { avatar, h, icon, iconButton, mount, relativeTime, toast } from '../ui.js';
import { trayState } from './tray.js';
import { openStorySettings, openViewers } from './own.js';

export const PHOTO_MS = 5000;
const HOLD_MS = 220; // a press longer than this pauses instead of navigating

const AUDIENCE_LABEL = { followers: 'Followers', close_friends: 'Close friends', public: 'Public' };

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
  const wanted = query.get('story');
  let start = wanted ? stories.findIndex((s) => s.id === wanted) : -1;
  if (start < 0) start = Math.max(0, stories.findIndex((s) => !s.seen));
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
    this.view = view;
    this.exitTo = exitTo;
    this.author = author;
    this.stories = stories;
    this.own = author === session.user.user_id;
    this.index = start;
    this.pauses = new Set(); // why we are paused: hold, sheet, typing, user, hidden
    this.elapsed = 0;
    this.ready = false;
    this.frame = null;
    this.lastTick = null;
    this.media = null;
    this.build();
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

  // ---- layout -------------------------------------------------------------------------
  build() {
    this.segments = h('div', { class: 'segments', 'aria-hidden': 'true' });
    this.position = h('span', { class: 'visually-hidden', 'aria-live': 'polite' });
    this.meta = h('div', { class: 'viewer-meta' });
    this.pauseBtn = iconButton('pause', 'Pause', () => this.setPause('user', !this.pauses.has('user')), 'on-dark');
    this.soundBtn = iconButton('speaker', 'Unmute video', () => this.toggleSound(), 'on-dark');
    this.soundBtn.hidden = true;
    this.ownTools = h('div', { class: 'viewer-own' });
    this.content = h('div', { class: 'viewer-content' });
    this.footer = h('div', { class: 'viewer-footer' });
    const zone = (cls, label, go) => {
      const btn = h('button', { type: 'button', class: `tap-zone ${cls}`, 'aria-label': label });
      let timer = null;
      let held = false;
      btn.addEventListener('pointerdown', () => {
        held = false;
        timer = setTimeout(() => {
          held = true;
          this.setPause('hold', true);
        }, HOLD_MS);
      });
      const release = () => {
        clearTimeout(timer);
        if (held) this.setPause('hold', false);
      };
      btn.addEventListener('pointerup', release);
      btn.addEventListener('pointercancel', release);
      btn.addEventListener('pointerleave', release);
      btn.addEventListener('click', (e) => {
        e.preventDefault();
        if (held) {
          held = false;
          return;
        }
        go();
      });
      btn.addEventListener('contextmenu', (e) => e.preventDefault()); // long press on phones
      return btn;
    };
    this.root = h(
      'div',
      {
        class: 'viewer',
        role: 'dialog',
        'aria-modal': 'true',
        'aria-label': this.own ? 'Your stories' : `Stories by ${this.author}`,
      },
      h(
        'div',
        { class: 'viewer-stage' },
        this.content,
        zone('tap-prev', 'Previous story', () => this.prev()),
        zone('tap-next', 'Next story', () => this.next()),
        h(
          'div',
          { class: 'viewer-top' },
          this.segments,
          this.position,
          h(
            'div',
            { class: 'viewer-head' },
            avatar(this.author, 36),
            this.meta,
            this.ownTools,
            this.soundBtn,
            this.pauseBtn,
            iconButton('close', 'Close stories', () => this.close(), 'on-dark'),
          ),
        ),
        this.footer,
      ),
    );
    mount(this.view, this.root);
    this.renderSegments();
  }

  renderSegments() {
    this.fills = this.stories.map(() => h('div', { class: 'seg-fill' }));
    mount(
      this.segments,
      this.fills.map((fill, i) => h('div', { class: 'seg', dataset: { index: String(i) } }, fill)),
    );
  }

  // ---- showing a story ----------------------------------------------------------------
  show(i) {
    if (this.media instanceof HTMLVideoElement) this.media.pause();
    this.index = i;
    this.elapsed = 0;
    this.ready = false;
    this.lastTick = null;
    const story = this.story;
    this.fills.forEach((fill, j) => {
      fill.style.width = j < i ? '100%' : '0%';
    });
    this.position.textContent = `Story ${i + 1} of ${this.stories.length}`;
    this.root.dataset.storyId = story.id;
    this.root.dataset.kind = story.kind;
    mount(
      this.meta,
      h('span', { class: 'viewer-author' }, this.own ? 'Your story' : this.author),
      h('time', { class: 'viewer-time', datetime: story.created_at }, relativeTime(story.created_at)),
      story.audience && story.audience !== 'followers'
        ? h('span', { class: 'badge badge-small' }, AUDIENCE_LABEL[story.audience] || story.audience)
        : null,
    );
    this.renderContent(story);
    this.renderOwnTools(story);
    this.renderFooter(story);
    if (!this.own && !story.seen) this.markSeen(story);
  }

  renderContent(story) {
    this.soundBtn.hidden = true;
    this.media = null;
    if (story.kind === 'text') {
      const len = (story.text || '').length;
      const size = len < 40 ? 'xl' : len < 120 ? 'l' : len < 280 ? 'm' : 's';
      mount(
        this.content,
        h(
          'div',
          { class: `story-text size-${size}`, style: { background: story.background || '#1d9bf0' } },
          h('p', {}, story.text),
        ),
      );
      this.ready = true;
      return;
    }
    const m = story.media || {};
    let el;
    if (story.kind === 'photo') {
      el = h('img', {
        class: 'story-media',
        src: m.url,
        alt: story.caption || `Photo story by ${this.author}`,
        draggable: 'false',
      });
      el.addEventListener('load', () => this.media === el && (this.ready = true));
      el.addEventListener('error', () => this.media === el && this.mediaFailed());
    } else {
      el = h('video', { class: 'story-media', src: m.url, playsinline: true, preload: 'auto', poster: m.thumbnail_url || false });
      el.setAttribute('playsinline', '');
      el.addEventListener('loadeddata', () => {
        if (this.media !== el) return;
        this.ready = true;
        this.playVideo();
      });
      // The progress loop may have moved on at the very end already: only the current video advances.
      el.addEventListener('ended', () => this.media === el && this.next());
      el.addEventListener('error', () => this.media === el && this.mediaFailed());
      this.soundBtn.hidden = false;
    }
    this.media = el;
    mount(this.content, h('div', { class: 'story-media-box' }, el));
  }

  mediaFailed() {
    mount(this.content, h('div', { class: 'story-text size-m story-missing' }, h('p', {}, 'This story could not be loaded.')));
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
      try {
        await video.play();
      } catch {
        /* still blocked: the progress waits */
      }
    }
    this.updateSoundButton();
  }

  toggleSound() {
    if (!(this.media instanceof HTMLVideoElement)) return;
    this.media.muted = !this.media.muted;
    this.updateSoundButton();
  }

  updateSoundButton() {
    if (!(this.media instanceof HTMLVideoElement)) return;
    const label = this.media.muted ? 'Unmute video' : 'Mute video';
    this.soundBtn.setAttribute('aria-label', label);
    this.soundBtn.title = label;
    this.soundBtn.classList.toggle('is-off', this.media.muted);
  }

  renderOwnTools(story) {
    if (!this.own) {
      this.ownTools.replaceChildren();
      return;
    }
    const n = story.view_count ?? 0;
    mount(
      this.ownTools,
      h(
        'button',
        {
          type: 'button',
          class: 'pill on-dark viewers-btn',
          'aria-label': `Seen by ${n} ${n === 1 ? 'person' : 'people'}`,
          onclick: () => {
            this.setPause('sheet', true);
            openViewers(story, () => this.setPause('sheet', false));
          },
        },
        icon('eye', 16),
        ` ${n}`,
      ),
      iconButton(
        'more',
        'Story settings',
        () => {
          this.setPause('sheet', true);
          openStorySettings(story, {
            onChange: () => this.renderFooter(story),
            onDeleted: (s) => this.removeStory(s),
            onClose: () => this.setPause('sheet', false),
          });
        },
        'on-dark',
      ),
    );
  }

  renderFooter(story) {
    const caption = story.caption ? h('p', { class: 'story-caption' }, story.caption) : null;
    if (this.own) {
      const notes = [];
      if (!story.allow_replies) notes.push('Replies off');
      if (!story.allow_reactions) notes.push('Reactions off');
      mount(this.footer, caption, notes.length ? h('p', { class: 'viewer-note' }, notes.join(' · ')) : null);
      return;
    }
    const parts = [caption];
    if (story.allow_reactions) {
      parts.push(
        h(
          'div',
          { class: 'reactions', role: 'group', 'aria-label': 'React' },
          session.config.allowed_reactions.map((emoji) =>
            h('button', { type: 'button', class: 'reaction-btn', 'aria-label': `React ${emoji}`, onclick: () => this.react(emoji) }, emoji),
          ),
        ),
      );
    }
    if (story.allow_replies) {
      const input = h('input', {
        type: 'text',
        name: 'reply',
        class: 'reply-input',
        placeholder: `Reply to ${this.author}…`,
        'aria-label': `Reply to ${this.author}`,
        maxlength: session.config.max_text,
        autocomplete: 'off',
        onfocus: () => this.setPause('typing', true),
        onblur: () => this.setPause('typing', !!input.value),
      });
      const form = h(
        'form',
        {
          class: 'reply-form',
          onsubmit: async (e) => {
            e.preventDefault();
            const text = input.value.trim();
            if (!text) return;
            input.disabled = true;
            try {
              await api(`/v1/stories/${encodeURIComponent(story.id)}/replies`, { method: 'POST', body: { text } });
              input.value = '';
              toast(`Reply sent to ${this.author}.`);
              input.blur();
              this.setPause('typing', false);
            } catch (err) {
              toast(describeError(err), 'error');
            } finally {
              input.disabled = false;
            }
          },
        },
        input,
        h('button', { type: 'submit', class: 'icon-btn on-dark', 'aria-label': 'Send reply', title: 'Send reply' }, icon('send')),
      );
      parts.push(form);
    }
    if (!story.allow_reactions && !story.allow_replies) parts.push(h('p', { class: 'viewer-note' }, 'Replies and reactions are off for this story.'));
    mount(this.footer, parts);
  }

  async react(emoji) {
    const story = this.story;
    const burst = h('span', { class: 'reaction-burst', 'aria-hidden': 'true' }, emoji);
    this.root.append(burst);
    setTimeout(() => burst.remove(), 1200);
    try {
      await api(`/v1/stories/${encodeURIComponent(story.id)}/reactions`, { method: 'POST', body: { emoji } });
      toast(`You reacted ${emoji}`);
    } catch (e) {
      toast(describeError(e), 'error');
    }
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
    this.renderSegments();
    this.show(Math.min(i, this.stories.length - 1));
  }

  // ---- playback -----------------------------------------------------------------------
  setPause(reason, on) {
    const before = this.pauses.size > 0;
    if (on) this.pauses.add(reason);
    else this.pauses.delete(reason);
    const now = this.pauses.size > 0;
    this.root.classList.toggle('is-paused', now);
    const label = this.pauses.has('user') ? 'Play' : 'Pause';
    this.pauseBtn.setAttribute('aria-label', label);
    this.pauseBtn.title = label;
    this.pauseBtn.replaceChildren(icon(this.pauses.has('user') ? 'play' : 'pause'));
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
    const playing = this.ready && this.pauses.size === 0;
    const dt = this.lastTick === null ? 0 : t - this.lastTick;
    this.lastTick = t;
    if (!playing) return;
    let progress;
    if (this.media instanceof HTMLVideoElement) {
      const duration = this.media.duration || this.story.media?.duration || 0;
      progress = duration ? this.media.currentTime / duration : 0;
      // 'ended' advances videos; this is the fallback if it never fires.
      if (this.media.ended) progress = 1;
    } else {
      this.elapsed += dt;
      progress = this.elapsed / PHOTO_MS;
    }
    const fill = this.fills[this.index];
    if (fill) fill.style.width = `${Math.min(100, progress * 100).toFixed(2)}%`;
    if (progress >= 1) this.next();
  }

  next() {
    if (this.index < this.stories.length - 1) this.show(this.index + 1);
    else this.nextAuthor();
  }

  prev() {
    if (this.index > 0) this.show(this.index - 1);
    else this.show(0);
  }

  nextAuthor() {
    const order = trayState.authors;
    const at = order.indexOf(this.author);
    const following = at >= 0 ? order[at + 1] : undefined;
    if (following) navigate(`/stories/${encodeURIComponent(following)}`);
    else this.close();
  }

  close() {
    navigate(this.exitTo);
  }

  key(e) {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement) return;
    if (document.querySelector('dialog[open]')) return;
    if (e.key === 'ArrowRight') this.next();
    else if (e.key === 'ArrowLeft') this.prev();
    else if (e.key === 'Escape') this.close();
    else if (e.key === ' ' || e.key === 'k') this.setPause('user', !this.pauses.has('user'));
    else return;
    e.preventDefault();
  }
}
