"""``streamline evaluate``: the full feature path and the fusion model over a labelled manifest.

For each manifest row (``path,label[,transcript]``):

1. the features are computed from the file by the inference operators
   (:mod:`streamline.fusion.extract`): voice embeddings (one per 0.5 s hop) from its audio, face vectors
   from its video frames at 15 analysed frames per second (an image file is one
   frame), and text features from the ``transcript`` column when it is given
   (no speech recognition is run here: a transcript column is the text input);
2. the file's timeline is cut into the model's windows (``window_s``, default
   the model's 2 s, every ``hop_s`` = 0.5 s; a clip shorter than a window is one
   window); each window takes the voice items and analysed face frames whose
   times fall inside it, and the transcript's features;
3. the model gives one estimate per window; the file's prediction is the mean
   of the window probabilities over windows with at least one modality.

Steps 2-3 run for every non-empty subset of the requested modalities that the
file has, so one pass reports each subset; ``overall`` uses all the requested
modalities the file has. Metrics: :func:`streamline.fusion.metrics.classification_report`.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError, StreamlineError
from ..features.voice_embedding import VoiceEmbeddingSettings
from ..timeline import is_whole_multiple
from .datasets import LabeledItem, load_manifest
from .metrics import classification_report, format_report
from .recognizer import EmotionRecognizer, RecognizerSettings, WindowInputs
from .train import clip_window_starts
from .types import CLASSES, MODALITIES

__all__ = ["FileFeatures", "file_features", "file_windows", "evaluate_items", "evaluate_manifest", "format_evaluation"]

log = logging.getLogger(__name__)

_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_CLS = {c: i for i, c in enumerate(CLASSES)}
_VOICE_HOP_S = VoiceEmbeddingSettings().hop_s  # what the files' voice items are made with


@dataclass(slots=True)
class FileFeatures:
    """Every modality's features of one file (None where absent or not requested).

    Attributes:
        voice_times_ns, voice, voice_speech: (m,) int64, (m, 769) float32 and (m,) bool
            voice items (0.5 s hops); ``voice_speech`` is True where the hop holds speech
            (:func:`~streamline.fusion.extract.voice_has_speech`).
        face_times_ns, face, face_present: (k,) int64, (k, 63) float32, (k,) bool.
        text: (1537,) float32 transcript features.
        duration_ns: the timeline span covered by the features.
    """

    voice_times_ns: np.ndarray | None = None
    voice: np.ndarray | None = None
    voice_speech: np.ndarray | None = None
    face_times_ns: np.ndarray | None = None
    face: np.ndarray | None = None
    face_present: np.ndarray | None = None
    text: np.ndarray | None = None
    duration_ns: int = 0

    @property
    def available(self) -> tuple[str, ...]:
        """Modalities with data."""
        out = []
        if self.face is not None and self.face_present is not None and self.face_present.any():
            out.append("face")
        if self.voice is not None and self.voice_speech is not None and self.voice_speech.any():
            out.append("voice")
        if self.text is not None:
            out.append("text")
        return tuple(out)


def file_features(item: LabeledItem, modalities: Sequence[str] = MODALITIES, *, face_fps: float = 15.0,
                  embedder: Any = None) -> FileFeatures:
    """Run the inference feature path over one file.

    ``embedder``: a :class:`~streamline.features.VoiceEmbedder` to reuse (None: one is loaded for the file).

    Raises:
        MediaNotFoundError, CorruptMediaError, NoMediaStreamsError, MediaError: from decoding.
    """
    from ..sources import probe
    from .extract import audio_file_features, image_file_rgb, texts_features, video_file_faces, voice_has_speech

    out = FileFeatures()
    ends: list[int] = []
    path = item.path
    if path is not None and ("voice" in modalities or "face" in modalities):
        is_image = Path(path).suffix.lower() in _IMAGE_EXT
        info = probe(path)
        kinds = {s.kind for s in info.streams} if not is_image else {"video"}
        if "voice" in modalities and "audio" in kinds:
            _, t, f, speech = audio_file_features(path, embedder=embedder)
            out.voice_times_ns, out.voice, out.voice_speech = t, f, voice_has_speech(speech)
            if len(t):
                ends.append(int(t[-1]) + int(_VOICE_HOP_S * 1e9))  # the last hop's end on the hop grid
        if "face" in modalities and "video" in kinds:
            if is_image:
                from ..face import FaceAnalyzer, FaceSettings
                from .extract import image_face_features

                with FaceAnalyzer(FaceSettings(fps=None, expression=True)) as analyzer:
                    vec = image_face_features(analyzer, [image_file_rgb(path)])[0]
                out.face_times_ns = np.zeros(1, np.int64)
                out.face = (vec if vec is not None else np.zeros(63, np.float32))[None]
                out.face_present = np.array([vec is not None])
            else:
                track = video_file_faces(path, fps=face_fps, expression=True)
                out.face_times_ns, out.face, out.face_present = track.times_ns, track.feats, track.present
                if len(track.times_ns):
                    ends.append(int(track.times_ns[-1]) + int(1e9 / face_fps))
    if "text" in modalities and item.transcript:
        out.text = texts_features([item.transcript])[0]
    out.duration_ns = max(ends) if ends else 0
    return out


def file_windows(ff: FileFeatures, modalities: Sequence[str], *, window_s: float, hop_s: float) -> tuple[list[WindowInputs], list[tuple[int, int]]]:
    """Cut a file's features into windows holding only ``modalities``.

    Returns:
        ``(windows, spans_ns)``.
    """
    win_ns = int(round(window_s * 1e9))
    hop_ns = int(round(hop_s * 1e9))
    dur = max(ff.duration_ns, 1)
    # same rule as training's clip windows, in 10 ms units
    starts = [s * 10_000_000 for s in clip_window_starts(-(-dur // 10_000_000), win_ns // 10_000_000, max(1, hop_ns // 10_000_000))]
    windows, spans = [], []
    for s in starts:
        e = s + win_ns
        kw: dict[str, Any] = {}
        if "voice" in modalities and ff.voice is not None and ff.voice_times_ns is not None and ff.voice_speech is not None:
            sel = (ff.voice_times_ns >= s) & (ff.voice_times_ns < e)
            if sel.any():
                kw["voice"] = ff.voice[sel]
                kw["voice_mask"] = ff.voice_speech[sel].copy()
        if "face" in modalities and ff.face is not None and ff.face_times_ns is not None and ff.face_present is not None:
            sel = (ff.face_times_ns >= s) & (ff.face_times_ns < e)
            if ff.duration_ns == 0 or len(ff.face_times_ns) == 1:
                sel = np.ones(len(ff.face_times_ns), bool)  # a still image belongs to its one window
            if sel.any():
                kw["face"] = ff.face[sel]
                kw["face_mask"] = ff.face_present[sel].copy()
        if "text" in modalities and ff.text is not None:
            kw["text"] = ff.text
        windows.append(WindowInputs(**kw))
        spans.append((s, min(e, max(dur, e))))
    return windows, spans


def _subset_name(mods: Sequence[str]) -> str:
    return "+".join(m for m in MODALITIES if m in mods)


def evaluate_items(
    items: Sequence[LabeledItem],
    *,
    modalities: Sequence[str] = MODALITIES,
    weights_dir: str | None = None,
    hop_s: float = 0.5,
    window_s: float | None = None,
    progress: Callable[[int, int, LabeledItem], None] | None = None,
    recognizer: EmotionRecognizer | None = None,
) -> dict[str, Any]:
    """Evaluate the fusion model on labelled files (see the module docstring).

    Returns:
        The overall :func:`classification_report` keys, plus ``modalities``
        (requested), ``subsets`` (subset name -> report, over the files that have
        every modality of the subset), ``items`` (per file: path, label, pred,
        probs, modalities) and ``errors`` (files that could not be read, or that hold
        none of the requested modalities; they are left out of the metrics).

    Raises:
        ConfigError: an unknown modality, or no file could be evaluated.
    """
    mods = tuple(m for m in MODALITIES if m in modalities)
    unknown = set(modalities) - set(MODALITIES)
    if unknown or not mods:
        raise ConfigError(f"evaluate: modalities must be among {', '.join(MODALITIES)}, got {', '.join(modalities) or 'none'}")
    own = recognizer is None
    rec = recognizer or EmotionRecognizer(RecognizerSettings(weights_dir=weights_dir))
    win = window_s if window_s is not None else rec.window_s
    per_subset: dict[str, tuple[list[int], list[np.ndarray]]] = {}
    overall_y: list[int] = []
    overall_p: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    embedder = None
    try:
        for name, v in (("hop_s", hop_s), ("window_s", win)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"evaluate: {name}={v} must be a positive number of seconds")
            if "voice" in mods and not is_whole_multiple(v, _VOICE_HOP_S):  # whole voice hops, as in the pipeline
                raise ConfigError(f"evaluate: {name}={v} must be a multiple of the {_VOICE_HOP_S} s voice hop "
                                  "when voice is evaluated")
        if "voice" in mods:
            from ..features.voice_embedding import VoiceEmbedder

            embedder = VoiceEmbedder()
        for k, item in enumerate(items):
            if progress:
                progress(k, len(items), item)
            try:
                ff = file_features(item, mods, embedder=embedder)
            except StreamlineError as exc:
                msg = str(exc).removeprefix(f"{item.path}: ")  # the path is said once, beside the error
                log.warning("evaluate: %s: %s", item.path, msg)
                errors.append({"path": str(item.path), "error": msg})
                continue
            have = ff.available
            if not have:
                msg = f"none of the requested modalities ({', '.join(mods)}) is in this file"
                if ff.voice is not None and len(ff.voice):
                    msg += " (the VAD found no speech in its audio)"
                elif ff.voice is not None:  # it has audio, too short for one voice item
                    msg += " (its audio is shorter than the 0.1 s a voice item needs)"
                log.warning("evaluate: %s: %s", item.path, msg)
                errors.append({"path": str(item.path), "error": msg})
                continue
            y = _CLS[item.label]
            best: np.ndarray | None = None
            for r in range(len(have), 0, -1):
                for combo in itertools.combinations(have, r):
                    windows, spans = file_windows(ff, combo, window_s=win, hop_s=hop_s)
                    out = rec.predict(windows)
                    ok = out["present"].any(1)
                    p = out["probs"][ok].mean(0) if ok.any() else np.full(len(CLASSES), 1 / len(CLASSES), np.float32)
                    ys, ps = per_subset.setdefault(_subset_name(combo), ([], []))
                    ys.append(y)
                    ps.append(p)
                    if best is None:
                        best = p
            assert best is not None
            overall_y.append(y)
            overall_p.append(best)
            rows.append({
                "path": str(item.path),
                "label": item.label,
                "pred": CLASSES[int(np.argmax(best))],
                "probs": {c: round(float(v), 4) for c, v in zip(CLASSES, best)},
                "modalities": list(have),
            })
    finally:
        if embedder is not None:
            embedder.close()
        if own:
            rec.close()
    if not overall_y:
        raise ConfigError(f"evaluate: none of the {len(items)} files could be evaluated ({len(errors)} errors)")
    report = classification_report(np.array(overall_y), np.stack(overall_p))
    report["modalities"] = list(mods)
    order = sorted(per_subset, key=lambda n: (len(n.split("+")), [MODALITIES.index(m) for m in n.split("+")]))
    report["subsets"] = {n: classification_report(np.array(per_subset[n][0]), np.stack(per_subset[n][1])) for n in order}
    report["items"] = rows
    report["errors"] = errors
    report["window_s"] = win
    report["hop_s"] = hop_s
    return report


def evaluate_manifest(manifest: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any]:
    """:func:`evaluate_items` over a ``path,label[,transcript]`` CSV (:func:`load_manifest`)."""
    report = evaluate_items(load_manifest(manifest), **kwargs)
    report["manifest"] = str(manifest)
    return report


def format_evaluation(report: dict[str, Any]) -> str:
    """The terminal table: overall, then a line per subset, then the overall per-class table."""
    lines = [f"{'subset':<18} {'n':>5} {'acc':>6} {'macroF1':>8} {'wF1':>6} {'AUC':>6} {'ECE':>6}"]
    def row(name: str, r: dict[str, Any]) -> str:
        auc = "n/a" if r["roc_auc"] is None else f"{r['roc_auc']:.3f}"
        return f"{name:<18} {r['n']:>5} {r['accuracy']:>6.3f} {r['macro_f1']:>8.3f} {r['weighted_f1']:>6.3f} {auc:>6} {r['ece']:>6.3f}"
    lines.append(row("overall", report))
    for name, r in report.get("subsets", {}).items():
        lines.append(row(name, r))
    lines.append("")
    lines.append(format_report(report, title="overall, per class:"))
    if report.get("errors"):
        lines.append(f"\n{len(report['errors'])} file(s) could not be evaluated (unreadable, or none of the requested modalities in them):")
        lines.extend(f"  {e['path']}: {e['error']}" for e in report["errors"])
    return "\n".join(lines)
