// The pure parts of the stories screens and the "you" page: the viewer's rules
// (static/js/stories/viewer/rules.js), the composer's checks (stories/composer/rules.js)
// and the relation buttons' words and endpoints (me/relations.js).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  acceptFor,
  charactersLeft,
  fitsKind,
  initialKind,
  lengthProblem,
  mediaFields,
  megabytes,
  missingProblem,
  sizeProblem,
} from '../../static/js/stories/composer/rules.js';
import {
  audienceBadge,
  authorAfter,
  fillWidth,
  keyCommand,
  ownNote,
  seenByLabel,
  startIndex,
  textSize,
  videoProgress,
} from '../../static/js/stories/viewer/rules.js';
import { countsLine, relation, setPaths, storyKindLabel } from '../../static/js/me/relations.js';

const story = (id, seen, extra = {}) => ({ id, seen, ...extra });

describe('the viewer', () => {
  it('starts at the story asked for, else the first unseen, else the first', () => {
    const stories = [story('a', true), story('b', false), story('c', false)];
    assert.equal(startIndex(stories, 'c'), 2);
    assert.equal(startIndex(stories, 'gone'), 1);
    assert.equal(startIndex(stories, null), 1);
    assert.equal(startIndex([story('a', true), story('b', true)], null), 0);
  });

  it('text size steps down as the text grows', () => {
    assert.deepEqual([0, 39, 40, 119, 120, 279, 280].map((n) => textSize('x'.repeat(n))), ['xl', 'xl', 'l', 'l', 'm', 'm', 's']);
    assert.equal(textSize(undefined), 'xl');
  });

  it('words: audience badge, seen by, what the author switched off', () => {
    assert.equal(audienceBadge('followers'), null);
    assert.equal(audienceBadge(undefined), null);
    assert.equal(audienceBadge('close_friends'), 'Close friends');
    assert.equal(audienceBadge('public'), 'Public');
    assert.equal(audienceBadge('someday'), 'someday');
    assert.equal(seenByLabel(1), 'Seen by 1 person');
    assert.equal(seenByLabel(0), 'Seen by 0 people');
    assert.equal(ownNote({ allow_replies: true, allow_reactions: true }), null);
    assert.equal(ownNote({ allow_replies: false, allow_reactions: true }), 'Replies off');
    assert.equal(ownNote({ allow_replies: false, allow_reactions: false }), 'Replies off · Reactions off');
  });

  it('a video follows its own clock, the story record when the element has no duration yet', () => {
    assert.equal(videoProgress({ currentTime: 1, duration: 4, ended: false }), 0.25);
    assert.equal(videoProgress({ currentTime: 1, duration: NaN, ended: false }, 2), 0.5);
    assert.equal(videoProgress({ currentTime: 1, duration: NaN, ended: false }), 0);
    assert.equal(videoProgress({ currentTime: 0, duration: 4, ended: true }), 1);
    assert.equal(fillWidth(0.5), '50.00%');
    assert.equal(fillWidth(1.7), '100.00%');
  });

  it('moves on to the next author of the tray, if any', () => {
    assert.equal(authorAfter(['me', 'bob', 'carol'], 'bob'), 'carol');
    assert.equal(authorAfter(['me', 'bob', 'carol'], 'carol'), null);
    assert.equal(authorAfter(['me', 'bob'], 'stranger'), null);
  });

  it('keys', () => {
    assert.deepEqual(['ArrowRight', 'ArrowLeft', 'Escape', ' ', 'k'].map(keyCommand), ['next', 'prev', 'close', 'pause', 'pause']);
    for (const other of ['Enter', 'a', 'constructor', 'toString']) assert.equal(keyCommand(other), null, other);
  });
});

