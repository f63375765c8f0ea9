"""The pure parts of recording: the mixer, the playlists, the fragment encoder."""

from __future__ import annotations

import io

import av
import numpy as np

from rooms.recording import playlist
from rooms.recording.encoder import FragmentEncoder, remux_m4a, split_boxes
from rooms.recording.mixer import FRAME, RATE, Mixer


def tone(hz: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_the_mixer_adds_speakers_and_fills_gaps_with_silence() -> None:
    mixer = Mixer(start=1000)
    mixer.add(1000, np.full(FRAME, 0.25, dtype=np.float32))
    mixer.add(1000 + FRAME // 2, np.full(FRAME, 0.5, dtype=np.float32))
    mixer.add(1000 + 4 * FRAME, np.full(FRAME, 0.9, dtype=np.float32))
    out = mixer.take(1000 + 3 * FRAME + 7)  # whole frames only
    assert len(out) == 3 * FRAME
    assert out[0] == 0.25 and out[FRAME // 2] == 0.75 and out[FRAME] == 0.5
    assert not out[2 * FRAME :].any()  # nobody spoke: silence
    nxt = mixer.take(1000 + 5 * FRAME)
    assert len(nxt) == 2 * FRAME and nxt[FRAME] == np.float32(0.9)


def test_the_mixer_clips_and_drops_late_or_absurd_audio() -> None:
    mixer = Mixer(start=0)
    mixer.add(0, np.full(FRAME, 0.8, dtype=np.float32))
    mixer.add(0, np.full(FRAME, 0.8, dtype=np.float32))
    assert mixer.take(FRAME).max() == 1.0
    mixer.add(0, np.ones(FRAME, dtype=np.float32))  # its place was handed out already
    assert mixer.late == FRAME
    mixer.add(3600 * RATE, np.ones(FRAME, dtype=np.float32))  # an hour ahead: ignored
    assert not mixer.take(2 * FRAME).any()


def test_playlists_live_then_vod() -> None:
    live = playlist.media_playlist([2.005, 2.005], ended=False)
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in live and "#EXT-X-ENDLIST" not in live
    assert '#EXT-X-MAP:URI="init.mp4"' in live
    assert live.splitlines()[-1] == "s00001.m4s"
    vod = playlist.media_playlist([2.005, 2.005, 0.5], ended=True)
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in vod and vod.endswith("#EXT-X-ENDLIST\n")
    assert "#EXT-X-TARGETDURATION:3" in vod  # the longest segment, rounded up
    signed = playlist.with_query(vod, "exp=1&sig=x")
    assert '#EXT-X-MAP:URI="init.mp4?exp=1&sig=x"' in signed
    assert "s00002.m4s?exp=1&sig=x" in signed.splitlines()


def test_fragments_are_two_second_segments_that_remux_to_one_m4a() -> None:
    encoder = FragmentEncoder()
    segments = []
    for chunk in np.array_split(tone(440, 7.0), 350):
        segments += encoder.add(chunk)
    assert len(segments) == 3  # a fragment is cut when the next one starts
    segments += encoder.finish()
    assert encoder.init is not None
    assert [kind for kind, _ in split_boxes(encoder.init)[0]] == [b"ftyp", b"moov"]
    assert all(abs(s.seconds - 2.0) < 0.05 for s in segments[:-1])
    assert abs(sum(s.seconds for s in segments) - 7.0) < 0.1
    data = remux_m4a(encoder.init, [s.data for s in segments])
    with av.open(io.BytesIO(data), "r") as m4a:
        assert m4a.streams.audio[0].codec_context.name == "aac"
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in m4a.decode(audio=0)])
    assert abs(len(samples) / RATE - 7.0) < 0.1
    spectrum = np.abs(np.fft.rfft(samples[RATE : 2 * RATE]))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 s window: 1 Hz bins
