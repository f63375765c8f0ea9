// The room page's reducer (static/js/rooms/state.js): every server message of
// docs/protocol.md, the `client.*` facts, and the selectors the views draw from.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  REACTIONS_FALLBACK,
  REMOVED,
  handsToAnswer,
  initialState,
  listenerCount,
  listeners,
  may,
  mine,
  reduce,
  stagePeople,
  targetActions,
  targetKey,
} from '../../static/js/rooms/state.js';

const ROOM = { id: 'r1', title: 'Morning show', host: 'alice', state: 'live', listener_count: 0, speaker_count: 1 };

function person(user_id, role = 'listener', extra = {}) {
  return { user_id, role, muted: false, hand_raised: false, invited: false, speaking: false, connected: true, ...extra };
}

// A host's actions in a room with free seats, as docs/protocol.md describes them.
const HOST_ACTIONS = {
  self: ['mute', 'room.end'],
  targets: {
    listener: ['invite.send', 'remove'],
    'listener:hand': ['hand.accept', 'hand.dismiss', 'invite.send', 'remove'],
    'listener:invited': ['remove'],
    'listener:hand:invited': ['hand.accept', 'hand.dismiss', 'remove'],
    speaker: ['role.cohost', 'role.demote', 'mute', 'remove'],
    'speaker:muted': ['role.cohost', 'role.demote', 'remove'],
    cohost: ['role.demote', 'mute', 'remove'],
    'cohost:muted': ['role.demote', 'remove'],
    host: [],
    'host:muted': [],
  },
};
const LISTENER_ACTIONS = { self: ['hand.raise'], targets: { listener: [], 'listener:hand': [], speaker: [], host: [] } };

function welcome(you, participants, extra = {}) {
  return { type: 'welcome', protocol: 1, you, room: ROOM, participants, ice_servers: [{ urls: 'stun:x' }], reactions: ['👏', '🔥'], ...extra };
}

function joined(you, participants, actions) {
  return reduce(initialState({ id: 'r1', state: 'live', host: 'alice' }, you), welcome(you, participants, actions ? { actions } : {}));
}

const updated = (p) => ({ type: 'participant.updated', participant: p });

describe('welcome', () => {
  it('replaces everything with the snapshot', () => {
    const s = joined('bob', [person('alice', 'host'), person('bob')], LISTENER_ACTIONS);
    assert.equal(s.me, 'bob');
    assert.equal(s.room.title, 'Morning show');
    assert.deepEqual([...s.participants.keys()], ['alice', 'bob']);
    assert.deepEqual(s.reactions, ['👏', '🔥']);
    assert.deepEqual(s.iceServers, [{ urls: 'stun:x' }]);
    assert.deepEqual(s.actions, LISTENER_ACTIONS);
    assert.equal(s.welcomes, 1);
    assert.equal(mine(s).role, 'listener');
  });

  it('a second welcome (after a store outage) starts over: a new connection', () => {
    let s = joined('bob', [person('alice', 'host'), person('bob'), person('carol')]);
    s = reduce(s, { type: 'speaking', user_ids: ['alice'] });
    s = reduce(s, { type: 'client.autoplay', blocked: true });
    s = reduce(s, welcome('bob', [person('alice', 'host'), person('bob')]));
    assert.equal(s.welcomes, 2);
    assert.deepEqual([...s.participants.keys()], ['alice', 'bob']);
    assert.equal(s.speaking.size, 0);
    assert.equal(s.autoplayBlocked, false);
  });

  it('keeps the fallback reactions when the welcome names none', () => {
    const s = reduce(initialState(ROOM, 'bob'), welcome('bob', [person('bob')], { reactions: [] }));
    assert.deepEqual(s.reactions, REACTIONS_FALLBACK);
  });

  it('a pending invitation comes from the host when we did not see who sent it', () => {
    const s = joined('bob', [person('alice', 'host'), person('bob', 'listener', { invited: true })]);
    assert.equal(s.inviteFrom, 'alice');
  });
});

