"""Settings of the end-to-end pipeline (values; :class:`~streamline.pipeline.Pipeline` is the running object).

Every stage keeps its own settings object (:class:`~streamline.face.FaceSettings`,
:class:`~streamline.features.VoiceSettings`, :class:`~streamline.speech.AsrSettings`,
:class:`~streamline.features.TextSettings`, :class:`~streamline.fusion.RecognizerSettings`);
:class:`PipelineSettings` gathers them with the window, the modalities and the
hand-off bounds, and :class:`Stages` replaces whole stages with user operators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ConfigError
from ..face.analyzer import FaceSettings
from ..features.text import TextSettings
from ..features.voice_embedding import VoiceEmbeddingSettings
from ..timeline import is_whole_multiple
from ..fusion.recognizer import RecognizerSettings
from ..speech.asr import AsrSettings

__all__ = ["MODALITY_NAMES", "PipelineSettings", "Stages", "parse_modalities"]

#: The modalities the pipeline can run, in the fusion model's order.
MODALITY_NAMES: tuple[str, ...] = ("face", "voice", "text")


def parse_modalities(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"face,voice"`` (or a sequence) -> ``("face", "voice")`` in canonical order.

    Raises:
        ConfigError: an unknown or empty selection.
    """
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"modalities must be a comma-separated string or a sequence of names, got {value!r}")
    names = [v.strip().lower() for v in items if v.strip()]
    unknown = sorted(set(names) - set(MODALITY_NAMES))
    if unknown:
        raise ConfigError(f"unknown modality {', '.join(unknown)}: choose from {', '.join(MODALITY_NAMES)}")
    if not names:
        raise ConfigError(f"no modality selected: choose one or more of {', '.join(MODALITY_NAMES)}")
    return tuple(m for m in MODALITY_NAMES if m in names)


def _default_face() -> FaceSettings:
    # 15 analysed frames per second and the facex expression at 5 per second: what the
    # fusion model's face features were extracted with (streamline.fusion.extract).
    return FaceSettings(fps=15.0, expression=True)


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """How the pipeline is composed (a frozen value: hashable, printable, checked when made).

    Attributes:
        length_s: synchronizer window length, seconds (2.0: what the fusion model
            was evaluated on).
        hop_s: distance between window starts, seconds: one estimate per hop.
        modalities: the modalities to run, a subset of :data:`MODALITY_NAMES`.
            ``text`` runs speech recognition (and produces the words).
        face: face analysis settings (15 fps, facex expression on).
        voice: voice embedding settings (hop, encoder context, the Whisper model it runs).
        asr: speech recognition settings (VAD, Whisper, commit policy).
        text: text feature settings.
        fusion: fusion model settings.
        live_face_budget_s: live and ``--realtime`` runs: a window waits at most this
            long after its end for the face stream (then goes without the rest of it).
        live_voice_budget_s: the same for the voice embeddings (one per 0.5 s hop,
            ready a few ms after the hop ends).
        live_text_budget_s: the same for the committed words. Words are committed
            1-2 s after they are spoken (audio-time lag p50 1.25 s, p95 1.94 s on the
            talking-head benchmark), so a window that should contain them waits that
            long; 2.0 s lets about 95% of words reach their windows; 0 gives the
            fastest estimates, whose text then lags.
        poll_interval_s: live runs: how often lateness budgets are checked, seconds.
        file_queue: bound (items) of each stage's hand-off on files (``BLOCK``: the
            file source waits; nothing is lost).
        events_queue: bound of the queue between the stages and the delivery thread.
    """

    length_s: float = 2.0
    hop_s: float = 0.5
    modalities: tuple[str, ...] = MODALITY_NAMES
    face: FaceSettings = field(default_factory=_default_face)
    voice: VoiceEmbeddingSettings = field(default_factory=VoiceEmbeddingSettings)
    asr: AsrSettings = field(default_factory=AsrSettings)
    text: TextSettings = field(default_factory=TextSettings)
    fusion: RecognizerSettings = field(default_factory=RecognizerSettings)
    live_face_budget_s: float = 0.25
    live_voice_budget_s: float = 0.25
    live_text_budget_s: float = 2.0
    poll_interval_s: float = 0.01
    file_queue: int = 64
    events_queue: int = 4096

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", parse_modalities(self.modalities))
        for name in ("length_s", "hop_s", "poll_interval_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"PipelineSettings.{name} must be a positive number of seconds, got {v!r}")
        if self.hop_s > self.length_s:
            raise ConfigError(f"PipelineSettings: hop_s ({self.hop_s}) must not exceed length_s ({self.length_s})")
        for name in ("live_face_budget_s", "live_voice_budget_s", "live_text_budget_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"PipelineSettings.{name} must be >= 0 seconds, got {v!r}")
        for name in ("file_queue", "events_queue"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"PipelineSettings.{name} must be an int >= 1, got {v!r}")
        checks = (("face", FaceSettings), ("voice", VoiceEmbeddingSettings), ("asr", AsrSettings),
                  ("text", TextSettings), ("fusion", RecognizerSettings))
        for name, cls in checks:
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"PipelineSettings.{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        # windows must hold whole face grid points (15 Hz) and whole voice hops
        if "face" in self.modalities and not is_whole_multiple(self.length_s, 1 / 15):
            raise ConfigError(f"PipelineSettings.length_s={self.length_s} does not suit the face modality "
                              "(its grid is 15 Hz): use a multiple of 1/15 s, such as 1, 2 or 3 s")
        if "voice" in self.modalities:
            hop = self.voice.hop_s
            for name in ("length_s", "hop_s"):
                if not is_whole_multiple(getattr(self, name), hop):
                    raise ConfigError(
                        f"PipelineSettings.{name}={getattr(self, name)} does not suit the voice modality: windows "
                        f"are made of whole voice hops, so it must be a multiple of the {hop} s voice hop "
                        "(PipelineSettings.voice.hop_s)")


Operator = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Stages:
    """User replacements for whole stages (each None: the default stage).

    Each is a reactivex operator (``Observable -> Observable``) used in place of the
    pipeline's own; it runs on the thread that delivers its input unless it moves
    itself (``streamline.flow.Handoff``).

    Attributes:
        face: ``Observable[VideoFrame] -> Observable[item with pts_ns]``: the items
            are the synchronizer's ``face`` stream; for the default fusion model they
            must be :class:`~streamline.face.FaceObservation`.
        voice: ``Observable[AudioChunk] -> Observable[item with pts_ns]`` (``voice`` stream;
            :class:`~streamline.features.VoiceEmbedding` for the default fusion).
        speech: ``Observable[AudioChunk] -> Observable[Word | SpeechSegment]``: replaces
            speech recognition; committed words feed the text features.
        fusion: ``Observable[AlignedWindow] -> Observable[EmotionEstimate]``.
    """

    face: Operator | None = None
    voice: Operator | None = None
    speech: Operator | None = None
    fusion: Operator | None = None
