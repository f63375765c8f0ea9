// Banners above the stage: connection trouble, "Tap to listen", an invitation to speak.

import { remount } from '../../keyed.js';
import { h, icon } from '../../ui.js';
import { may } from '../state.js';

/** Draw the banners of `state`; `send` sends a room message, `resume()` starts blocked
 *  audio, `listenHls()` plays the room's live HLS instead of WebRTC (recorded rooms). */
export function renderBanners(box, state, { send, resume, listenHls }) {
  const invite = !state.over && state.inviteFrom && (may(state, 'invite.accept') || may(state, 'invite.decline'));
  const shown = state.over ? [] : [state.connection === 'connecting' && 'connecting', state.connection === 'closed' && 'lost', state.rtc === 'failed' && 'rtc', state.autoplayBlocked && 'tap'];
  const sig = JSON.stringify([shown, state.room.recorded, invite && [state.inviteFrom, may(state, 'invite.accept'), may(state, 'invite.decline')]]);
  remount(box, sig, () => [
    shown.includes('connecting') ? h('div', { class: 'banner' }, 'Connecting to the room…') : null,
    shown.includes('lost') ? h('div', { class: 'banner banner-warn' }, 'Connection lost. Reconnecting…') : null,
    shown.includes('rtc') ? h('div', { class: 'banner banner-warn' }, 'Audio connection failed.', state.room.recorded ? h('button', { type: 'button', class: 'btn btn-small', onclick: listenHls }, 'Listen over HLS') : null) : null,
    shown.includes('tap') ? h('button', { type: 'button', class: 'banner banner-action tap-to-listen', onclick: resume }, icon('speaker', 18), ' Tap to listen') : null,
    invite ? invitation(state, send) : null,
  ]);
}

function invitation(state, send) {
  return h(
    'div',
    { class: 'banner banner-invite', role: 'alert' },
    h('span', {}, `${state.inviteFrom} invited you to speak.`),
    may(state, 'invite.accept') ? h('button', { type: 'button', class: 'btn btn-small btn-primary', onclick: () => send('invite.accept') }, 'Join as speaker') : h('span', { class: 'hint' }, 'The stage is full right now.'),
    may(state, 'invite.decline') ? h('button', { type: 'button', class: 'btn btn-small', onclick: () => send('invite.decline') }, 'Not now') : null,
  );
}