describe('participants', () => {
  it('joined and updated insert or replace the whole participant', () => {
    let s = joined('alice', [person('alice', 'host')]);
    s = reduce(s, { type: 'participant.joined', participant: person('bob') });
    s = reduce(s, updated(person('bob', 'listener', { hand_raised: true })));
    assert.equal(s.participants.get('bob').hand_raised, true);
    assert.equal(s.participants.size, 2);
  });

  it('left removes them (and their speaking ring); leaving twice is harmless', () => {
    let s = joined('alice', [person('alice', 'host'), person('bob', 'speaker')]);
    s = reduce(s, { type: 'speaking', user_ids: ['bob'] });
    s = reduce(s, { type: 'participant.left', user_id: 'bob', reason: 'left' });
    assert.equal(s.participants.has('bob'), false);
    assert.equal(s.speaking.has('bob'), false);
    assert.equal(reduce(s, { type: 'participant.left', user_id: 'bob', reason: 'left' }), s);
  });

  it('never changes the state it was given', () => {
    const s = joined('alice', [person('alice', 'host'), person('bob')]);
    const keys = [...s.participants.keys()];
    const bob = s.participants.get('bob');
    const next = reduce(s, updated(person('bob', 'speaker')));
    reduce(next, { type: 'participant.left', user_id: 'alice', reason: 'left' });
    assert.deepEqual([...s.participants.keys()], keys);
    assert.equal(s.participants.get('bob'), bob);
    assert.equal(bob.role, 'listener');
  });

  it('a speaking update does not clobber the speaking set', () => {
    let s = joined('alice', [person('alice', 'host'), person('bob', 'speaker')]);
    s = reduce(s, { type: 'speaking', user_ids: ['bob'] });
    s = reduce(s, updated(person('bob', 'speaker', { muted: false, speaking: false })));
    assert.equal(s.speaking.has('bob'), true);
  });
});

describe('what happens to us', () => {
  const onStage = () => joined('bob', [person('alice', 'host'), person('bob', 'listener', { invited: true })]);

  it('going on stage says so and settles the invitation', () => {
    const s = reduce(reduce(onStage(), { type: 'invite.received', from_user: 'alice' }), updated(person('bob', 'speaker')));
    assert.deepEqual(s.notices, [{ kind: 'info', text: 'You are on stage: people can hear you.' }]);
    assert.equal(s.inviteFrom, null);
  });

  it('becoming co-host and going back to listening say so', () => {
    let s = reduce(onStage(), updated(person('bob', 'speaker')));
    s = reduce(s, updated(person('bob', 'cohost')));
    assert.deepEqual(s.notices, [{ kind: 'info', text: 'You are a co-host now.' }]);
    s = reduce(s, updated(person('bob', 'listener')));
    assert.deepEqual(s.notices, [{ kind: 'info', text: 'You are a listener now.' }]);
  });

  it('a mute we did not send is a host muting us; our own is not', () => {
    const speaking = reduce(onStage(), updated(person('bob', 'speaker')));
    const byHost = reduce(speaking, updated(person('bob', 'speaker', { muted: true })));
    assert.deepEqual(byHost.notices, [{ kind: 'info', text: 'A host muted you.' }]);
    let own = reduce(speaking, { type: 'client.sent', message: { type: 'mute', user_id: 'bob' } });
    assert.equal(own.selfMuting, true);
    own = reduce(own, updated(person('bob', 'speaker', { muted: true })));
    assert.deepEqual(own.notices, []);
    assert.equal(own.selfMuting, false);
  });

  it('notices last one step', () => {
    const s = reduce(onStage(), { type: 'reaction', user_id: 'alice', emoji: '👏' });
    assert.deepEqual(s.notices, [{ kind: 'reaction', userId: 'alice', emoji: '👏' }]);
    assert.deepEqual(reduce(s, { type: 'pong' }).notices, []);
  });

  it('an invitation is shown until declined or withdrawn', () => {
    let s = reduce(onStage(), { type: 'invite.received', from_user: 'carol' });
    assert.equal(s.inviteFrom, 'carol');
    assert.equal(reduce(s, { type: 'client.sent', message: { type: 'invite.decline' } }).inviteFrom, null);
    s = reduce(s, updated(person('bob', 'listener', { invited: false })));
    assert.equal(s.inviteFrom, null);
  });
});

