"""MediaPipe never sees a non-increasing timestamp, whatever times the frames carry.

The real MediaPipe landmarker is used throughout; the test only wraps
``Landmarker.detect`` (the single call into MediaPipe) to record the millisecond
timestamps passed to each landmarker instance. MediaPipe itself also raises on
a non-increasing timestamp, so a violation would fail twice.
"""

from __future__ import annotations

import reactivex
from hypothesis import given
from hypothesis import strategies as st

import pytest

from streamline.face import FaceAnalyzer, FaceSettings, analyze_faces
from streamline.face.landmarker import Landmarker, MillisecondClock
from streamline.types import VideoFrame

MS = 1_000_000


@given(st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=200))
def test_millisecond_clock_is_strictly_increasing_for_any_input(times_ns: list[int]) -> None:
    clock = MillisecondClock()
    out = [clock.to_ms(t) for t in times_ns]
    assert out[0] == 0
    assert all(b > a for a, b in zip(out, out[1:]))


@given(st.lists(st.integers(1 * MS, 10_000 * MS), min_size=1, max_size=50))
def test_millisecond_clock_keeps_real_frame_times(gaps_ns: list[int]) -> None:
    """Frame times at least 1 ms apart map to their own rounded millisecond offsets."""
    clock = MillisecondClock()
    t = 12_345 * MS + 678  # any origin
    start = t
    clock.to_ms(t)
    for gap in gaps_ns:
        t += gap
        expected = (t - start + MS // 2) // MS
        got = clock.to_ms(t)
        assert got >= expected and got - expected <= 1  # +1 only when rounding would collide


@pytest.fixture()
def recorded(monkeypatch):
    """Record (landmarker, timestamp_ms) for every call into MediaPipe."""
    calls: list[tuple[Landmarker, int]] = []
    original = Landmarker.detect

    def detect(self, image, timestamp_ms):
        calls.append((self, timestamp_ms))
        return original(self, image, timestamp_ms)

    monkeypatch.setattr(Landmarker, "detect", detect)
    return calls


def _troubled_times() -> list[int]:
    """40 ms frames with duplicates, a small backward step, sub-millisecond spacing,
    a source reset (back to 0 from 2 s) and a forward jump."""
    times = [i * 40 * MS for i in range(20)]  # 0 .. 760 ms
    times += [760 * MS, 760 * MS, 760 * MS]  # duplicates
    times += [600 * MS, 640 * MS]  # backwards by 160 ms (less than the 1 s reset threshold)
    times += [800 * MS + k * 300_000 for k in range(5)]  # 0.3 ms apart
    times += [2_000 * MS + i * 40 * MS for i in range(10)]
    times += [i * 40 * MS for i in range(15)]  # reset: the file was restarted
    times += [3_600_000 * MS + i * 40 * MS for i in range(5)]  # jump forward by an hour
    return times


def _check_increasing(calls: list[tuple[Landmarker, int]]) -> dict[int, list[int]]:
    per_instance: dict[int, list[int]] = {}
    for landmarker, ms in calls:
        per_instance.setdefault(id(landmarker), []).append(ms)
    for values in per_instance.values():
        assert all(b > a for a, b in zip(values, values[1:])), values
    return per_instance


def test_duplicates_backwards_and_reset_every_frame(recorded, grid_frames) -> None:
    times = _troubled_times()
    frames = [VideoFrame(t, grid_frames[i % len(grid_frames)].image) for i, t in enumerate(times)]
    with FaceAnalyzer(FaceSettings(fps=None)) as analyzer:
        observations = [analyzer.analyze(f) for f in frames]
        stats = analyzer.stats
    assert all(o is not None for o in observations)
    assert [o.pts_ns for o in observations] == times  # the frame's own time is reported
    per_instance = _check_increasing(recorded)
    assert len(recorded) == len(times)
    assert stats.resets == 1 and stats.landmarkers_created == 2
    assert len(per_instance) == 2
    first, second = dict.fromkeys(lm for lm, _ in recorded)
    assert first.closed and second.closed  # the old one at the reset, the new one at close()
    # The face is still found everywhere, before and after the reset.
    assert sum(o.present for o in observations) >= 0.95 * len(times)


def test_rate_gated_stream_with_reset(recorded, grid_frames) -> None:
    times = _troubled_times()
    frames = [VideoFrame(t, grid_frames[i % len(grid_frames)].image) for i, t in enumerate(times)]
    with FaceAnalyzer(FaceSettings(fps=15)) as analyzer:
        observations = [analyzer.analyze(f) for f in frames]
        stats = analyzer.stats
    analysed = [o for o in observations if o is not None]
    _check_increasing(recorded)
    assert stats.resets == 1
    assert stats.skipped + stats.analysed == stats.frames == len(times)
    # Duplicates and the small backward step are skipped by the rate, never analysed twice.
    analysed_times = [o.pts_ns for o in analysed]
    before_reset = analysed_times[: analysed_times.index(0, 1)]
    assert before_reset == sorted(set(before_reset))


def test_operator_path_never_sends_non_increasing_times(recorded, grid_frames) -> None:
    times = _troubled_times()
    frames = [VideoFrame(t, grid_frames[i % len(grid_frames)].image) for i, t in enumerate(times)]
    results = reactivex.from_iterable(frames).pipe(analyze_faces(FaceSettings(fps=None))).run()
    assert results.pts_ns == times[-1]
    _check_increasing(recorded)
    assert len(recorded) == len(times)
