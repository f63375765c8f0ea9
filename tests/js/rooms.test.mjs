// The room page's other pure parts: the words for the server's actions, the socket's URL
// and frame parsing, and the create-room form's body.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { createBody } from '../../static/js/rooms/list.js';
import { parseMessage, socketUrl } from '../../static/js/rooms/socket.js';
import { personStatus, targetButtons, tileStatus } from '../../static/js/rooms/views/labels.js';
import { reminderText } from '../../static/js/rooms/views/panels.js';

const p = (role, extra = {}) => ({ user_id: 'bob', role, muted: false, hand_raised: false, invited: false, connected: true, ...extra });

describe('labels for the server-offered actions', () => {
  it('one button per offered type, in a fixed order, remove last and dangerous', () => {
    const buttons = targetButtons(p('speaker'), ['remove', 'mute', 'role.demote', 'role.cohost']);
    assert.deepEqual(
      buttons.map((b) => [b.type, b.label, b.danger]),
      [
        ['mute', 'Mute', false],
        ['role.cohost', 'Make co-host', false],
        ['role.demote', 'Move to listeners', false],
        ['remove', 'Remove from room', true],
      ],
    );
  });

  it('demoting a co-host makes them a speaker', () => {
    assert.equal(targetButtons(p('cohost'), ['role.demote'])[0].label, 'Make speaker');
  });

  it('types this client does not know draw no button', () => {
    assert.deepEqual(targetButtons(p('listener'), ['invite.send', 'something.new']).map((b) => b.type), ['invite.send']);
  });

  it('status lines', () => {
    assert.equal(tileStatus(p('speaker', { muted: true, connected: false }), true), 'Speaker, muted, speaking, reconnecting');
    assert.equal(personStatus(p('listener', { hand_raised: true, invited: true })), 'Listener · hand raised · invited to speak');
  });
});

describe('the room socket', () => {
  it('the URL: ws for http, wss for https, the token as a query parameter', () => {
    assert.equal(socketUrl('/v1/rooms/r1/ws', 'http://127.0.0.1:8000/rooms/r1', 'T'), 'ws://127.0.0.1:8000/v1/rooms/r1/ws?token=T');
    assert.equal(socketUrl('https://node-2.example/v1/rooms/r1/ws', 'http://x/', 'a.b'), 'wss://node-2.example/v1/rooms/r1/ws?token=a.b');
    assert.equal(socketUrl('wss://n/v1/rooms/r1/ws', 'http://x/', null), 'wss://n/v1/rooms/r1/ws?token=');
  });

  it('frames: an object with a string type, nothing else', () => {
    assert.deepEqual(parseMessage('{"type": "pong"}'), { type: 'pong' });
    for (const bad of ['nope', '[]', 'null', '{"type": 3}', '"welcome"']) assert.equal(parseMessage(bad), null, bad);
  });
});

describe('the create-room form', () => {
  const form = (fields) => {
    const data = new FormData();
    for (const [k, v] of Object.entries(fields)) data.set(k, v);
    return data;
  };

  it('live now: trimmed title, optional fields only when given', () => {
    const { body } = createBody(form({ title: '  Morning  ', speaker_policy: 'invited_only', description: ' ', language: 'en' }), null);
    assert.deepEqual(body, { title: 'Morning', speaker_policy: 'invited_only', language: 'en' });
  });

  it('scheduled: a future time is sent in UTC, a past one is refused', () => {
    const now = Date.parse('2026-01-01T10:00:00Z');
    const { body } = createBody(form({ title: 'Later', speaker_policy: 'anyone_can_request' }), '2026-01-01T12:00:00Z', now);
    assert.equal(body.scheduled_for, '2026-01-01T12:00:00.000Z');
    assert.deepEqual(createBody(form({ title: 'Late' }), '2025-12-31T12:00:00Z', now), { error: 'Pick a time in the future.' });
    assert.deepEqual(createBody(form({ title: 'Late' }), 'garbage', now), { error: 'Pick a time in the future.' });
  });
});

describe('the reminder toggle of a scheduled room', () => {
  it('says whether you will be reminded and how many others will', () => {
    assert.deepEqual(reminderText(false, 0), { label: 'Remind me', people: 'Nobody has asked for a reminder yet.' });
    assert.deepEqual(reminderText(false, 1), { label: 'Remind me', people: '1 person wants a reminder.' });
    assert.deepEqual(reminderText(false, 3), { label: 'Remind me', people: '3 people want a reminder.' });
    assert.deepEqual(reminderText(true, 1), { label: 'Reminder set', people: 'You will be reminded.' });
    assert.deepEqual(reminderText(true, 2), { label: 'Reminder set', people: 'You and 1 other will be reminded.' });
    assert.deepEqual(reminderText(true, 5), { label: 'Reminder set', people: 'You and 4 others will be reminded.' });
  });
});
