// The room page's state as a pure reducer: `reduce(state, message)` returns the next state
// for every server message of docs/protocol.md, and for the few facts the page learns
// itself (`client.*`: the socket's and the audio's state, what we sent, a room read over
// HTTP). No DOM, no I/O: the views draw a state, the page (room.js) performs its effects.
//
// One-shot things (a reaction to float, an error or a sentence to show) are `notices`:
// each step starts with none, and the page shows the ones the step produced.
//
// What buttons exist comes from the server's `actions` (docs/protocol.md, "Actions"); the
// client keeps no copy of the permission rules. Without `actions` nothing role-gated is offered.

export const REACTIONS_FALLBACK = ['👏', '❤️', '😂', '💯', '🔥', '🙌'];
const ENDED = {
  ended_by_host: 'The host ended this room.',
  host_left: 'The host left, so this room has ended.',
  cancelled: 'This room was cancelled.',
};
export const REMOVED = 'You were removed from this room.';

/** The state before the socket opens: the room as read over HTTP, and who we are. */
export function initialState(room, me) {
  return {
    me,
    room,
    participants: new Map(), // user id -> Participant, as the server sent it
    speaking: new Set(), // user ids the server reports speaking
    actions: null, // {self: [type], targets: {key: [type]}} from the server; null: none yet
    reactions: REACTIONS_FALLBACK,
    iceServers: [],
    welcomes: 0, // each welcome is a fresh connection (a fresh peer connection too)
    inviteFrom: null, // who invited us to speak, while the invitation stands
    selfMuting: false, // we sent a mute of our own: the coming `muted` is ours, not a host's
    connection: 'idle', // the socket: idle, connecting, open, closed
    rtc: null, // the peer connection's state
    autoplayBlocked: false,
    over: null, // {text, retry}: the room is over for us (ended, removed, refused)
    notices: [],
  };
}

const HANDLERS = {
  welcome: onWelcome,
  'participant.joined': onParticipant,
  'participant.updated': onParticipant,
  'participant.left': onLeft,
  'invite.received': (s, m) => ({ ...s, inviteFrom: m.from_user }),
  reaction: (s, m) => notify(s, { kind: 'reaction', userId: m.user_id, emoji: m.emoji }),
  speaking: (s, m) => ({ ...s, speaking: new Set(m.user_ids || []) }),
  actions: (s, m) => ({ ...s, actions: m.actions || null }),
  'room.updated': (s, m) => ({ ...s, room: { ...s.room, ...m.room } }),
  'recording.started': (s) => notify({ ...s, room: { ...s.room, recorded: true } }, { kind: 'info', text: 'This room is being recorded.' }),
  // The counts, at most once a tick: how a large room's listeners come and go for us.
  listeners: (s, m) => ({ ...s, room: { ...s.room, listener_count: m.listener_count, speaker_count: m.speaker_count } }),
  'room.ended': (s, m) => ({ ...s, room: { ...s.room, state: 'ended' }, over: { text: ENDED[m.reason] || 'This room has ended.', retry: false } }),
  removed: (s) => ({ ...s, over: { text: REMOVED, retry: false } }),
  error: (s, m) => notify(s, { kind: 'error', text: m.message || m.code, code: m.code }),
  'client.connection': (s, m) => ({ ...s, connection: m.state }),
  'client.rtc': (s, m) => ({ ...s, rtc: m.state }),
  'client.autoplay': (s, m) => ({ ...s, autoplayBlocked: Boolean(m.blocked) }),
  'client.sent': onSent,
  'client.room': onRoom,
  'client.over': (s, m) => ({ ...s, over: { text: m.text, retry: Boolean(m.retry) } }),
};

/** The next state after `message` (a server message, or a `client.*` fact). */
export function reduce(state, message) {
  const start = state.notices.length ? { ...state, notices: [] } : state;
  const handle = HANDLERS[message.type];
  // pong, rtc.* (the audio's business, not the page's state) and types newer than this client
  return handle ? handle(start, message) : start;
}

function notify(state, notice) {
  return { ...state, notices: [...state.notices, notice] };
}

function onWelcome(state, msg) {
  const participants = new Map((msg.participants || []).map((p) => [p.user_id, p]));
  const me = msg.you || state.me;
  const mine = participants.get(me);
  return {
    ...state,
    me,
    room: { ...state.room, ...msg.room },
    participants,
    speaking: new Set(),
    actions: msg.actions || null,
    reactions: Array.isArray(msg.reactions) && msg.reactions.length ? msg.reactions : state.reactions,
    iceServers: msg.ice_servers || [],
    welcomes: state.welcomes + 1,
    inviteFrom: mine?.invited ? state.inviteFrom || msg.room?.host || state.room.host : null,
    selfMuting: false,
    rtc: null, // a fresh peer connection follows each welcome
    autoplayBlocked: false,
    over: null,
  };
}

