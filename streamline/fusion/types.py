"""Value types of the fusion stage: the classes, the modalities and :class:`EmotionEstimate`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CLASSES", "MODALITIES", "NUM_CLASSES", "EmotionEstimate"]

#: The 7 emotion classes, in the order of every probability vector streamline makes.
CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
#: Number of classes (7).
NUM_CLASSES = len(CLASSES)
#: The modalities the fusion model knows, in its input order.
MODALITIES: tuple[str, ...] = ("face", "voice", "text")


@dataclass(frozen=True, slots=True, eq=False)
class EmotionEstimate:
    """The fusion model's estimate for one window, and the causal running estimate.

    Attributes:
        start_ns: window start on the session timeline, int ns (inclusive).
        end_ns: window end, int ns (exclusive).
        probs: (7,) float32 calibrated class probabilities in :data:`CLASSES` order
            (sum 1). Uniform when no modality is present. Treat as read-only.
        valence: estimated valence in [-1, 1] (negative to positive).
        arousal: estimated arousal in [-1, 1] (calm to excited).
        confidence: calibrated confidence: the largest entry of ``probs`` after
            temperature scaling (see docs/fusion.md), in [1/7, 1].
        modalities: the modalities present in the window, in :data:`MODALITIES` order
            (a subset; empty when the window had no usable data).
        contributions: modality -> weight in [0, 1], summing to 1 over ``modalities``
            (empty when none is present); how it is computed depends on the fusion
            strategy (docs/fusion.md): attention weights, late-fusion gate weights, or
            leave-one-modality-out deltas.
        running_probs: (7,) float32 causal running estimate: an exponential filter of
            ``probs`` over this and earlier windows only (no look-ahead), weighted by
            confidence; equals ``probs`` on the first window with data.
        running_valence: the same filter applied to ``valence``.
        running_arousal: the same filter applied to ``arousal``.
        running_has_data: whether a window with data (this one or an earlier one)
            has been folded into the running estimate; while False the running
            estimate is uniform with valence and arousal 0, and
            :attr:`running_label` is None. Defaults to True (an estimate built
            by hand with a running estimate of its own).
    """

    start_ns: int
    end_ns: int
    probs: np.ndarray
    valence: float
    arousal: float
    confidence: float
    modalities: tuple[str, ...]
    contributions: dict[str, float]
    running_probs: np.ndarray
    running_valence: float
    running_arousal: float
    running_has_data: bool = True

    @property
    def label(self) -> str | None:
        """The most probable class of this window, or None when the window had no
        usable data (``modalities`` empty: ``probs`` is uniform, not a finding)."""
        if not self.modalities:
            return None
        return CLASSES[int(np.argmax(self.probs))]

    @property
    def running_label(self) -> str | None:
        """The most probable class of the running estimate, or None while no window
        with data has been folded into it (``running_has_data`` False)."""
        if not self.running_has_data:
            return None
        return CLASSES[int(np.argmax(self.running_probs))]

    @property
    def start_s(self) -> float:
        """``start_ns`` in float seconds."""
        return self.start_ns / 1e9

    @property
    def end_s(self) -> float:
        """``end_ns`` in float seconds."""
        return self.end_ns / 1e9

    def as_dict(self, *, ndigits: int = 4) -> dict[str, Any]:
        """A JSON-ready dict (the ``type: "estimate"`` line of ``streamline analyze``).

        Keys: ``type`` ("estimate"), ``start_s``, ``end_s``, ``probs`` (class ->
        probability), ``label`` (null when the window had no data), ``valence``,
        ``arousal``, ``confidence``, ``modalities`` (list), ``contributions``
        (modality -> weight), ``running`` (``probs``, ``label``, ``valence``,
        ``arousal`` of the running estimate; ``label`` null until a window with
        data has come).
        """

        def r(x: float) -> float:
            return round(float(x), ndigits)

        return {
            "type": "estimate",
            "start_s": round(self.start_ns / 1e9, 6),
            "end_s": round(self.end_ns / 1e9, 6),
            "probs": {c: r(p) for c, p in zip(CLASSES, self.probs)},
            "label": self.label,
            "valence": r(self.valence),
            "arousal": r(self.arousal),
            "confidence": r(self.confidence),
            "modalities": list(self.modalities),
            "contributions": {m: r(w) for m, w in self.contributions.items()},
            "running": {
                "probs": {c: r(p) for c, p in zip(CLASSES, self.running_probs)},
                "label": self.running_label,
                "valence": r(self.running_valence),
                "arousal": r(self.running_arousal),
            },
        }
