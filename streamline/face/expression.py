"""Optional 7-class facial expression from a face crop (the facex model).

The model is ``facex/assets/model_optimized.tflite`` from ``facex==1.1.0``
(a CNN, input ``(1, 200, 200, 3)`` float32 in [0, 1], softmax output over 7
classes), run with ``ai_edge_litert``; about 10 ms per crop on one core. Its
class order, from ``facex/core.py`` (``EmotionClassifier.category``), is
``anger, disgust, fear, happy, neutral, sadness, surprised``; :data:`FACEX_TO_STREAMLINE`
renames them to streamline's classes and :class:`ExpressionClassifier` returns
probabilities in the order of :data:`EXPRESSION_CLASSES`.

facex itself finds faces with a Haar cascade on a grayscale frame and feeds the
gray crop replicated to three channels. streamline feeds the **RGB** square crop
around the MediaPipe face box with a **10 % margin**: on 350 labelled photos of
``shared/data/faces`` (7 classes, chance 14 %) that scored 50 % top-1 against
48 % for gray (margins 0, 0.2, 0.35: 41-49 %), and on the 14 MEAD style clips
with one of the 7 classes it named 11 correctly against 9 for gray with a 20 %
margin (docs/face.md). The authors do not state the training data.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from .._optional import require
from ..errors import ClosedError, ConfigError

__all__ = [
    "EXPRESSION_CLASSES",
    "FACEX_CLASSES",
    "FACEX_TO_STREAMLINE",
    "FACEX_SHA256",
    "ExpressionClassifier",
    "crop_face",
]

log = logging.getLogger(__name__)

#: streamline's emotion classes, in the order used everywhere (DESIGN.md).
EXPRESSION_CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
#: facex's output order (``facex/core.py``, ``EmotionClassifier.category``).
FACEX_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "neutral", "sadness", "surprised")
#: facex class name -> streamline class name.
FACEX_TO_STREAMLINE: dict[str, str] = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sadness": "sad",
    "surprised": "surprised",
}
#: SHA-256 of ``model_optimized.tflite`` in ``facex==1.1.0``.
FACEX_SHA256 = "181e9dc6b5b19b7a4a3ee661d8de9969249b72c317b2080d79ac12d2b7027da5"

_INPUT_SIZE_PX = 200
# Column j of the output goes to position _REORDER[j] of EXPRESSION_CLASSES.
_REORDER = np.array([EXPRESSION_CLASSES.index(FACEX_TO_STREAMLINE[c]) for c in FACEX_CLASSES])


def crop_face(image: np.ndarray, box: tuple[float, float, float, float], *, margin: float = 0.1) -> np.ndarray:
    """A square crop centred on ``box``, enlarged by ``margin`` of its side on each side.

    Parts of the square outside the image are filled by edge replication, so a
    face at the border keeps its position in the crop.

    Args:
        image: (H, W, 3) uint8.
        box: ``(x0, y0, x1, y1)`` in pixels.
        margin: fraction of the box's larger side added on every side.

    Returns:
        (S, S, 3) uint8, S >= 1.
    """
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    side_px = max(1, int(round(side)))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    left = int(round(cx - side_px / 2.0))
    top = int(round(cy - side_px / 2.0))
    rows = np.clip(np.arange(top, top + side_px), 0, height - 1)
    cols = np.clip(np.arange(left, left + side_px), 0, width - 1)
    return image[rows[:, None], cols[None, :]]


class ExpressionClassifier:
    """facex expression probabilities for face crops.

    Args:
        model_path: the ``.tflite`` file (``resolve_model("facex")``).
        num_threads: interpreter threads (1 leaves the other core to the rest).

    Raises:
        MissingExtraError: ai-edge-litert or opencv is not installed (extra ``face``).
        ConfigError: the file is not a model with a (1, 200, 200, 3) input and 7 outputs.
    """

    def __init__(self, model_path: str | Path, *, num_threads: int = 1) -> None:
        litert = require("ai_edge_litert.interpreter", "face")
        self._cv2 = require("cv2", "face")
        try:
            interpreter = litert.Interpreter(model_path=str(model_path), num_threads=num_threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigError(f"expression model {model_path}: cannot load it ({exc})") from exc
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        if tuple(inp["shape"]) != (1, _INPUT_SIZE_PX, _INPUT_SIZE_PX, 3) or tuple(out["shape"]) != (1, 7):
            raise ConfigError(
                f"expression model {model_path}: expected input (1, 200, 200, 3) and output (1, 7), "
                f"got {tuple(inp['shape'])} and {tuple(out['shape'])}"
            )
        self._interpreter = interpreter
        self._input_index = inp["index"]
        self._output_index = out["index"]
        self._lock = threading.Lock()
        self._closed = False

    def classify(self, crop: np.ndarray) -> np.ndarray:
        """Expression probabilities of one face crop.

        Args:
            crop: (H, W, 3) uint8 RGB face crop (any size; see :func:`crop_face`).

        Returns:
            (7,) float32 probabilities summing to 1, in :data:`EXPRESSION_CLASSES` order.

        Raises:
            ClosedError: after :meth:`close`.
        """
        cv2 = self._cv2
        resized = cv2.resize(np.ascontiguousarray(crop), (_INPUT_SIZE_PX, _INPUT_SIZE_PX), interpolation=cv2.INTER_AREA)
        x = (resized.astype(np.float32) * np.float32(1.0 / 255.0))[None]
        with self._lock:
            if self._closed:
                raise ClosedError("expression classifier used after close()")
            self._interpreter.set_tensor(self._input_index, x)
            self._interpreter.invoke()
            raw = np.array(self._interpreter.get_tensor(self._output_index)[0], dtype=np.float32)
        probs = np.empty(7, dtype=np.float32)
        probs[_REORDER] = raw
        total = float(probs.sum())
        return probs / total if total > 0 else probs

    def close(self) -> None:
        """Release the interpreter (idempotent)."""
        with self._lock:
            self._closed = True
            self._interpreter = None

    def __enter__(self) -> ExpressionClassifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
