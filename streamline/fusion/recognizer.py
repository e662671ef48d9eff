"""Running the fusion model: loading weights offline, window inputs, the causal running estimate.

:class:`EmotionRecognizer` turns :class:`WindowInputs` (one window's masked
feature sequences per modality) into :class:`~streamline.fusion.types.EmotionEstimate`
objects, carrying a running estimate forward from window to window.

Weights: a folder with ``fusion.pt`` (a torch state dict) and ``fusion.json``
(architecture, feature layout, training settings, splits, and the SHA-256 of
``fusion.pt``). The default folder is ``streamline/fusion/weights`` inside the
package; ``$STREAMLINE_FUSION_WEIGHTS`` or ``RecognizerSettings.weights_dir``
point elsewhere. Loading never touches the network; a checksum mismatch raises
:class:`~streamline.errors.ModelNotFoundError`.

Running estimate (causal, no look-ahead): an exponential filter over windows in
time order. For a window ending ``dt`` after the previous one, the gain is
``alpha = (1 - exp(-dt / time_constant_s)) * (0.5 + 0.5 * c)`` where ``c`` is
the window's confidence rescaled from [1/7, 1] to [0, 1]; then
``running = (1 - alpha) * running + alpha * current`` for the probabilities,
valence and arousal. The first window with data sets the state; a window with
no modality present leaves it unchanged. Only past and present windows enter,
so later windows never change an estimate already emitted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._optional import require
from ..errors import ClosedError, ConfigError, ModelNotFoundError
from ..models import sha256_of
from .extract import FACE_FEATURE_DIM, TEXT_FEATURE_DIM, VOICE_FEATURE_DIM
from .types import CLASSES, MODALITIES, NUM_CLASSES, EmotionEstimate

__all__ = [
    "DEFAULT_WEIGHTS_DIR",
    "WEIGHTS_ENV_VAR",
    "WindowInputs",
    "RecognizerSettings",
    "RunningFilter",
    "EmotionRecognizer",
    "load_model",
    "make_estimate",
    "quantize_dynamic",
    "save_model",
    "weights_dir",
]

log = logging.getLogger(__name__)

#: The default weights shipped inside the package.
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Environment variable naming another weights folder.
WEIGHTS_ENV_VAR = "STREAMLINE_FUSION_WEIGHTS"
_FORMAT = 3  # 2: voice items are pooled Whisper encoder states; 3: 1537 text values (all-mpnet-base-v2 layers 6+8), standardised


def weights_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The weights folder: ``override``, else ``$STREAMLINE_FUSION_WEIGHTS``, else the packaged one."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(WEIGHTS_ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_WEIGHTS_DIR


def save_model(net: Any, out_dir: Path, *, train_settings: dict[str, Any] | None = None,
               splits: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None) -> Path:
    """Write ``fusion.pt``, ``fusion.json`` (with the checksum) and ``metrics.json`` into ``out_dir``."""
    torch = require("torch", "fusion")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / "fusion.pt"
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    torch.save(state, weights)
    config = {
        "format": _FORMAT,
        "model": net.cfg.to_dict(),
        "classes": list(CLASSES),
        "modalities": list(MODALITIES),
        "feature_dims": {"face": FACE_FEATURE_DIM, "voice": VOICE_FEATURE_DIM, "text": TEXT_FEATURE_DIM},
        "temperatures": {"subset": [round(float(t), 6) for t in net.temperature], "branch": [round(float(t), 6) for t in net.branch_temperature]},
        "weights_file": weights.name,
        "sha256": sha256_of(weights),
        "size_bytes": weights.stat().st_size,
        "train": train_settings or {},
        "splits": splits or {},
        "licence_note": (
            "Trained on RAVDESS (CC BY-NC-SA 4.0), JAFFE and the Taiwanese facial expression database "
            "(non-commercial / academic research only) and MELD annotations (GPL-3.0): "
            "for non-commercial research use only. See docs/model_card.md."
        ),
    }
    (out_dir / "fusion.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if metrics is not None:
        (out_dir / "metrics.json").write_text(json.dumps(_rounded(metrics), indent=1, sort_keys=True) + "\n")
    return out_dir


def _rounded(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 5)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def load_model(folder: str | os.PathLike[str] | None = None) -> tuple[Any, dict[str, Any]]:
    """Load a :class:`~streamline.fusion.model.FusionNet` (eval mode) and its config, offline.

    Args:
        folder: the weights folder (default: :func:`weights_dir`).

    Raises:
        ModelNotFoundError: the folder, ``fusion.json`` or the weights are missing,
            or the weights' SHA-256 differs from the one in ``fusion.json``.
        ConfigError: ``fusion.json`` is not a config this version understands.
        MissingExtraError: torch is not installed (extra ``fusion``).
    """
    torch = require("torch", "fusion")
    from .model import FusionConfig, FusionNet

    root = weights_dir(folder)
    cfg_path = root / "fusion.json"
    if not cfg_path.exists():
        raise ModelNotFoundError(
            f"fusion weights: {cfg_path} not found (train them with `streamline train`, or set ${WEIGHTS_ENV_VAR})"
        )
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"fusion weights: cannot read {cfg_path}: {exc}") from exc
    if config.get("format") != _FORMAT or list(config.get("classes", [])) != list(CLASSES):
        raise ConfigError(f"fusion weights: {cfg_path} has format {config.get('format')!r} / classes {config.get('classes')!r}; expected format {_FORMAT} and {list(CLASSES)}")
    weights = root / config.get("weights_file", "fusion.pt")
    if not weights.exists():
        raise ModelNotFoundError(f"fusion weights: {weights} not found")
    digest = sha256_of(weights)
    if digest != config.get("sha256"):
        raise ModelNotFoundError(f"fusion weights: {weights} has SHA-256 {digest}, but {cfg_path} expects {config.get('sha256')}")
    net = FusionNet(FusionConfig.from_dict(config["model"]))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()
    return net, config


@dataclass(frozen=True, slots=True, eq=False)
class WindowInputs:
    """One window's features, per modality a sequence on a fixed grid with a validity mask.

    Attributes:
        face: (Tf, 63) float32 face vectors (:func:`streamline.fusion.extract.face_vector`), or None.
        face_mask: (Tf,) bool, True where the face grid point holds a face; None with ``face``.
        voice: (Tv, 769) float32 voice items (one per 0.5 s hop, :mod:`streamline.features.voice_embedding`), or None.
        voice_mask: (Tv,) bool valid voice items; None with ``voice``.
        text: (1537,) float32 text vector of the words in and before the window, or None.
    """

    face: np.ndarray | None = None
    face_mask: np.ndarray | None = None
    voice: np.ndarray | None = None
    voice_mask: np.ndarray | None = None
    text: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name, dim in (("face", FACE_FEATURE_DIM), ("voice", VOICE_FEATURE_DIM)):
            x = getattr(self, name)
            m = getattr(self, name + "_mask")
            if x is None:
                if m is not None:
                    raise ConfigError(f"WindowInputs: {name}_mask given without {name}")
                continue
            if x.ndim != 2 or x.shape[1] != dim:
                raise ConfigError(f"WindowInputs.{name} must have shape (T, {dim}), got {x.shape}")
            if m is None or m.shape != (x.shape[0],):
                raise ConfigError(f"WindowInputs.{name}_mask must have shape ({x.shape[0]},), got {None if m is None else m.shape}")
        if self.text is not None and self.text.shape != (TEXT_FEATURE_DIM,):
            raise ConfigError(f"WindowInputs.text must have shape ({TEXT_FEATURE_DIM},), got {self.text.shape}")

    @property
    def present(self) -> tuple[str, ...]:
        """Modalities with at least one valid point."""
        out = []
        if self.face is not None and self.face_mask is not None and self.face_mask.any():
            out.append("face")
        if self.voice is not None and self.voice_mask is not None and self.voice_mask.any():
            out.append("voice")
        if self.text is not None:
            out.append("text")
        return tuple(out)


def batch_inputs(windows: Sequence[WindowInputs]) -> tuple[np.ndarray, ...]:
    """Stack windows into padded arrays ``(face_x, face_mask, voice_x, voice_mask, text_x, text_mask)``."""
    b = len(windows)
    tf = max([1] + [w.face.shape[0] for w in windows if w.face is not None])
    tv = max([1] + [w.voice.shape[0] for w in windows if w.voice is not None])
    fx = np.zeros((b, tf, FACE_FEATURE_DIM), np.float32)
    fm = np.zeros((b, tf), bool)
    vx = np.zeros((b, tv, VOICE_FEATURE_DIM), np.float32)
    vm = np.zeros((b, tv), bool)
    tx = np.zeros((b, 1, TEXT_FEATURE_DIM), np.float32)
    tm = np.zeros((b, 1), bool)
    for k, w in enumerate(windows):
        if w.face is not None:
            fx[k, : len(w.face)] = w.face
            fm[k, : len(w.face)] = w.face_mask
        if w.voice is not None:
            vx[k, : len(w.voice)] = w.voice
            vm[k, : len(w.voice)] = w.voice_mask
        if w.text is not None:
            tx[k, 0] = w.text
            tm[k, 0] = True
    # an absent modality's numbers are never looked at; zero them so nothing leaks
    fx[~fm] = 0.0
    vx[~vm] = 0.0
    return fx, fm, vx, vm, tx, tm


@dataclass(frozen=True, slots=True)
class RecognizerSettings:
    """Settings of an :class:`EmotionRecognizer`.

    Attributes:
        weights_dir: weights folder (default: ``$STREAMLINE_FUSION_WEIGHTS`` or the packaged weights).
        time_constant_s: time constant of the running estimate's exponential filter, seconds.
        threads: torch CPU threads for inference (None: leave torch's setting).
        quantized: run a dynamically int8-quantized copy of the model's linear layers.
    """

    weights_dir: str | None = None
    time_constant_s: float = 3.0
    threads: int | None = 1
    quantized: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time_constant_s) and self.time_constant_s > 0):
            raise ConfigError(f"RecognizerSettings.time_constant_s must be > 0, got {self.time_constant_s!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"RecognizerSettings.threads must be >= 1 or None, got {self.threads!r}")


class RunningFilter:
    """The causal running estimate (module docstring); one per stream of windows."""

    def __init__(self, time_constant_s: float = 3.0) -> None:
        self.time_constant_ns = time_constant_s * 1e9
        self.reset()

    def reset(self) -> None:
        """Forget the state."""
        self.probs: np.ndarray | None = None
        self.valence = 0.0
        self.arousal = 0.0
        self.last_end_ns: int | None = None

    @property
    def has_data(self) -> bool:
        """Whether a window with data has been folded in since the last reset."""
        return self.probs is not None

    def update(self, end_ns: int, probs: np.ndarray, valence: float, arousal: float, confidence: float, present: bool) -> tuple[np.ndarray, float, float]:
        """Fold one window in (if ``present``) and return the running (probs, valence, arousal)."""
        if present:
            if self.probs is None:
                self.probs = probs.astype(np.float32).copy()
                self.valence, self.arousal = float(valence), float(arousal)
            else:
                dt = max(end_ns - (self.last_end_ns if self.last_end_ns is not None else end_ns), 1_000_000)
                c = min(1.0, max(0.0, (confidence - 1.0 / NUM_CLASSES) / (1.0 - 1.0 / NUM_CLASSES)))
                alpha = (1.0 - math.exp(-dt / self.time_constant_ns)) * (0.5 + 0.5 * c)
                self.probs = ((1.0 - alpha) * self.probs + alpha * probs).astype(np.float32)
                self.probs /= self.probs.sum()
                self.valence = (1.0 - alpha) * self.valence + alpha * float(valence)
                self.arousal = (1.0 - alpha) * self.arousal + alpha * float(arousal)
            self.last_end_ns = end_ns
        if self.probs is None:
            return np.full(NUM_CLASSES, 1.0 / NUM_CLASSES, np.float32), 0.0, 0.0
        return self.probs.copy(), self.valence, self.arousal


class EmotionRecognizer:
    """The fusion model with its running estimate. A context manager; thread-safe.

    Example::

        with EmotionRecognizer() as rec:
            est = rec.estimate(WindowInputs(voice=feats, voice_mask=mask), start_ns=0, end_ns=2_000_000_000)
            print(est.label, est.confidence, est.contributions)

    Args:
        settings: a :class:`RecognizerSettings` (defaults when None).

    Raises:
        ModelNotFoundError, ConfigError, MissingExtraError: see :func:`load_model`.
    """

    def __init__(self, settings: RecognizerSettings | None = None) -> None:
        self.settings = settings if settings is not None else RecognizerSettings()
        self._torch = require("torch", "fusion")
        self.net, self.config = load_model(self.settings.weights_dir)
        if self.settings.quantized:
            self.net = quantize_dynamic(self.net)
        self._lock = threading.Lock()
        self._filter = RunningFilter(self.settings.time_constant_s)
        self._closed = False

    @property
    def window_s(self) -> float:
        """The window length the model was trained for, seconds."""
        return float(self.config["model"]["window_s"])

    def __enter__(self) -> EmotionRecognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the model; later calls raise :class:`ClosedError`."""
        with self._lock:
            self._closed = True

    def reset(self) -> None:
        """Start a new running estimate (e.g. a new session)."""
        with self._lock:
            self._filter.reset()

    def predict(self, windows: Sequence[WindowInputs]) -> dict[str, np.ndarray]:
        """Stateless batch prediction.

        Returns:
            ``probs`` (B, 7), ``valence`` (B,), ``arousal`` (B,), ``confidence`` (B,),
            ``contributions`` (B, 3) over :data:`MODALITIES`, ``present`` (B, 3) bool.
            A window without any modality gets uniform probabilities, valence and
            arousal 0 and zero contributions.
        """
        torch = self._torch
        if not windows:
            z = np.zeros((0,), np.float32)
            return {"probs": np.zeros((0, NUM_CLASSES), np.float32), "valence": z, "arousal": z, "confidence": z,
                    "contributions": np.zeros((0, 3), np.float32), "present": np.zeros((0, 3), bool)}
        arrays = batch_inputs(windows)
        with self._lock:
            if self._closed:
                raise ClosedError("EmotionRecognizer used after close()")
            old = torch.get_num_threads()
            if self.settings.threads is not None:
                torch.set_num_threads(self.settings.threads)
            try:
                with torch.no_grad():
                    _, probs, va, contrib, present = self.net(*(torch.from_numpy(a) for a in arrays))
            finally:
                if self.settings.threads is not None:
                    torch.set_num_threads(old)
        probs = probs.numpy().astype(np.float32)
        present_np = present.numpy()
        none = ~present_np.any(1)
        probs[none] = 1.0 / NUM_CLASSES
        va_np = va.numpy().astype(np.float32)
        va_np[none] = 0.0
        contrib_np = contrib.numpy().astype(np.float32)
        contrib_np[none] = 0.0
        return {
            "probs": probs,
            "valence": va_np[:, 0],
            "arousal": va_np[:, 1],
            "confidence": probs.max(1),
            "contributions": contrib_np,
            "present": present_np,
        }

    def estimate(self, window: WindowInputs, *, start_ns: int, end_ns: int) -> EmotionEstimate:
        """The estimate for one window, updating the running estimate (call in time order)."""
        if end_ns < start_ns:
            raise ConfigError(f"EmotionRecognizer.estimate: end_ns {end_ns} < start_ns {start_ns}")
        out = self.predict([window])
        return self._make(out, 0, start_ns, end_ns)

    def estimate_many(self, windows: Sequence[WindowInputs], spans_ns: Sequence[tuple[int, int]]) -> list[EmotionEstimate]:
        """:meth:`estimate` for windows in time order, with one batched model call."""
        if len(windows) != len(spans_ns):
            raise ConfigError("estimate_many: windows and spans_ns differ in length")
        out = self.predict(windows)
        return [self._make(out, k, s, e) for k, (s, e) in enumerate(spans_ns)]

    def _make(self, out: dict[str, np.ndarray], k: int, start_ns: int, end_ns: int) -> EmotionEstimate:
        with self._lock:
            return make_estimate(out, k, start_ns, end_ns, self._filter)


def make_estimate(out: dict[str, np.ndarray], k: int, start_ns: int, end_ns: int, running: RunningFilter) -> EmotionEstimate:
    """Build the :class:`EmotionEstimate` of row ``k`` of :meth:`EmotionRecognizer.predict`'s
    output, folding it into ``running`` (windows must come in time order)."""
    present = out["present"][k]
    probs = out["probs"][k].copy()
    probs.flags.writeable = False
    rp, rv, ra = running.update(int(end_ns), probs, float(out["valence"][k]), float(out["arousal"][k]),
                                float(out["confidence"][k]), bool(present.any()))
    rp.flags.writeable = False
    return EmotionEstimate(
        start_ns=int(start_ns),
        end_ns=int(end_ns),
        probs=probs,
        valence=float(out["valence"][k]),
        arousal=float(out["arousal"][k]),
        confidence=float(out["confidence"][k]),
        modalities=tuple(m for m, on in zip(MODALITIES, present) if on),
        contributions={m: float(out["contributions"][k][i]) for i, m in enumerate(MODALITIES) if present[i]},
        running_probs=rp,
        running_valence=float(rv),
        running_arousal=float(ra),
        running_has_data=running.has_data,
    )


def quantize_dynamic(net: Any) -> Any:
    """A copy of ``net`` with its ``nn.Linear`` layers dynamically quantized to int8
    (``torch.ao.quantization.quantize_dynamic``; convolutions and attention stay float)."""
    import copy

    torch = require("torch", "fusion")
    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(net), {torch.nn.Linear}, dtype=torch.qint8)
