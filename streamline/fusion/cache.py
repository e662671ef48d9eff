"""On-disk feature caches for training (outside the repository), built with the inference path.

Each corpus is decoded and run through :mod:`streamline.fusion.extract` once,
with a few seeded augmented variants per item, and stored as one ``.npz``:

* ``voice_<name>.npz``: RAVDESS-style audio. Variants (seeded by file index):
  0 the original; 1 time shift (0-159 samples dropped at the start) and gain
  (+-6 dB); 2 white noise at 15-30 dB SNR and shift; 3 speed perturbation
  (x0.9 or x1.1, linear resampling: tempo and pitch together, Ko et al. 2015)
  and shift; 4 pink-ish noise at 10-20 dB SNR, gain and shift. The voice items
  of each variant come from a :class:`~streamline.features.VoiceEmbedder` over
  the augmented 16 kHz samples (one 769-value item per 0.5 s hop).
  Arrays: ``feats`` (total items, 769) float32, ``speech`` (total items,) float32
  (each item's ``speech_ratio``), ``offsets`` (items, variants + 1) int64 into
  ``feats``... (see :func:`load_voice_cache`).
* ``face_<name>.npz``: still images. Variants: 0 original; 1 mirrored; 2 crop
  (80-95 % of each side, random offset) with brightness/contrast change;
  3 mirrored + crop + brightness; 4 gamma and a small crop. Arrays: ``feats``
  (items, variants, 63) float32, ``present`` (items, variants) bool.
* ``text_<name>.npz``: sentences. Variants: 0 the text; 1 lower case without
  punctuation (like a plain ASR transcript); 2 random word dropout (15 %) with
  one adjacent-word swap. Arrays: ``feats`` (items, variants, 1537) float32.

Every file also stores ``paths``/``texts``, ``labels``, ``speakers``, ``groups``
and ``intensity`` so the caches are self-describing, and a ``meta`` JSON string
with the extraction settings. A cache is rebuilt only when missing or when its
``meta`` differs from the requested one.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .datasets import LabeledItem
from .extract import FACE_FEATURE_DIM, TEXT_FEATURE_DIM, voice_has_speech

__all__ = [
    "CACHE_VERSION",
    "VoiceCache",
    "FaceCache",
    "TextCache",
    "build_voice_cache",
    "build_face_cache",
    "build_text_cache",
    "load_voice_cache",
    "load_face_cache",
    "load_text_cache",
    "augment_audio",
    "augment_image",
    "augment_text",
]

log = logging.getLogger(__name__)

#: Per cache kind, bumped whenever its cached numbers would change (voice 2: Whisper embeddings;
#: text 2: all-mpnet-base-v2 layers 6+8).
CACHE_VERSION = {"voice": 4, "face": 1, "text": 2}
VOICE_VARIANTS = 5
FACE_VARIANTS = 5
TEXT_VARIANTS = 3


def _meta(kind: str, items: Sequence[LabeledItem], variants: int, seed: int) -> str:
    return json.dumps(
        {"version": CACHE_VERSION[kind], "kind": kind, "n": len(items), "variants": variants, "seed": seed,
         "first": items[0].path or items[0].transcript if items else None},
        sort_keys=True,
    )


def _fresh(path: Path, meta: str) -> bool:
    if not path.exists():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["meta"]) == meta
    except (OSError, KeyError, ValueError):
        return False


def _common(items: Sequence[LabeledItem]) -> dict[str, np.ndarray]:
    return {
        "labels": np.array([it.label for it in items]),
        "speakers": np.array([it.speaker for it in items]),
        "groups": np.array([it.group for it in items]),
        "intensity": np.array([it.intensity for it in items]),
        "paths": np.array([it.path or "" for it in items]),
        "texts": np.array([it.transcript or "" for it in items]),
    }


# ------------------------------------------------------------------ augmentation


def augment_audio(x: np.ndarray, variant: int, rng: np.random.Generator) -> np.ndarray:
    """One augmented copy of 16 kHz mono float32 audio (see the module docstring)."""
    if variant == 0:
        return x
    y = x[int(rng.integers(0, 160)):]
    if variant == 3:
        rate = float(rng.choice([0.9, 1.1]))
        n_out = int(round(len(y) / rate))
        y = np.interp(np.arange(n_out) * rate, np.arange(len(y)), y).astype(np.float32)
    if variant in (1, 4):
        y = y * np.float32(10 ** (rng.uniform(-6, 6) / 20))
    if variant in (2, 4):
        power = float(np.mean(y.astype(np.float64) ** 2)) + 1e-12
        snr_db = rng.uniform(15, 30) if variant == 2 else rng.uniform(10, 20)
        noise = rng.standard_normal(len(y))
        if variant == 4:  # pink-ish: integrate white noise with a leak
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(64) / 64, mode="same")
        noise *= np.sqrt(power / 10 ** (snr_db / 10) / (np.mean(noise**2) + 1e-12))
        y = y + noise.astype(np.float32)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def augment_image(img: np.ndarray, variant: int, rng: np.random.Generator) -> np.ndarray:
    """One augmented copy of an (H, W, 3) uint8 RGB image (see the module docstring)."""
    if variant == 0:
        return img
    out = img
    if variant in (1, 3):
        out = out[:, ::-1]
    if variant in (2, 3, 4):
        h, w = out.shape[:2]
        lo = 0.80 if variant != 4 else 0.92
        ch, cw = int(h * rng.uniform(lo, 0.97)), int(w * rng.uniform(lo, 0.97))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out = out[y0 : y0 + ch, x0 : x0 + cw]
    f = out.astype(np.float32)
    if variant in (2, 3):
        f = (f - 128.0) * rng.uniform(0.7, 1.3) + 128.0 + rng.uniform(-40, 40)
    if variant == 4:
        f = 255.0 * (np.clip(f, 0, 255) / 255.0) ** rng.uniform(0.6, 1.6)
    return np.ascontiguousarray(np.clip(f, 0, 255).astype(np.uint8))


_PUNCT = re.compile(r"[^\w\s']")


def augment_text(text: str, variant: int, rng: np.random.Generator) -> str:
    """One augmented copy of a sentence (see the module docstring)."""
    if variant == 0:
        return text
    if variant == 1:
        return re.sub(r"\s+", " ", _PUNCT.sub(" ", text.lower())).strip() or text
    words = text.split()
    if len(words) > 2:
        keep = [w for w in words if rng.random() > 0.15] or words[:1]
        if len(keep) > 2:
            i = int(rng.integers(0, len(keep) - 1))
            keep[i], keep[i + 1] = keep[i + 1], keep[i]
        words = keep
    return " ".join(words)


# ------------------------------------------------------------------ builders


def build_voice_cache(items: Sequence[LabeledItem], path: Path, *, seed: int = 0, variants: int = VOICE_VARIANTS,
                      progress: Callable[[str], None] | None = None) -> Path:
    """Decode each item's audio (``read_audio``), augment, run the :class:`~streamline.features.VoiceEmbedder`; save ``path``."""
    from ..features.voice_embedding import VoiceEmbedder, voice_embeddings_array
    from .extract import audio_file_features

    meta = _meta("voice", items, variants, seed)
    if _fresh(path, meta):
        return path
    feats: list[np.ndarray] = []
    speech: list[np.ndarray] = []
    offsets = np.zeros((len(items), variants + 1), dtype=np.int64)
    pos = 0
    t0 = time.perf_counter()
    with VoiceEmbedder() as embedder:
        for i, it in enumerate(items):
            assert it.path is not None
            samples, _, f0, s0 = audio_file_features(it.path, embedder=embedder)
            rng = np.random.default_rng([seed, i])
            for v in range(variants):
                f, sr = (f0, s0) if v == 0 else voice_embeddings_array(augment_audio(samples, v, rng), embedder=embedder)[1:]
                offsets[i, v] = pos
                feats.append(f.astype(np.float32))
                speech.append(sr.astype(np.float32))
                pos += f.shape[0]
            offsets[i, variants] = pos
            if progress and (i + 1) % 100 == 0:
                progress(f"voice cache {path.name}: {i + 1}/{len(items)} ({time.perf_counter() - t0:.0f} s)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, feats=np.concatenate(feats), speech=np.concatenate(speech), offsets=offsets, meta=np.array(meta),
             **_common(items))
    tmp.replace(path)
    return path