describe('the room', () => {
  it('room.updated merges the room', () => {
    const s = reduce(joined('bob', [person('bob')]), { type: 'room.updated', room: { host: 'carol', listener_count: 3 } });
    assert.equal(s.room.host, 'carol');
    assert.equal(s.room.title, 'Morning show');
  });

  it('listeners sets the counts and keeps the rest of the room', () => {
    const s = reduce(joined('bob', [person('bob')]), { type: 'listeners', listener_count: 2041, speaker_count: 4 });
    assert.equal(s.room.listener_count, 2041);
    assert.equal(s.room.speaker_count, 4);
    assert.equal(s.room.title, 'Morning show');
    assert.equal(s.participants.size, 1);
  });

  it('room.ended and removed end the room for us, with the reason', () => {
    const ended = reduce(joined('bob', [person('bob')]), { type: 'room.ended', reason: 'host_left' });
    assert.equal(ended.room.state, 'ended');
    assert.deepEqual(ended.over, { text: 'The host left, so this room has ended.', retry: false });
    const other = reduce(joined('bob', [person('bob')]), { type: 'room.ended', reason: 'something_new' });
    assert.equal(other.over.text, 'This room has ended.');
    assert.deepEqual(reduce(joined('bob', [person('bob')]), { type: 'removed' }).over, { text: REMOVED, retry: false });
  });

  it('errors become notices with the server message', () => {
    const s = reduce(joined('bob', [person('bob')]), { type: 'error', code: 'speakers_full', message: 'the room already has 10 speakers', ref: '7' });
    assert.deepEqual(s.notices, [{ kind: 'error', text: 'the room already has 10 speakers', code: 'speakers_full' }]);
    assert.deepEqual(reduce(s, { type: 'error', code: 'not_allowed' }).notices, [{ kind: 'error', text: 'not_allowed', code: 'not_allowed' }]);
  });

  it('rtc messages, pong and unknown types leave the state as it is', () => {
    const s = joined('bob', [person('bob')]);
    for (const type of ['rtc.offer', 'rtc.answer', 'rtc.ice', 'rtc.restart', 'pong', 'from.the.future']) assert.equal(reduce(s, { type }), s);
  });

  it('client facts: connection, audio, a room read over HTTP, the end', () => {
    let s = joined('bob', [person('alice', 'host'), person('bob')], LISTENER_ACTIONS);
    s = reduce(s, { type: 'client.connection', state: 'closed' });
    s = reduce(s, { type: 'client.rtc', state: 'failed' });
    s = reduce(s, { type: 'client.autoplay', blocked: true });
    assert.deepEqual([s.connection, s.rtc, s.autoplayBlocked], ['closed', 'failed', true]);
    s = reduce(s, { type: 'client.over', text: 'Disconnected from the room.', retry: true });
    assert.deepEqual(s.over, { text: 'Disconnected from the room.', retry: true });
    s = reduce(s, { type: 'client.room', room: { ...ROOM, title: 'Fresh' } });
    assert.equal(s.over, null);
    assert.equal(s.room.title, 'Fresh');
    assert.equal(s.participants.size, 0);
    assert.equal(s.actions, null);
  });
});

