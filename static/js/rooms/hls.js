// HLS in an <audio> element: natively where the browser plays it (Safari, iOS), otherwise
// with hls.js over Media Source Extensions. hls.js is vendored (static/vendor/hls.js, the
// version is in docs/recording.md) and loaded only when a page needs it.

const HLS_MODULE = '/vendor/hls.js/hls.min.mjs';
// Live: play 3 s behind the playlist's newest audio (segments are 2 s): low latency
// without stalling between two segments (docs/recording.md, "Latency").
const LIVE = { liveSyncDuration: 3, liveMaxLatencyDuration: 8, lowLatencyMode: false };

/**
 * Play `url` in `audio`. `onError(text)` hears of a failure that stops playback. Returns a
 * function that stops and frees the player.
 */
export async function playHls(audio, url, { live = false, onError = () => {} } = {}) {
  // hls.js first wherever Media Source Extensions exist (the same player everywhere, as
  // hls.js recommends); the browser's own HLS where they do not (iPhones before iOS 17).
  const Hls = 'MediaSource' in window || 'ManagedMediaSource' in window ? (await import(HLS_MODULE)).default : null;
  if (!Hls?.isSupported()) return playNatively(audio, url, onError);
  audio.dataset.engine = 'hls.js';
  const hls = new Hls(live ? LIVE : {});
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) onError(`Playback failed (${data.details}).`);
  });
  hls.loadSource(url);
  hls.attachMedia(audio);
  return () => hls.destroy();
}

function playNatively(audio, url, onError) {
  if (!audio.canPlayType('application/vnd.apple.mpegurl')) {
    onError('This browser cannot play this audio.');
    return () => {};
  }
  audio.dataset.engine = 'native';
  audio.src = url;
  return () => audio.removeAttribute('src');
}
