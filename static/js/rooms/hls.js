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
  if (audio.canPlayType('application/vnd.apple.mpegurl')) {
    audio.src = url;
    return () => audio.removeAttribute('src');
  }
  const { default: Hls } = await import(HLS_MODULE);
  if (!Hls.isSupported()) {
    onError('This browser cannot play this audio.');
    return () => {};
  }
  const hls = new Hls(live ? LIVE : {});
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) onError(`Playback failed (${data.details}).`);
  });
  hls.loadSource(url);
  hls.attachMedia(audio);
  return () => hls.destroy();
}