describe('the composer', () => {
  const cfg = { max_upload_bytes: 25 * 1024 * 1024, max_video_seconds: 60, image_types: ['image/jpeg', 'image/png'] };

  it('opens with the kind asked for, text otherwise', () => {
    assert.equal(initialKind('video'), 'video');
    assert.equal(initialKind('photo'), 'photo');
    for (const other of [null, '', 'audio', 'toString']) assert.equal(initialKind(other), 'text');
  });

  it('sizes in KB and MB', () => {
    assert.equal(megabytes(10), '1 KB');
    assert.equal(megabytes(812 * 1024), '812 KB');
    assert.equal(megabytes(2.5 * 1024 * 1024), '2.5 MB');
    assert.equal(megabytes(25 * 1024 * 1024), '25 MB');
  });

  it('file types: the server config when it gives them', () => {
    assert.equal(acceptFor('photo', cfg), 'image/jpeg,image/png');
    assert.equal(acceptFor('video', cfg), 'video/*');
    assert.equal(fitsKind('image/png', 'photo'), true);
    assert.equal(fitsKind('video/webm', 'photo'), false);
    assert.equal(fitsKind('video/webm', 'video'), true);
  });

  it('problems before uploading', () => {
    assert.equal(sizeProblem(cfg.max_upload_bytes, cfg), null);
    assert.equal(sizeProblem(30 * 1024 * 1024, cfg), 'This file is 30 MB; the limit is 25 MB.');
    assert.equal(lengthProblem(60, cfg), null);
    assert.equal(lengthProblem(NaN, cfg), null);
    assert.equal(lengthProblem(61.4, cfg), 'This video is 61 s long; stories take up to 60 s.');
    assert.equal(missingProblem('text', { text: '' }), 'Write something first.');
    assert.equal(missingProblem('text', { text: 'hi' }), null);
    assert.equal(missingProblem('photo', { file: null }), 'Choose a photo first.');
    assert.equal(missingProblem('video', { file: null }), 'Choose a video first.');
    assert.equal(missingProblem('video', { file: {} }), null);
  });

  it('the counter warns under 20 characters left', () => {
    assert.deepEqual(charactersLeft(500, 0), { text: '500 characters left', warn: false });
    assert.deepEqual(charactersLeft(500, 481), { text: '19 characters left', warn: true });
  });

  it('multipart fields: the caption only when given, options as strings', () => {
    const options = { audience: 'public', allow_replies: false, allow_reactions: true };
    assert.deepEqual(mediaFields('', options), [
      ['audience', 'public'],
      ['allow_replies', 'false'],
      ['allow_reactions', 'true'],
    ]);
    assert.deepEqual(mediaFields('Golden rings', options)[0], ['caption', 'Golden rings']);
  });
});

describe('the "you" page', () => {
  it('each relation: its set, endpoint and words, user ids escaped in paths', () => {
    assert.deepEqual(relation('follow', 'bob'), {
      set: 'following',
      path: '/v1/users/bob/follow',
      onText: 'Following',
      offText: 'Follow',
      onLabel: 'Unfollow bob',
      offLabel: 'Follow bob',
    });
    assert.equal(relation('closeFriend', 'a/b').path, '/v1/me/close-friends/a%2Fb');
    assert.equal(relation('mute', 'bob').offLabel, "Mute bob's stories");
    assert.equal(relation('hide', 'bob').onLabel, 'Show my stories to bob');
    assert.equal(relation('block', 'bob').set, null);
    const sets = setPaths('me');
    for (const kind of ['follow', 'closeFriend', 'mute', 'hide']) assert.ok(relation(kind, 'x').set in sets, kind);
    assert.equal(sets.following, '/v1/users/me/following');
  });

  it('words', () => {
    assert.equal(countsLine({ followers: 3, following: 1 }), '3 followers · 1 following');
    assert.equal(countsLine({ followers: 1, following: 0 }), '1 follower · 0 following');
    assert.deepEqual(['text', 'photo', 'video'].map(storyKindLabel), ['Text', 'Photo', 'Video']);
  });
});
