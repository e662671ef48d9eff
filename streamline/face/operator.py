"""The reactive face operator: ``frames.pipe(analyze_faces(settings))``.

Per subscription it creates a :class:`~streamline.face.FaceAnalyzer` (so one
operator can be reused), chooses frames by the rate on the source thread (cheap),
hands the chosen frames to an analysis thread through a bounded
:class:`~streamline.flow.Handoff`, and closes the analyzer when the stream
completes, fails or is disposed. Files: ``OverflowPolicy.BLOCK`` (the source
waits; nothing is lost). Live (``FaceSettings.live``): a queue of one frame with
``OverflowPolicy.KEEP_LATEST``: while a frame is being analysed only the newest
due frame waits, older ones are dropped and counted in ``stats.dropped``.
"""

from __future__ import annotations

import logging
from typing import Callable

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from ..flow import Handoff, OverflowPolicy
from ..types import VideoFrame
from .analyzer import FaceAnalyzer, FaceObservation, FaceSettings, FaceStats, RateGate, _check_pts

__all__ = ["AnalyzeFaces", "analyze_faces"]

log = logging.getLogger(__name__)


class AnalyzeFaces:
    """Operator: ``Observable[VideoFrame] -> Observable[FaceObservation]``.

    One observation per analysed frame (frames skipped by the rate, or dropped
    live, give none), emitted on the analysis thread (``streamline-face``), in
    frame order. Errors (a bad image, a MediaPipe failure, an exception from the
    downstream observer) arrive as ``on_error``; the analyzer is closed after
    completion, error or dispose, and no thread outlives them.

    Args:
        settings: :class:`FaceSettings` (defaults when None).

    Attributes:
        settings: the settings.
        handoff: the bounded hand-off to the analysis thread (its ``stats``).
    """

    def __init__(self, settings: FaceSettings | None = None) -> None:
        self.settings = settings if settings is not None else FaceSettings()
        if self.settings.live:
            self.handoff = Handoff(1, OverflowPolicy.KEEP_LATEST, name="face")
        else:
            self.handoff = Handoff(self.settings.queue_size, OverflowPolicy.BLOCK, name="face")
        self._stats = FaceStats()

    def __repr__(self) -> str:
        return f"AnalyzeFaces({self.settings!r})"

    @property
    def stats(self) -> FaceStats:
        """Counters over all subscriptions (``dropped`` comes from the hand-off)."""
        self._stats.dropped = self.handoff.stats.dropped
        return self._stats

    def __call__(self, source: Observable[VideoFrame]) -> Observable[FaceObservation]:
        settings = self.settings
        stats = self._stats

        def subscribe(
            observer: abc.ObserverBase[FaceObservation], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            try:
                analyzer = FaceAnalyzer(settings, stats=stats)
            except Exception as exc:
                observer.on_error(exc)
                return Disposable()
            gate = RateGate(settings.fps, reset_threshold_ns=int(round(settings.reset_threshold_s * 1e9)))

            def admit(frame: VideoFrame) -> bool:  # on the source thread
                if not isinstance(frame, VideoFrame):
                    raise TypeError(f"analyze_faces expects VideoFrame items, got {type(frame).__name__}")
                stats.frames += 1
                if gate.admit(_check_pts(frame.pts_ns)):
                    return True
                stats.skipped += 1
                return False

            def on_next(frame: VideoFrame) -> None:  # on the analysis thread
                observer.on_next(analyzer._process(frame))

            def on_error(error: Exception) -> None:
                analyzer.close()
                observer.on_error(error)

            def on_completed() -> None:
                analyzer.close()
                observer.on_completed()

            subscription = source.pipe(ops.filter(admit), self.handoff).subscribe(
                on_next, on_error, on_completed, scheduler=scheduler
            )

            def dispose() -> None:
                subscription.dispose()  # joins the analysis thread
                analyzer.close()

            return Disposable(dispose)

        return reactivex.create(subscribe)


def analyze_faces(
    settings: FaceSettings | None = None,
) -> Callable[[Observable[VideoFrame]], Observable[FaceObservation]]:
    """Operator turning video frames into face observations.

    Example::

        with open_media("talk.mp4", audio=False) as media:
            media.video.pipe(analyze_faces(FaceSettings(fps=15))).subscribe(print)

    Args:
        settings: :class:`FaceSettings` (defaults when None).

    Returns:
        An :class:`AnalyzeFaces` (a callable operator with ``.stats``).
    """
    return AnalyzeFaces(settings)
