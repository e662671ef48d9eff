"""analyze_faces: off the source thread, bounded, closed on completion, error and dispose."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import reactivex
from reactivex.subject import Subject

from streamline.errors import MediaError
from streamline.face import FaceObservation, FaceSettings, analyze_faces
from streamline.face.landmarker import Landmarker
from streamline.sources import open_media
from streamline.types import VideoFrame

MS = 1_000_000


@pytest.fixture()
def landmarkers(monkeypatch):
    """Every Landmarker that analysed a frame, to check that it was closed."""
    seen: list[Landmarker] = []
    original = Landmarker.detect

    def detect(self, image, timestamp_ms):
        if self not in seen:
            seen.append(self)
        return original(self, image, timestamp_ms)

    monkeypatch.setattr(Landmarker, "detect", detect)
    return seen


def _face_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "streamline-face"]


def _wait_no_face_threads(timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _face_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _face_threads(), "an analysis thread outlived its stream"


def test_file_source_to_observations(bundled_clip, landmarkers) -> None:
    operator = analyze_faces()  # defaults: 15 fps
    out: list[FaceObservation] = []
    threads: set[str] = set()
    done = threading.Event()

    def on_next(obs: FaceObservation) -> None:
        threads.add(threading.current_thread().name)
        out.append(obs)

    with open_media(bundled_clip, audio=False) as media:
        media.video.pipe(operator).subscribe(on_next, lambda e: done.set(), done.set)
        assert done.wait(60)
    assert len(out) == 45
    assert [o.pts_ns for o in out] == sorted(o.pts_ns for o in out)
    assert sum(o.present for o in out) >= 43
    assert threads == {"streamline-face"}  # analysed off the source's threads
    stats = operator.stats
    assert (stats.frames, stats.skipped, stats.analysed, stats.dropped) == (75, 30, 45, 0)
    assert len(landmarkers) == 1 and landmarkers[0].closed
    _wait_no_face_threads()


def test_a_bad_frame_ends_the_stream_with_on_error_and_closes(grid_frames, landmarkers) -> None:
    frames = [VideoFrame(i * 40 * MS, f.image) for i, f in enumerate(grid_frames[:10])]
    frames[5] = VideoFrame(5 * 40 * MS, np.zeros((8, 8, 2), np.uint8))
    out: list[FaceObservation] = []
    errors: list[Exception] = []
    done = threading.Event()
    reactivex.from_iterable(frames).pipe(analyze_faces(FaceSettings(fps=None))).subscribe(
        out.append, lambda e: (errors.append(e), done.set()), done.set
    )
    assert done.wait(30)
    assert len(out) == 5
    assert len(errors) == 1 and isinstance(errors[0], MediaError) and "0.200 s" in str(errors[0])
    assert landmarkers[0].closed
    _wait_no_face_threads()


def test_an_error_in_the_downstream_observer_arrives_as_on_error(grid_frames) -> None:
    errors: list[Exception] = []
    done = threading.Event()

    def on_next(obs: FaceObservation) -> None:
        raise ZeroDivisionError("user callback failed")

    reactivex.from_iterable(grid_frames[:5]).pipe(analyze_faces()).subscribe(
        on_next, lambda e: (errors.append(e), done.set()), done.set
    )
    assert done.wait(30)
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError)
    _wait_no_face_threads()


def test_non_frames_are_rejected_with_on_error() -> None:
    errors: list[Exception] = []
    reactivex.from_iterable([np.zeros((4, 4, 3), np.uint8)]).pipe(analyze_faces()).subscribe(
        on_error=errors.append
    )
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(errors[0], TypeError) and "VideoFrame" in str(errors[0])


def test_dispose_mid_stream_stops_the_thread_and_closes(grid_frames, landmarkers) -> None:
    subject: Subject[VideoFrame] = Subject()
    out: list[FaceObservation] = []
    subscription = subject.pipe(analyze_faces(FaceSettings(fps=None))).subscribe(out.append)
    for i, frame in enumerate(grid_frames[:5]):
        subject.on_next(VideoFrame(i * 40 * MS, frame.image))
    deadline = time.monotonic() + 10
    while len(out) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(out) == 5
    subscription.dispose()
    _wait_no_face_threads()
    assert landmarkers and all(lm.closed for lm in landmarkers)
    subject.on_next(VideoFrame(10 * 40 * MS, grid_frames[10].image))  # ignored after dispose
    time.sleep(0.05)
    assert len(out) == 5


def test_live_keeps_the_latest_frame_and_counts_drops(grid_frames) -> None:
    """A live source pushing faster than the analysis: nothing queues up, the
    newest frame wins, and every frame is accounted for."""
    operator = analyze_faces(FaceSettings(fps=None, live=True))
    subject: Subject[VideoFrame] = Subject()
    out: list[FaceObservation] = []
    done = threading.Event()
    subject.pipe(operator).subscribe(out.append, lambda e: done.set(), done.set)
    frames = [VideoFrame(i * 40 * MS, grid_frames[i % 75].image) for i in range(150)]
    for frame in frames:  # as fast as possible: ~1000x real time
        subject.on_next(frame)
    subject.on_completed()
    assert done.wait(30)
    stats = operator.stats
    assert stats.dropped > 0
    assert stats.analysed + stats.dropped == stats.frames == 150
    assert len(out) == stats.analysed
    assert [o.pts_ns for o in out] == sorted(o.pts_ns for o in out)
    assert out[-1].pts_ns == frames[-1].pts_ns  # the newest frame is never the one dropped
    assert operator.handoff.stats.max_depth <= 2  # one frame, plus the end-of-stream marker
    _wait_no_face_threads()


def test_one_operator_serves_several_subscriptions(grid_frames, run_operator) -> None:
    operator = analyze_faces(FaceSettings(fps=5))
    first = run_operator(grid_frames, operator)
    second = run_operator(grid_frames, operator)
    assert len(first) == len(second) == 15
    assert [o.pts_ns for o in first] == [o.pts_ns for o in second]
    assert operator.stats.analysed == 30


def test_live_synthetic_source_at_15_fps() -> None:
    """The synthetic live device (testsrc2 at 30 fps through the live capture path,
    no face): observations at most 15 per second of source time (by timestamp),
    all present=False, and every frame accounted for (skipped, dropped or analysed)."""
    from streamline.sources import synthetic

    operator = analyze_faces(FaceSettings(live=True))  # 15 fps, latest wins
    out: list[FaceObservation] = []
    done = threading.Event()
    with synthetic(audio=False, size=(640, 480), fps=30, duration_s=2.0) as source:
        source.video.pipe(operator).subscribe(out.append, lambda e: done.set(), done.set)
        assert done.wait(30)
    stats = operator.stats
    assert stats.frames >= 30 and len(out) >= 1 and not any(o.present for o in out)
    assert stats.skipped + stats.dropped + stats.analysed == stats.frames
    gaps_ms = np.diff([o.pts_ns for o in out]) / MS
    assert gaps_ms.min() >= 66.7 - 8.4  # the rate grid, with its 1/8-period tolerance
    _wait_no_face_threads()
