"""Mixing the speakers of one room on one 48 kHz timeline. Plain numpy, no I/O.

Each speaker's decoded audio is added at its place on the timeline (sample positions on the
relay's shared clock, ``rooms.media.relay.Source``); :meth:`Mixer.take` hands out the mix up
to a position in whole 20 ms frames. A speaker who sends nothing (absent, muted, removed:
the relay drops their packets before they get here) adds nothing, so the mix is silent
where nobody spoke. Audio that arrives after its place was handed out is dropped.
"""

from __future__ import annotations

import numpy as np

RATE = 48_000
FRAME = RATE // 50  # 20 ms
AHEAD_LIMIT = 5 * RATE  # audio further ahead than this is a broken clock, not a speaker


class Mixer:
    """The mix of every speaker from ``start`` (a sample position) on."""

    def __init__(self, start: int) -> None:
        self.cursor = start  # the first sample not handed out yet
        self._pending = np.zeros(0, dtype=np.float32)
        self.late = 0  # samples dropped because they came after their place was taken

    def add(self, at: int, pcm: np.ndarray) -> None:
        """Add mono float32 ``pcm`` whose first sample belongs at position ``at``."""
        offset = at - self.cursor
        if offset < 0:
            cut = min(-offset, len(pcm))
            self.late += cut
            pcm, offset = pcm[cut:], 0
        end = offset + len(pcm)
        if not len(pcm) or end > AHEAD_LIMIT:
            return
        if end > len(self._pending):
            grown = np.zeros(end, dtype=np.float32)
            grown[: len(self._pending)] = self._pending
            self._pending = grown
        self._pending[offset:end] += pcm

    def take(self, until: int) -> np.ndarray:
        """The mix from the cursor up to ``until``, in whole frames (silence where nobody
        spoke), clipped to [-1, 1]."""
        frames = max(0, until - self.cursor) // FRAME
        n = frames * FRAME
        out = np.zeros(n, dtype=np.float32)
        have = min(n, len(self._pending))
        out[:have] = self._pending[:have]
        self._pending = self._pending[have:]
        self.cursor += n
        np.clip(out, -1.0, 1.0, out=out)
        return out