describe('actions from the server', () => {
  it('target keys follow docs/protocol.md: role, then hand, invited, muted', () => {
    assert.equal(targetKey(person('x')), 'listener');
    assert.equal(targetKey(person('x', 'listener', { hand_raised: true, invited: true })), 'listener:hand:invited');
    assert.equal(targetKey(person('x', 'listener', { invited: true })), 'listener:invited');
    assert.equal(targetKey(person('x', 'speaker', { muted: true })), 'speaker:muted');
    assert.equal(targetKey(person('x', 'cohost')), 'cohost');
  });

  it('what we may do to someone comes from targets[their key], never to ourselves', () => {
    const s = joined('alice', [person('alice', 'host'), person('bob', 'listener', { hand_raised: true }), person('carol', 'cohost', { muted: true })], HOST_ACTIONS);
    assert.deepEqual(targetActions(s, s.participants.get('bob')), ['hand.accept', 'hand.dismiss', 'invite.send', 'remove']);
    assert.deepEqual(targetActions(s, s.participants.get('carol')), ['role.demote', 'remove']);
    assert.deepEqual(targetActions(s, s.participants.get('alice')), []);
    assert.ok(may(s, 'room.end'));
    assert.ok(!may(s, 'hand.raise'));
  });

  it('an actions event replaces them: the buttons follow', () => {
    let s = joined('bob', [person('alice', 'host'), person('bob')], LISTENER_ACTIONS);
    assert.ok(may(s, 'hand.raise'));
    s = reduce(s, { type: 'actions', actions: { self: ['hand.lower'], targets: {} } });
    assert.ok(may(s, 'hand.lower'));
    assert.ok(!may(s, 'hand.raise'));
  });

  it('a key the server did not list offers nothing', () => {
    const s = joined('alice', [person('alice', 'host'), person('bob', 'speaker', { hand_raised: true })], { self: [], targets: {} });
    assert.deepEqual(targetActions(s, s.participants.get('bob')), []);
  });

  it('without actions from the server nothing role-gated is offered', () => {
    const s = joined('alice', [person('alice', 'host'), person('bob', 'listener', { hand_raised: true })]);
    assert.equal(s.actions, null);
    for (const type of ['mute', 'unmute', 'room.end', 'hand.raise', 'role.step_down']) assert.ok(!may(s, type), type);
    assert.deepEqual(targetActions(s, s.participants.get('bob')), []);
    assert.deepEqual(handsToAnswer(s), []);
  });

  it('raised hands to answer are those the server lets us accept or dismiss', () => {
    const people = [person('alice', 'host'), person('bob', 'listener', { hand_raised: true }), person('dan', 'listener', { hand_raised: true, invited: true }), person('erin')];
    const s = joined('alice', people, HOST_ACTIONS);
    assert.deepEqual(handsToAnswer(s).map((p) => p.user_id), ['bob', 'dan']);
    const full = reduce(s, { type: 'actions', actions: { ...HOST_ACTIONS, targets: { ...HOST_ACTIONS.targets, 'listener:hand': ['hand.dismiss'] } } });
    assert.deepEqual(handsToAnswer(full).map((p) => p.user_id), ['bob', 'dan']);
    const none = reduce(s, { type: 'actions', actions: LISTENER_ACTIONS });
    assert.deepEqual(handsToAnswer(none), []);
  });
});

describe('reading the state', () => {
  it('the stage is host, co-hosts, speakers in that order; listeners are connected listeners', () => {
    const s = joined('bob', [person('dan', 'speaker'), person('bob'), person('carol', 'cohost'), person('alice', 'host'), person('erin', 'listener', { connected: false })]);
    assert.deepEqual(stagePeople(s).map((p) => p.user_id), ['alice', 'carol', 'dan']);
    assert.deepEqual(listeners(s).map((p) => p.user_id), ['bob']);
  });

  it('listener count: from participants in small rooms, the server\'s count past 100', () => {
    let s = joined('bob', [person('alice', 'host'), person('bob'), person('carol')]);
    s = reduce(s, { type: 'listeners', listener_count: 7, speaker_count: 1 });
    assert.equal(listenerCount(s), 2); // the room's figure lags behind the events
    s = reduce(s, { type: 'listeners', listener_count: 250, speaker_count: 1 });
    assert.equal(listenerCount(s), 250);
    // Listeners who left without a word to us (a large room) do not count.
    s = reduce(s, { type: 'listeners', listener_count: 101, speaker_count: 1 });
    assert.equal(listenerCount(s), 101);
  });
});

describe('recording', () => {
  it('recording.started marks the room recorded and says so once', () => {
    const s = joined('bob', [person('alice', 'host'), person('bob')]);
    assert.equal(Boolean(s.room.recorded), false);
    const next = reduce(s, { type: 'recording.started', by: 'alice' });
    assert.equal(next.room.recorded, true);
    assert.deepEqual(next.notices, [{ kind: 'info', text: 'This room is being recorded.' }]);
    assert.deepEqual(reduce(next, { type: 'pong' }).notices, []);
  });

  it('the host may start recording only while the server offers it', () => {
    const s = reduce(joined('alice', [person('alice', 'host')]), { type: 'actions', actions: { self: ['mute', 'room.end', 'recording.start'], targets: {} } });
    assert.equal(may(s, 'recording.start'), true);
    assert.equal(may(reduce(s, { type: 'actions', actions: HOST_ACTIONS }), 'recording.start'), false);
  });
});