function onParticipant(state, msg) {
  const p = msg.participant;
  const participants = new Map(state.participants);
  const before = participants.get(p.user_id);
  participants.set(p.user_id, p);
  const next = { ...state, participants };
  return p.user_id === state.me ? onMyChange(next, before, p) : next;
}

function onLeft(state, msg) {
  if (!state.participants.has(msg.user_id)) return state;
  const participants = new Map(state.participants);
  participants.delete(msg.user_id);
  const speaking = new Set(state.speaking);
  speaking.delete(msg.user_id);
  return { ...state, participants, speaking };
}

/** Our own participant changed: settle the invitation and say what happened to us. */
function onMyChange(state, before, now) {
  let next = state;
  const stageNow = onStage(now);
  if (stageNow !== onStage(before)) {
    if (stageNow) next = notify(next, { kind: 'info', text: now.role === 'cohost' ? 'You are a co-host now.' : 'You are on stage: people can hear you.' });
    else if (before) next = notify(next, { kind: 'info', text: 'You are a listener now.' });
  } else if (now.role === 'cohost' && before?.role !== 'cohost') {
    next = notify(next, { kind: 'info', text: 'You are a co-host now.' });
  }
  if (Boolean(now.muted) !== Boolean(before?.muted)) {
    if (now.muted && before && !before.muted && !state.selfMuting) next = notify(next, { kind: 'info', text: 'A host muted you.' });
    next = { ...next, selfMuting: false };
  }
  if (stageNow || !now.invited) next = { ...next, inviteFrom: null };
  return next;
}

function onSent(state, msg) {
  const sent = msg.message;
  if (sent.type === 'mute' && (sent.user_id === undefined || sent.user_id === state.me)) return { ...state, selfMuting: true };
  if (sent.type === 'invite.decline') return { ...state, inviteFrom: null };
  return state;
}

/** The room read again over HTTP (a start, a retry, a poll): a new connection follows. */
function onRoom(state, msg) {
  return { ...state, room: msg.room, over: null, participants: new Map(), speaking: new Set(), actions: null };
}

// ---- reading the state (pure too) -------------------------------------------------------

const STAGE = ['host', 'cohost', 'speaker'];
const ORDER = { host: 0, cohost: 1, speaker: 2, listener: 3 };
// Past this many listeners the server announces each one to the host and co-hosts only
// (room_listener_events_max); everyone else gets the counts (`listeners`).
const BIG_ROOM = 100;

export const onStage = (p) => Boolean(p) && STAGE.includes(p.role);
export const mine = (state) => state.participants.get(state.me) || null;

/** The key of `p` in `actions.targets`: role, then `:hand`, `:invited`, `:muted` when true. */
export function targetKey(p) {
  return [p.role, p.hand_raised ? 'hand' : null, p.invited ? 'invited' : null, p.muted ? 'muted' : null].filter(Boolean).join(':');
}

/** What we may send naming `p` (message types); never anything about ourselves. */
export function targetActions(state, p) {
  if (!p || p.user_id === state.me) return [];
  return state.actions?.targets?.[targetKey(p)] || [];
}

/** Whether we may send `type` about ourselves now (hand.raise, mute, room.end...). */
export function may(state, type) {
  return Boolean(state.actions?.self?.includes(type));
}

function sorted(state, keep) {
  return [...state.participants.values()].filter(keep).sort((a, b) => ORDER[a.role] - ORDER[b.role]);
}

export const stagePeople = (state) => sorted(state, onStage);
export const listeners = (state) => sorted(state, (p) => p.role === 'listener' && p.connected !== false);
/** Raised hands we can answer (accept or dismiss). */
export const handsToAnswer = (state) =>
  sorted(state, (p) => p.hand_raised && !onStage(p)).filter((p) => targetActions(state, p).some((t) => t === 'hand.accept' || t === 'hand.dismiss'));

/** Listeners: counted from participants in small rooms (exact and live); past BIG_ROOM
 *  most of us are not told of each listener, so the server's count is the figure. */
export function listenerCount(state) {
  let n = 0;
  for (const p of state.participants.values()) if (p.role === 'listener' && p.connected !== false) n += 1;
  const counted = state.room.listener_count ?? 0;
  return counted > BIG_ROOM ? counted : n;
}
