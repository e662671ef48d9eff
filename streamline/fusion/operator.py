"""From synchronizer windows to emotion estimates: stream specs, the window adapter, the operator.

The fusion model reads three synchronizer streams, by name:

* ``"face"``: :class:`~streamline.face.FaceObservation` items; values = the
  63 face features plus a presence flag (64 values, :func:`face_values`),
  resampled onto a 15 Hz grid (nearest, valid up to 0.1 s away). A grid point
  is valid for the model when the synchronizer marks it valid *and* the face
  was present there.
* ``"voice"``: :class:`~streamline.features.VoiceEmbedding` items (one per
  0.5 s hop, stamped inside their hop); values = the 769-value vector plus a
  speech flag (770 values, :func:`voice_values`), one row per item whose time
  is in the window (no grid), so a window whose edges lie on the hop grid holds
  exactly its own hops, partial ones included. Only hops with speech are valid
  for the model: silence does not count as voice.
* ``"text"``: :class:`~streamline.features.TextFeatures` items (intervals
  ``[start_ns, end_ns)`` of an utterance's committed words); values = the 1537
  text features. The window's text is the last text item overlapping it.

:func:`stream_specs` makes the matching :class:`~streamline.sync.StreamSpec`
objects; :func:`window_inputs` turns an :class:`~streamline.sync.AlignedWindow`
into :class:`~streamline.fusion.recognizer.WindowInputs`; :func:`estimate_emotions`
is the reactive operator ``Observable[AlignedWindow] -> Observable[EmotionEstimate]``.
A stream missing from the window, or without valid points, is an absent modality.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np
from reactivex import Observable

from ..errors import ConfigError
from ..flow import engine_operator
from .extract import FACE_FEATURE_DIM, TEXT_FEATURE_DIM, VOICE_FEATURE_DIM, face_vector, text_vector, voice_has_speech
from .recognizer import EmotionRecognizer, RecognizerSettings, RunningFilter, WindowInputs, make_estimate
from .types import EmotionEstimate

__all__ = ["face_values", "voice_values", "text_values", "stream_specs", "window_inputs", "estimate_emotions"]


def face_values(observation: Any) -> np.ndarray:
    """(64,) float32: the face vector (zeros without a face) and a presence flag (1.0 / 0.0)."""
    v = face_vector(observation)
    out = np.zeros(FACE_FEATURE_DIM + 1, np.float32)
    if v is not None:
        out[:FACE_FEATURE_DIM] = v
        out[FACE_FEATURE_DIM] = 1.0
    return out


def voice_values(item: Any) -> np.ndarray:
    """(770,) float32: the 769-value vector of a :class:`~streamline.features.VoiceEmbedding`
    and a speech flag (1.0 when the hop holds speech, :func:`~streamline.fusion.extract.voice_has_speech`)."""
    out = np.empty(VOICE_FEATURE_DIM + 1, np.float32)
    out[:VOICE_FEATURE_DIM] = item.vector()
    out[VOICE_FEATURE_DIM] = 1.0 if voice_has_speech(item.speech_ratio) else 0.0
    return out


def text_values(features: Any) -> np.ndarray:
    """(1537,) float32 text vector of a :class:`~streamline.features.TextFeatures`."""
    return text_vector(np.asarray(features.embedding, np.float32), float(features.valence))


def stream_specs(
    *,
    face_rate_hz: float = 15.0,
    face_budget_s: float | None = None,
    voice_budget_s: float | None = None,
    text_budget_s: float | None = None,
) -> list[Any]:
    """StreamSpecs for the ``face``, ``voice`` and ``text`` streams (module docstring).

    The window length must make ``length_s * face_rate_hz`` a whole number (2 s does);
    windows should start and end on the voice hop grid (0.5 s).
    Lateness budgets (live mode) are passed through.
    """
    from ..sync import StreamSpec

    return [
        StreamSpec("face", kind="point", value_fn=face_values, dim=FACE_FEATURE_DIM + 1, grid_hz=face_rate_hz,
                   resample="nearest", max_age_s=0.1, lateness_budget_s=face_budget_s, keep_items=False),
        StreamSpec("voice", kind="point", value_fn=voice_values, dim=VOICE_FEATURE_DIM + 1, max_age_s=0.5,
                   lateness_budget_s=voice_budget_s, keep_items=False),
        StreamSpec("text", kind="interval", value_fn=text_values, dim=TEXT_FEATURE_DIM,
                   lateness_budget_s=text_budget_s, keep_items=False),
    ]


def _grid_or_points(sl: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if sl.grid_values is not None and sl.grid_mask is not None:
        return np.asarray(sl.grid_values, np.float32), np.asarray(sl.grid_mask, bool)
    if sl.values is not None and sl.count:
        return np.asarray(sl.values, np.float32), np.ones(sl.count, bool)
    return None


def _flagged(window: Any, name: str, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Values and mask of stream ``name``: rows of ``dim`` values, or ``dim + 1`` whose
    last value is a validity flag (face present, speech) folded into the mask."""
    if name not in window.streams:
        return None
    got = _grid_or_points(window.streams[name])
    if got is None or not got[0].shape[1]:
        return None
    x, m = got
    if x.shape[1] == dim + 1:
        return np.ascontiguousarray(x[:, :dim]), m & (x[:, dim] > 0.5)
    if x.shape[1] == dim:
        return np.ascontiguousarray(x), m
    raise ConfigError(f"window {window.index}: stream {name!r} values have width {x.shape[1]}, expected {dim} or {dim + 1}")