def build_face_cache(items: Sequence[LabeledItem], path: Path, *, seed: int = 0, variants: int = FACE_VARIANTS,
                     progress: Callable[[str], None] | None = None) -> Path:
    """Decode each image (``open_media``), augment, run the :class:`FaceAnalyzer`; save ``path``."""
    from ..face import FaceAnalyzer, FaceSettings
    from .extract import image_face_features, image_file_rgb

    meta = _meta("face", items, variants, seed)
    if _fresh(path, meta):
        return path
    feats = np.zeros((len(items), variants, FACE_FEATURE_DIM), dtype=np.float32)
    present = np.zeros((len(items), variants), dtype=bool)
    t0 = time.perf_counter()
    with FaceAnalyzer(FaceSettings(fps=None, expression=True)) as analyzer:
        for i, it in enumerate(items):
            assert it.path is not None
            img = image_file_rgb(it.path)
            rng = np.random.default_rng([seed, i])
            imgs = [augment_image(img, v, rng) for v in range(variants)]
            vecs = image_face_features(analyzer, imgs, start_ns=i * variants * 1_000_000_000)
            for v, vec in enumerate(vecs):
                if vec is not None:
                    feats[i, v] = vec
                    present[i, v] = True
            if progress and (i + 1) % 100 == 0:
                progress(f"face cache {path.name}: {i + 1}/{len(items)} ({time.perf_counter() - t0:.0f} s)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, feats=feats, present=present, meta=np.array(meta), **_common(items))
    tmp.replace(path)
    return path


def build_text_cache(items: Sequence[LabeledItem], path: Path, *, seed: int = 0, variants: int = TEXT_VARIANTS,
                     progress: Callable[[str], None] | None = None) -> Path:
    """Embed each item's transcript (and augmented copies) with ``embed_texts`` + VADER; save ``path``.

    The encoder uses all of torch's threads: in a live pipeline one sentence at a time
    runs on one thread (``TextSettings.max_threads``), which gives the same numbers.
    """
    from ..features import TextEncoder, TextSettings
    from .extract import texts_features

    meta = _meta("text", items, variants, seed)
    if _fresh(path, meta):
        return path
    feats = np.zeros((len(items), variants, TEXT_FEATURE_DIM), dtype=np.float32)
    t0 = time.perf_counter()
    with TextEncoder(TextSettings(max_threads=None, cache_size=1)) as encoder:
        for v in range(variants):
            texts = [augment_text(it.transcript or "", v, np.random.default_rng([seed, i, v])) for i, it in enumerate(items)]
            # Similar lengths in one batch: less padding to run through the model.
            order = sorted(range(len(texts)), key=lambda k: len(texts[k]))
            for start in range(0, len(order), 512):
                rows = order[start : start + 512]
                feats[rows, v] = texts_features([texts[k] for k in rows], encoder=encoder)
                if progress:
                    progress(f"text cache {path.name}: variant {v} {min(start + 512, len(order))}/{len(order)} "
                             f"({time.perf_counter() - t0:.0f} s)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, feats=feats, meta=np.array(meta), **_common(items))
    tmp.replace(path)
    return path


# ------------------------------------------------------------------ loaders


@dataclass(slots=True)
class VoiceCache:
    """A loaded voice cache: item ``i`` variant ``v`` is ``feats[offsets[i, v]:offsets[i, v + 1]]``,
    with the items' speech ratios in ``speech`` at the same rows."""

    feats: np.ndarray
    speech: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    intensity: np.ndarray
    paths: np.ndarray

    def get(self, i: int, v: int = 0) -> np.ndarray:
        """(m, 769) float32 voice items (0.5 s hops) of item ``i``, variant ``v``."""
        return self.feats[self.offsets[i, v] : self.offsets[i, v + 1]].astype(np.float32)

    def has_speech(self, i: int, v: int = 0) -> np.ndarray:
        """(m,) bool: which of :meth:`get`'s items hold speech (:func:`~streamline.fusion.extract.voice_has_speech`)."""
        return voice_has_speech(self.speech[self.offsets[i, v] : self.offsets[i, v + 1]])

    @property
    def variants(self) -> int:
        return self.offsets.shape[1] - 1


@dataclass(slots=True)
class FaceCache:
    """A loaded face cache: ``feats`` (items, variants, 63), ``present`` (items, variants)."""

    feats: np.ndarray
    present: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    paths: np.ndarray


@dataclass(slots=True)
class TextCache:
    """A loaded text cache: ``feats`` (items, variants, 1537)."""

    feats: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    groups: np.ndarray
    texts: np.ndarray


def _load(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_voice_cache(path: Path) -> VoiceCache:
    """Load a cache written by :func:`build_voice_cache`."""
    z = _load(path)
    return VoiceCache(z["feats"], z["speech"], z["offsets"], z["labels"], z["speakers"], z["intensity"], z["paths"])


def load_face_cache(path: Path) -> FaceCache:
    """Load a cache written by :func:`build_face_cache`."""
    z = _load(path)
    return FaceCache(z["feats"], z["present"], z["labels"], z["speakers"], z["paths"])


def load_text_cache(path: Path) -> TextCache:
    """Load a cache written by :func:`build_text_cache`."""
    z = _load(path)
    return TextCache(z["feats"], z["labels"], z["speakers"], z["groups"], z["texts"])

