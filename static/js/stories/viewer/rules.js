// The story viewer's decisions as plain functions (no DOM, no I/O): where to start, how
// far a story has played, what the keys do, and the words the viewer shows.

export const PHOTO_MS = 5000; // how long a photo or text story stays up
export const HOLD_MS = 220; // a press longer than this pauses instead of navigating

const AUDIENCE_LABEL = { followers: 'Followers', close_friends: 'Close friends', public: 'Public' };

/** The story to open with: `wanted` if it is there, else the first unseen one, else the first. */
export function startIndex(stories, wanted) {
  const at = wanted ? stories.findIndex((s) => s.id === wanted) : -1;
  if (at >= 0) return at;
  return Math.max(0, stories.findIndex((s) => !s.seen));
}

/** The badge for a story's audience; null for the default audience (followers). */
export function audienceBadge(audience) {
  if (!audience || audience === 'followers') return null;
  return AUDIENCE_LABEL[audience] || audience;
}

/** The type size of a text story: shorter texts get bigger letters. */
export function textSize(text) {
  const len = (text || '').length;
  if (len < 40) return 'xl';
  if (len < 120) return 'l';
  return len < 280 ? 'm' : 's';
}

export function seenByLabel(n) {
  return `Seen by ${n} ${n === 1 ? 'person' : 'people'}`;
}

/** What the author is reminded of under their own story: "Replies off · Reactions off". */
export function ownNote(story) {
  const notes = [];
  if (!story.allow_replies) notes.push('Replies off');
  if (!story.allow_reactions) notes.push('Reactions off');
  return notes.length ? notes.join(' · ') : null;
}

/** How far a video has played, 0..1: its own clock, or done once it has ended. */
export function videoProgress({ currentTime, duration, ended }, fallbackDuration = 0) {
  if (ended) return 1; // 'ended' advances videos; this is the fallback if it never fires
  const length = duration || fallbackDuration || 0;
  return length ? currentTime / length : 0;
}

/** A segment's CSS width for a progress of 0..1 (or more). */
export function fillWidth(progress) {
  return `${Math.min(100, progress * 100).toFixed(2)}%`;
}

/** The author after `author` in the tray's order, or null when there is none. */
export function authorAfter(order, author) {
  const at = order.indexOf(author);
  return (at >= 0 ? order[at + 1] : undefined) ?? null;
}

const KEYS = { ArrowRight: 'next', ArrowLeft: 'prev', Escape: 'close', ' ': 'pause', k: 'pause' };

/** The viewer command for a key: next, prev, close, pause, or null (the key is not ours). */
export function keyCommand(key) {
  return Object.hasOwn(KEYS, key) ? KEYS[key] : null;
}