def window_inputs(window: Any, *, face: str = "face", voice: str = "voice", text: str = "text") -> WindowInputs:
    """The model inputs of one :class:`~streamline.sync.AlignedWindow` (streams looked up by name).

    Raises:
        ConfigError: a stream's values have the wrong width.
    """
    kw: dict[str, Any] = {}
    streams = window.streams
    got = _flagged(window, face, FACE_FEATURE_DIM)
    if got is not None:
        kw["face"], kw["face_mask"] = got
    got = _flagged(window, voice, VOICE_FEATURE_DIM)
    if got is not None:
        kw["voice"], kw["voice_mask"] = got
    if text in streams:
        sl = streams[text]
        if sl.values is not None and sl.count and sl.values.shape[1] == TEXT_FEATURE_DIM:
            kw["text"] = np.asarray(sl.values[-1], np.float32)
    return WindowInputs(**kw)


def estimate_emotions(
    settings: RecognizerSettings | None = None,
    *,
    recognizer: EmotionRecognizer | None = None,
) -> Callable[[Observable[Any]], Observable[EmotionEstimate]]:
    """Reactive operator: ``Observable[AlignedWindow]`` to ``Observable[EmotionEstimate]``.

    Each subscription has its own running estimate (a fresh :class:`RunningFilter`
    state); estimates are emitted on the thread that delivers the windows. Errors
    (a malformed window) end the stream with ``on_error``.

    Args:
        settings: used to build a recognizer when ``recognizer`` is None (the
            operator then owns it and closes it when the last subscription ends).
        recognizer: a shared :class:`EmotionRecognizer`; its running estimate is
            reset at each subscription.

    Raises:
        ModelNotFoundError, MissingExtraError: at call time, when the weights cannot be loaded.
    """
    own = recognizer is None
    rec = recognizer if recognizer is not None else EmotionRecognizer(settings)
    lock = threading.Lock()
    active = [0]

    def subscribed() -> RunningFilter:
        with lock:
            active[0] += 1
        return RunningFilter(rec.settings.time_constant_s)

    def estimate(running: RunningFilter, window: Any) -> list[EmotionEstimate]:
        out = rec.predict([window_inputs(window)])
        return [make_estimate(out, 0, window.start_ns, window.end_ns, running)]

    def unsubscribed(running: RunningFilter) -> None:
        with lock:
            active[0] -= 1
            last = active[0] == 0
        if own and last:
            rec.close()

    return engine_operator(subscribed, estimate, lambda running: (), close=unsubscribed)
