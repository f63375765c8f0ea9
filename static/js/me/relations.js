// The "you" page's words and endpoints as plain data and functions (no DOM, no I/O).

const enc = encodeURIComponent;

// Each two-state button of a person: the set of user ids it belongs to (loaded when the
// page opens; blocks are asked per person), its endpoint (PUT adds, DELETE removes) and
// its words when on and off.
const RELATIONS = {
  follow: (u) => ({ set: 'following', path: `/v1/users/${enc(u)}/follow`, onText: 'Following', offText: 'Follow', onLabel: `Unfollow ${u}`, offLabel: `Follow ${u}` }),
  closeFriend: (u) => ({
    set: 'closeFriends',
    path: `/v1/me/close-friends/${enc(u)}`,
    onText: '★ Close friend',
    offText: '☆ Close friend',
    onLabel: `Remove ${u} from close friends`,
    offLabel: `Add ${u} to close friends`,
  }),
  mute: (u) => ({ set: 'muted', path: `/v1/me/story-mutes/${enc(u)}`, onText: 'Stories muted', offText: 'Mute stories', onLabel: `Unmute ${u}'s stories`, offLabel: `Mute ${u}'s stories` }),
  hide: (u) => ({ set: 'hiddenFrom', path: `/v1/me/story-hidden/${enc(u)}`, onText: 'Hidden from', offText: 'Hide my stories', onLabel: `Show my stories to ${u}`, offLabel: `Hide my stories from ${u}` }),
  block: (u) => ({ set: null, path: `/v1/me/blocks/${enc(u)}`, onText: 'Blocked', offText: 'Block', onLabel: `Unblock ${u}`, offLabel: `Block ${u}` }),
};

/** `{set, path, onText, offText, onLabel, offLabel}` of one relation kind to `userId`. */
export function relation(kind, userId) {
  return RELATIONS[kind](userId);
}

/** Where each set of `relation(...).set` is listed, for the signed-in user `me`. */
export function setPaths(me) {
  return {
    following: `/v1/users/${enc(me)}/following`,
    closeFriends: '/v1/me/close-friends',
    muted: '/v1/me/story-mutes',
    hiddenFrom: '/v1/me/story-hidden',
  };
}

export function countsLine(user) {
  const followers = user.followers === 1 ? 'follower' : 'followers';
  return `${user.followers} ${followers} · ${user.following} following`;
}

/** "Text", "Photo", "Video": a story's kind in a list of your stories. */
export function storyKindLabel(kind) {
  if (kind === 'text') return 'Text';
  return kind === 'photo' ? 'Photo' : 'Video';
}
