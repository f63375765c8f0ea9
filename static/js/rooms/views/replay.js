// Recordings on the room page: the replay player of an ended room (its seek bar is the
// audio element's own), and the live HLS player, for listening without WebRTC.

import { api, describeError } from '../../api.js';
import { h, mount } from '../../ui.js';
import { playHls } from '../hls.js';

const enc = encodeURIComponent;
const WAIT_MS = 2000; // a replay being finished (the room just ended) is ready in seconds
const WAIT_TRIES = 30;

/** The room's recording, or null when it has none (404) or it cannot be read. */
export async function readRecording(roomId) {
  try {
    return await api(`/v1/rooms/${enc(roomId)}/recording`);
  } catch {
    return null;
  }
}

/** The replay of an ended room into `box`: waits while it is being finished. Returns a stop function. */
export function renderReplay(box, roomId) {
  let stopped = false;
  let stopPlayer = () => {};
  const status = h('p', { class: 'hint replay-status' }, 'Preparing the replay…');
  mount(box, h('section', { class: 'replay', 'aria-label': 'Replay' }, h('h2', {}, 'Replay'), status));
  const attempt = async (tries) => {
    const rec = await readRecording(roomId);
    if (stopped) return;
    if (rec?.state === 'ready') {
      stopPlayer = await showPlayer(box, rec, status);
    } else if (rec?.state === 'live' && tries > 0) {
      setTimeout(() => attempt(tries - 1), WAIT_MS);
    } else {
      status.textContent = rec?.state === 'deleted' ? 'This replay was deleted or has expired.' : 'No replay is available.';
    }
  };
  attempt(WAIT_TRIES);
  return () => {
    stopped = true;
    stopPlayer();
  };
}

async function showPlayer(box, rec, status) {
  const audio = h('audio', { controls: true, preload: 'metadata', class: 'replay-player', 'aria-label': 'Replay' });
  const download = h('a', { class: 'btn btn-small', href: rec.download_url, download: '' }, 'Download (.m4a)');
  const until = h('p', { class: 'hint' }, `${formatDuration(rec.duration_seconds)} · available until ${new Date(rec.expires_at).toLocaleDateString()}`);
  status.replaceWith(h('div', { class: 'replay-body' }, audio, h('div', { class: 'row-actions' }, download), until));
  const error = (text) => mount(box.querySelector('.replay-body') || box, h('p', { class: 'form-error', role: 'alert' }, text));
  return playHls(audio, rec.hls_url, { onError: error });
}

/** Listen to a live room over HLS (no WebRTC): into `box`; returns a stop function. */
export async function listenLive(box, roomId, onError) {
  const rec = await readRecording(roomId);
  if (rec?.state !== 'live') {
    onError('Live listening is not available for this room.');
    return () => {};
  }
  const audio = h('audio', { controls: true, autoplay: true, class: 'hls-live', 'aria-label': 'Live audio' });
  mount(box, audio);
  box.hidden = false;
  const stop = await playHls(audio, rec.hls_url, { live: true, onError });
  audio.play().catch((e) => onError(describeError(e)));
  return stop;
}

export function formatDuration(seconds) {
  const s = Math.round(seconds || 0);
  const pad = (n) => String(n).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}` : `${Math.floor(s / 60)}:${pad(s % 60)}`;
}
