"""Active-speaker detection from RTP audio levels (RFC 6464): pure logic, no decoding, no I/O.

Defaults follow LiveKit's: a packet counts as loud at -35 dBov or louder, a source is active
in a 400 ms window when at least 40 % of the window's packets are loud, and a speaker stays
"speaking" through one quiet window (two-window smoothing) so short pauses between words do
not flicker. Only changes of the speaking set are reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ACTIVE_LEVEL = 35  # -dBov: louder (smaller) levels count as speech
MIN_FRACTION = 0.4
UPDATE_INTERVAL = 0.4  # seconds between updates
SMOOTH_INTERVALS = 2
PACKET_SECONDS = 0.02  # Opus frames are 20 ms in WebRTC


@dataclass
class LevelMeter:
    """Loud and total packet counts of one source in the current window (the hot path)."""

    threshold: int = ACTIVE_LEVEL
    loud: int = 0
    total: int = 0

    def add(self, level: int) -> None:
        self.total += 1
        if level <= self.threshold:
            self.loud += 1

    def take(self) -> tuple[int, int]:
        """The window's ``(loud, total)``; starts a new window."""
        window = (self.loud, self.total)
        self.loud = self.total = 0
        return window


class SpeakingDetector:
    """Turns per-window ``(loud, total)`` counts per user into changes of the speaking set."""

    def __init__(
        self,
        *,
        interval: float = UPDATE_INTERVAL,
        min_fraction: float = MIN_FRACTION,
        smooth_intervals: int = SMOOTH_INTERVALS,
    ) -> None:
        # Discontinuous transmission sends few packets in silence: measure against the
        # packets a window should hold, not only those that arrived.
        self.expected = max(1, round(interval / PACKET_SECONDS))
        self.min_fraction = min_fraction
        self.smooth_intervals = smooth_intervals
        self._quiet: dict[str, int] = {}  # speaking user -> consecutive quiet windows
        self._reported: tuple[str, ...] = ()

    @property
    def speaking(self) -> tuple[str, ...]:
        return self._reported

    def update(self, windows: Mapping[str, tuple[int, int]]) -> tuple[str, ...] | None:
        """Feed one window per publishing user; the new sorted speaking set if it changed.

        Users missing from ``windows`` (left, muted, demoted) stop speaking at once.
        """
        for user in list(self._quiet):
            if user not in windows:
                del self._quiet[user]
        for user, (loud, total) in windows.items():
            if loud >= self.min_fraction * max(total, self.expected):
                self._quiet[user] = 0
            elif user in self._quiet:
                self._quiet[user] += 1
                if self._quiet[user] >= self.smooth_intervals:
                    del self._quiet[user]
        current = tuple(sorted(self._quiet))
        if current == self._reported:
            return None
        self._reported = current
        return current
