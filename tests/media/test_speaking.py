"""Active-speaker detection: pure logic."""

from __future__ import annotations

from rooms.media.speaking import LevelMeter, SpeakingDetector


def window(loud: int, total: int = 20) -> tuple[int, int]:
    return (loud, total)


def test_level_meter_counts_packets_at_or_above_minus_35_dbov() -> None:
    meter = LevelMeter()
    for level in (0, 20, 35, 36, 60, 127):
        meter.add(level)
    assert meter.take() == (3, 6)
    assert meter.take() == (0, 0)


def test_speaking_starts_at_once_and_reports_changes_only() -> None:
    detector = SpeakingDetector()
    assert detector.update({"alice": window(0)}) is None  # nobody, as before
    assert detector.update({"alice": window(12)}) == ("alice",)
    assert detector.update({"alice": window(15)}) is None
    assert detector.update({"alice": window(15), "bob": window(9)}) == ("alice", "bob")
    assert detector.speaking == ("alice", "bob")


def test_one_quiet_window_is_smoothed_over_two_end_it() -> None:
    detector = SpeakingDetector()
    detector.update({"alice": window(20)})
    assert detector.update({"alice": window(0)}) is None  # a pause between words
    assert detector.update({"alice": window(20)}) is None
    assert detector.update({"alice": window(0)}) is None
    assert detector.update({"alice": window(0)}) == ()


def test_sparse_loud_packets_are_not_speech() -> None:
    # Discontinuous transmission: 3 loud packets in a window that should hold 20.
    detector = SpeakingDetector()
    assert detector.update({"alice": window(3, total=3)}) is None


def test_a_source_that_disappears_stops_speaking_at_once() -> None:
    detector = SpeakingDetector()
    detector.update({"alice": window(20), "bob": window(20)})
    assert detector.update({"bob": window(20)}) == ("bob",)  # alice muted or left
