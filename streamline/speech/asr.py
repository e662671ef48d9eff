"""Streaming speech recognition: VAD-gated Whisper with LocalAgreement-2.

How it works (per audio stream):

1. The audio goes through the voice activity detector (:mod:`streamline.speech.vad`)
   on fixed 32 ms windows. A confirmed speech onset opens an *utterance*; the
   VAD's offset (``min_silence_ms`` of silence) closes it. Whisper never sees
   audio outside utterances: that is the first hallucination guard.
2. While an utterance is open, every ``step_ms`` of *audio* (not of wall time)
   the utterance's buffer is decoded by Whisper (:class:`WhisperRecognizer`),
   conditioned on the text already committed before the buffer.
3. LocalAgreement-2 (Machacek, Dabre and Bojar, "Turning Whisper into Real-Time
   Transcription System", 2023; the ``whisper_streaming`` project): the longest
   common prefix of two successive hypotheses is *committed*. Words of the new
   hypothesis that repeat committed words are dropped first, by time (starting
   before the last committed end minus 0.1 s) and by text (a 1-5 word n-gram
   equal to the committed tail).
4. After ``pause_commit_ms`` of silence inside the utterance (a pause shorter
   than the VAD's closing silence), the buffer is decoded at once and the
   words that end before the pause are committed: Whisper has heard them end.
   This keeps phrase-final words fast; LocalAgreement alone holds them until
   the next phrase, since Whisper leaves out a word until it hears what follows.
5. When the buffer grows past ``trim_after_s`` it is cut at the end of the last
   committed word, so it stays short. If it reaches ``max_buffer_s`` (below
   Whisper's 30 s window) without a commit, the words of the latest hypothesis
   that end at least ``forced_tail_s`` before the buffer end are committed
   and the buffer is cut after them: a run of speech of any length is
   transcribed window after window with no word lost or doubled at the cut.
6. At the utterance's end (or the end of the stream, or a gap in the audio),
   the rest of the buffer is decoded and every remaining word is committed
   (the last decode is reused when no speech was heard since). An utterance
   that starts soon after the previous one is decoded with ``left_context_s``
   of audio before it, so Whisper hears the phrase it continues.

Because steps are placed on audio time and every decision is taken on fixed
windows, the committed words depend only on the audio, not on how it was cut
into chunks or how fast it arrived (tested with 20 ms, 100 ms and 1 s chunks).

Word times are on the session timeline: Whisper's times relative to the buffer,
clamped to the utterance, moved out of silent gaps the VAD found inside it
(Whisper's word boundaries drift into neighbouring silence), then made
monotonic (a word starts no earlier than the previous committed word ended).

Hallucination guards: VAD gating; a decode is rejected when its no-speech
probability is above ``no_speech_threshold`` and its mean log-probability
below ``log_prob_threshold`` (Whisper's rule, with a stricter log-probability),
or when its text compresses better than ``compression_ratio_threshold``
(repetitive); an n-gram repeated more than
``max_repeats`` times in a row is cut; words with no letters or digits
(``"♪"``, ``"..."``) are dropped.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from reactivex import Observable

from ..errors import ClosedError, ConfigError
from ..types import AudioChunk, SpeechSegment, Word
from ._stream import SAMPLE_RATE_HZ, SampleTimeline, as_mono_float32
from .vad import WINDOW_SAMPLES, VadSettings, VadStats, _Event, _VadCore
from .whisper import Hypothesis, WhisperRecognizer, WhisperSettings, normalize_word, repeat_count

__all__ = ["AsrSettings", "AsrStats", "StreamingTranscriber", "transcribe", "word_error_rate"]

log = logging.getLogger(__name__)

_NS = 1_000_000_000
#: A word may end this long after a pause's first silent window and still count as before it
#: (Silero's probability drops during a word's last, quiet consonant).
_PAUSE_TOLERANCE_NS = 150_000_000


@dataclass(frozen=True, slots=True)
class AsrSettings:
    """How the streaming recogniser decodes, commits and guards.

    Attributes:
        whisper: model and decoder settings.
        vad: voice activity settings (utterance boundaries).
        step_ms: decode the open utterance every this many ms of audio.
        pause_commit_ms: after this much silence inside an utterance (shorter than the
            VAD's ``min_silence_ms``), decode at once and commit the words that end
            before the pause, as at an utterance's end; the step clock restarts there.
            0 turns it off (pure LocalAgreement-2 until the utterance ends).
        commit_after_s: a word the last two hypotheses still disagree on is committed
            anyway, as the newest hypothesis has it, once the audio has run this far past
            its end (it was heard with that much right context). This bounds the lag
            that one unstable word would otherwise add to every word after it. 0 turns
            it off (pure LocalAgreement-2).
        trim_after_s: cut the buffer at the last committed word once it is longer than this.
        max_buffer_s: force commits when the buffer reaches this (must be < 30 s).
        forced_tail_s: a forced commit keeps the words ending in the last this-many
            seconds of the buffer uncommitted (they may still be cut off).
        prompt_chars: at most this many characters of the text committed before the
            buffer (this utterance's and the previous ones') condition the decoder.
        left_context_s: an utterance that starts less than this after the previous one
            ended is decoded with this much audio before it (words already committed
            there are dropped again), so Whisper hears the phrase it continues.
        no_speech_threshold: reject a decode whose no-speech probability is above this ...
        log_prob_threshold: ... and whose mean token log-probability is below this.
            Whisper's own rule uses -1.0; on music that got past the VAD, tiny.en's
            "Thank you." hallucinations scored no_speech 0.82-0.84 with log-probs
            from -0.94 to -1.18, while real speech (JFK, GRID, Harvard sentences,
            noisy speech at 0 dB SNR) stayed at no_speech <= 0.44: -0.5 rejects the
            former and keeps confident speech even when no_speech is high.
        compression_ratio_threshold: reject a decode whose text's gzip ratio is above this.
        max_repeats: an n-gram (1-4 words) repeated more than this many times in a row is cut.
        emit_partials: also emit the uncommitted words after each step (``committed=False``).
        snap_min_gap_ms: VAD silences inside an utterance at least this long are
            treated as gaps that no word may start or end in (0 turns snapping off).
    """

    whisper: WhisperSettings = field(default_factory=WhisperSettings)
    vad: VadSettings = field(default_factory=VadSettings)
    step_ms: int = 1000
    pause_commit_ms: int = 224
    commit_after_s: float = 1.2
    trim_after_s: float = 10.0
    max_buffer_s: float = 20.0
    forced_tail_s: float = 1.5
    prompt_chars: int = 200
    left_context_s: float = 3.0
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -0.5
    compression_ratio_threshold: float = 2.4
    max_repeats: int = 2
    emit_partials: bool = True
    snap_min_gap_ms: int = 150

    def __post_init__(self) -> None:
        if self.step_ms < 100:
            raise ConfigError(f"AsrSettings: step_ms must be >= 100, got {self.step_ms}")
        if not 0 < self.trim_after_s < self.max_buffer_s <= 28.0:
            raise ConfigError(
                "AsrSettings: need 0 < trim_after_s < max_buffer_s <= 28 "
                f"(got {self.trim_after_s}, {self.max_buffer_s})"
            )
        if not 0 <= self.forced_tail_s < self.max_buffer_s - self.step_ms / 1000:
            raise ConfigError(
                f"AsrSettings: forced_tail_s must be in [0, max_buffer_s - step), got {self.forced_tail_s}")
        if self.pause_commit_ms < 0 or self.pause_commit_ms >= self.vad.min_silence_ms:
            raise ConfigError(
                f"AsrSettings: pause_commit_ms must be in [0, vad.min_silence_ms), got {self.pause_commit_ms}")
        if not math.isfinite(self.commit_after_s) or self.commit_after_s < 0:
            raise ConfigError(f"AsrSettings: commit_after_s must be >= 0, got {self.commit_after_s}")
        if self.max_repeats < 1 or self.prompt_chars < 0 or self.snap_min_gap_ms < 0:
            raise ConfigError("AsrSettings: max_repeats must be >= 1, prompt_chars and snap_min_gap_ms >= 0")


@dataclass(slots=True)
class AsrStats:
    """Counters and the lag metric of one recogniser.

    Updated by the thread that feeds the recogniser; read them at any time
    (:meth:`as_dict` gives a consistent snapshot).

    Attributes:
        audio_s: seconds of audio consumed.
        utterances: utterances closed.
        decodes: Whisper decodes run.
        decode_s: wall seconds spent decoding.
        decode_cpu_s: CPU seconds the process spent decoding (all threads; a figure that
            other programs competing for the cores barely change).
        rejected: decodes rejected by the no-speech / log-prob / compression guards.
        full_window_retries: decodes run again with Whisper's 30 s encoder input because
            the short input repeated a phrase (see ``WhisperRecognizer.decode``).
        repeats_cut: words removed by the repetition detector.
        words_committed: committed words emitted.
        forced_commits: words committed because the buffer reached ``max_buffer_s``.
        dropped_audio_s: speech audio given up without words (a long run Whisper found no words in).
        max_buffer_s: the longest window decoded (bounded by ``max_buffer_s`` of the settings).
        language: the language of the last utterance, or None.
        lag_last_s: for the last committed word, how far it trailed the audio: the
            stream position (audio time) when it was committed minus its end.
        lag_max_s: the largest such lag.
    """

    audio_s: float = 0.0
    utterances: int = 0
    decodes: int = 0
    decode_s: float = 0.0
    decode_cpu_s: float = 0.0
    rejected: int = 0
    full_window_retries: int = 0
    repeats_cut: int = 0
    words_committed: int = 0
    forced_commits: int = 0
    dropped_audio_s: float = 0.0
    max_buffer_s: float = 0.0
    language: str | None = None
    lag_last_s: float = 0.0
    lag_max_s: float = 0.0
    _lags: deque = field(default_factory=lambda: deque(maxlen=10_000), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def rtf(self) -> float:
        """Real-time factor of the decoding: decode seconds per second of audio."""
        return self.decode_s / self.audio_s if self.audio_s else 0.0

    def lag_percentile_s(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the lag over the last 10,000 committed words (0 if none)."""
        with self._lock:
            lags = list(self._lags)
        return float(np.percentile(lags, q)) if lags else 0.0

    def _add_lag(self, lag_s: float) -> None:
        with self._lock:
            self._lags.append(lag_s)
            self.lag_last_s = lag_s
            self.lag_max_s = max(self.lag_max_s, lag_s)

    def as_dict(self) -> dict[str, object]:
        """A snapshot as a plain dict (for JSON and logs)."""
        return {
            "audio_s": round(self.audio_s, 3),
            "utterances": self.utterances,
            "decodes": self.decodes,
            "decode_s": round(self.decode_s, 3),
            "decode_cpu_s": round(self.decode_cpu_s, 3),
            "rtf": round(self.rtf, 4),
            "rejected": self.rejected,
            "full_window_retries": self.full_window_retries,
            "repeats_cut": self.repeats_cut,
            "words_committed": self.words_committed,
            "forced_commits": self.forced_commits,
            "dropped_audio_s": round(self.dropped_audio_s, 3),
            "max_buffer_s": round(self.max_buffer_s, 3),
            "language": self.language,
            "lag_last_s": round(self.lag_last_s, 3),
            "lag_p50_s": round(self.lag_percentile_s(50), 3),
            "lag_p95_s": round(self.lag_percentile_s(95), 3),
            "lag_max_s": round(self.lag_max_s, 3),
        }


@dataclass(slots=True)
class _W:
    """A hypothesis word on the session timeline (mutable while being placed)."""

    text: str
    norm: str
    start_ns: int
    end_ns: int
    probability: float


def word_error_rate(reference: str, hypothesis: Sequence[str]) -> float:
    """Word error rate: (substitutions + deletions + insertions) / reference words.

    Levenshtein distance over words after :func:`normalize_word` (case, punctuation),
    the usual WER of speech recognition.

    Args:
        reference: the true text (split on whitespace).
        hypothesis: the recognised words, in order.

    Returns:
        The rate (0 = perfect; it can exceed 1 with many insertions).

    Raises:
        ConfigError: the reference has no words.
    """
    ref = [k for k in (normalize_word(w) for w in reference.split()) if k]
    hyp = [k for k in (normalize_word(w) for w in hypothesis) if k]
    if not ref:
        raise ConfigError("word_error_rate: the reference text has no words")
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        new = [i] + [0] * len(hyp)
        for j in range(1, len(hyp) + 1):
            new[j] = min(row[j] + 1, new[j - 1] + 1, row[j - 1] + (ref[i - 1] != hyp[j - 1]))
        row = new
    return row[-1] / len(ref)


def cut_repetitions(words: list, max_repeats: int, key: Callable = lambda w: w) -> tuple[list, int]:
    """Remove n-grams (n = 1..4) repeated more than ``max_repeats`` times in a row.

    Args:
        words: a sequence of items.
        max_repeats: how many consecutive copies of an n-gram are kept.
        key: how an item is compared (e.g. its normalized text).

    Returns:
        The kept items and how many were removed.
    """
    keys = [key(w) for w in words]
    removed = 0
    for n in (1, 2, 3, 4):
        i = 0
        while i + n <= len(keys):
            copies = repeat_count(keys, i, n)
            j = i + n * copies
            if copies > max_repeats:
                cut_from = i + n * max_repeats
                del keys[cut_from:j]
                del words[cut_from:j]
                removed += j - cut_from
            i += 1
    return words, removed


def _count_ending_by(words: list[_W], n: int, limit_ns: int) -> int:
    """Extend the first ``n`` words with the following ones that end by ``limit_ns``."""
    while n < len(words) and words[n].end_ns <= limit_ns:
        n += 1
    return n


class _Utterance:
    """State of the utterance being transcribed."""

    def __init__(self, uid: int, start_idx: int) -> None:
        self.id = uid
        self.start_idx = start_idx  # padded VAD start (absolute sample index)
        self.buf_start = start_idx  # first sample of the decode buffer
        self.last_step = start_idx  # sample index of the last scheduled step
        self.voiced_since_step = False
        self.silent_windows = 0  # consecutive windows below the VAD offset threshold
        self.decoded_to = -1  # end index of the last decode
        self.committed: deque[Word] = deque(maxlen=8)  # the last committed words (bounded)
        self.pending: list[_W] = []  # uncommitted words of the last hypothesis
        self.language: str | None = None


class StreamingTranscriber:
    """Push audio in, get committed (and partial) words out, incrementally.

    Example::

        with StreamingTranscriber() as asr:
            for chunk in chunks:                       # 16 kHz mono AudioChunks
                for word in asr.push(chunk):
                    if word.committed:
                        print(word.text, word.start_ns, word.end_ns)
            rest = asr.finish()

    Emission order per call: newly committed words (``committed=True``, in time
    order, never revised), then, if ``emit_partials``, the current uncommitted
    words of the open utterance (``committed=False``). A partial list replaces
    the previous one; an empty partial list is not signalled, the next
    committed words supersede it.

    Everything runs on the calling thread; the :func:`transcribe` operator moves
    it off the source thread.

    Args:
        settings: recogniser settings (defaults: :class:`AsrSettings`).
        recognizer: a loaded model to share; by default one is loaded from
            ``settings.whisper`` and closed with this object.

    Raises:
        MissingExtraError: faster-whisper or webrtcvad is not installed.
        ModelNotFoundError: the Whisper model is not installed.
    """

    def __init__(self, settings: AsrSettings | None = None, *, recognizer: WhisperRecognizer | None = None) -> None:
        self.settings = settings or AsrSettings()
        self._owns_recognizer = recognizer is None
        self._recognizer = recognizer or WhisperRecognizer(self.settings.whisper)
        self.stats = AsrStats()
        self.vad_stats = VadStats()
        self._vad = _VadCore(self.settings.vad, self.vad_stats)
        self._timeline = SampleTimeline()
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_base = 0  # absolute index of self._audio[0]
        self._probs: deque[tuple[int, float]] = deque()  # (window start index, probability)
        self._utt: _Utterance | None = None
        self._prev_utt_start = 0  # extent of the last closed utterance (left context)
        self._prev_utt_end: int | None = None
        self._next_uid = 0
        self._last_end_ns = -(1 << 62)  # end of the last committed word (monotonic times)
        self._segments: deque[SpeechSegment] = deque(maxlen=1000)
        self._history: deque[Word] = deque(maxlen=100)  # the last committed words (prompt)
        self._committed_tail: deque[str] = deque(maxlen=5)  # normalized last committed words (dedupe)
        self._source_id = "audio"
        self._now_idx = 0  # the window end being processed (lag is measured from it)
        s = self.settings
        self._step_samples = s.step_ms * SAMPLE_RATE_HZ // 1000
        self._pause_windows = -(-s.pause_commit_ms * SAMPLE_RATE_HZ // (1000 * WINDOW_SAMPLES))
        self._preroll = (s.vad.speech_pad_ms + s.vad.min_speech_ms) * SAMPLE_RATE_HZ // 1000 + 4 * WINDOW_SAMPLES
        self._closed = False

    # ----------------------------------------------------------------- public
    @property
    def recognizer(self) -> WhisperRecognizer:
        """The Whisper model in use."""
        return self._recognizer

    def push(self, chunk: AudioChunk) -> list[Word]:
        """Feed one chunk of 16 kHz mono float audio; returns the words it produced.

        Raises:
            ConfigError: the chunk is not 16 kHz mono float audio.
            ClosedError: the transcriber was closed.
        """
        if self._closed:
            raise ClosedError("StreamingTranscriber: push() after close()")
        samples = as_mono_float32(chunk, who="StreamingTranscriber")
        self._source_id = chunk.source_id
        out: list[Word] = []
        for piece in self._timeline.admit(chunk.pts_ns, samples):
            if piece.samples is None:
                out.extend(self._end_run(restart_at=piece.index))
                continue
            self._audio = np.concatenate([self._audio, piece.samples]) if len(self._audio) else piece.samples.copy()
            self.stats.audio_s += len(piece.samples) / SAMPLE_RATE_HZ
            for window_end, p, events in self._vad.process(piece.samples):
                out.extend(self._on_window(window_end, p, events))
        self._forget_old_audio()
        return out

    def finish(self) -> list[Word]:
        """End of stream: close the open utterance and commit its remaining words.

        The transcriber may be fed again afterwards (a new run of audio).
        """
        if self._closed:
            raise ClosedError("StreamingTranscriber: finish() after close()")
        return self._end_run()

    def watermark_ns(self) -> int | None:
        """The earliest start any word committed from now on can have (None before any audio).

        A committed word starts no earlier than its utterance's (padded) start and the
        previous committed word's end; while no utterance is open, the next one can
        start at most the VAD's pre-roll before the audio consumed so far. A
        synchronizer can use this as the word stream's watermark.
        """
        if not self._timeline.started:
            return None
        if self._utt is not None:
            index = self._utt.start_idx
        else:
            index = max(self._timeline.position - self._preroll, self._audio_base)
        return max(self._ns(index), self._last_end_ns)

    def take_segments(self) -> list[SpeechSegment]:
        """The VAD speech segments closed since the last call (at most the last 1000)."""
        out = list(self._segments)
        self._segments.clear()
        return out

    def close(self) -> None:
        """Release the model if this object loaded it (idempotent)."""
        if not self._closed:
            self._closed = True
            if self._owns_recognizer:
                self._recognizer.close()

    def __enter__(self) -> StreamingTranscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------- internals
    def _ns(self, index: int) -> int:
        return self._timeline.time_ns(index)

    def _slice(self, lo: int, hi: int) -> np.ndarray:
        return self._audio[lo - self._audio_base:hi - self._audio_base]

    def _forget_old_audio(self) -> None:
        # Enough for any onset decided in the next push (it reaches back at most the
        # pre-roll) plus its left context, whatever the chunk size: no decision may
        # depend on how much audio was already thrown away.
        keep_from = self._timeline.position - self._preroll - round(self.settings.left_context_s * SAMPLE_RATE_HZ)
        if self._utt is not None:
            keep_from = min(keep_from, self._utt.buf_start)
        if keep_from > self._audio_base:
            self._audio = self._audio[keep_from - self._audio_base:]
            self._audio_base = keep_from
        while self._probs and self._probs[0][0] + WINDOW_SAMPLES <= keep_from:
            self._probs.popleft()

    def _end_run(self, *, restart_at: int | None = None) -> list[Word]:
        """Close the run of audio (end of stream, or a long gap): finalize, reset."""
        out: list[Word] = []
        run_end = self._audio_base + len(self._audio)
        for window_end, p, events in self._vad.flush():
            out.extend(self._on_window(window_end, p, events, flushing=True))
        if self._utt is not None:  # the VAD closes open segments on flush; belt and braces
            out.extend(self._finalize(run_end))
        restart = run_end if restart_at is None else restart_at
        self._vad.restart_at(restart)
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_base = restart
        self._probs.clear()
        self._history.clear()  # a new run of audio: earlier text says nothing about it
        self._committed_tail.clear()
        self._prev_utt_end = None
        return out

    def _on_window(self, window_end: int, p: float, events: list[_Event], *, flushing: bool = False) -> list[Word]:
        out: list[Word] = []
        self._now_idx = window_end
        self._probs.append((window_end - WINDOW_SAMPLES, p))
        for e in events:
            if e.kind == "start":
                self._utt = _Utterance(self._next_uid, e.sample)
                self._next_uid += 1
                context = round(self.settings.left_context_s * SAMPLE_RATE_HZ)
                if self._prev_utt_end is not None and e.sample - self._prev_utt_end < context:
                    # the previous utterance ended moments ago: let Whisper hear its end again
                    self._utt.buf_start = max(e.sample - context, self._prev_utt_start, self._audio_base)
            elif e.kind == "end":
                self._segments.append(SpeechSegment(self._ns(e.start_sample), self._ns(e.sample),
                                                    round(e.probability, 4), self._source_id))
                if self._utt is not None:
                    out.extend(self._finalize(e.sample))
        utt = self._utt
        if utt is None or flushing:
            return out
        if p >= self.settings.vad.offset:
            utt.voiced_since_step = True
            utt.silent_windows = 0
        else:
            utt.silent_windows += 1
        if self._pause_windows and utt.silent_windows == self._pause_windows and utt.voiced_since_step:
            # a pause inside the utterance: decode now and commit what precedes it
            utt.last_step = window_end
            utt.voiced_since_step = False
            out.extend(self._step(window_end, pause_start=window_end - self._pause_windows * WINDOW_SAMPLES))
        elif window_end - utt.last_step >= self._step_samples:
            utt.last_step = window_end
            if utt.voiced_since_step:
                utt.voiced_since_step = False
                out.extend(self._step(window_end))
        return out

    # decoding -----------------------------------------------------------------
    def _decode(self, utt: _Utterance, end_idx: int) -> list[_W]:
        """Decode the buffer up to ``end_idx``; the new words after the committed ones."""
        s = self.settings
        audio = self._slice(utt.buf_start, end_idx)
        self.stats.max_buffer_s = max(self.stats.max_buffer_s, len(audio) / SAMPLE_RATE_HZ)
        buf_start_ns = self._ns(utt.buf_start)
        # committed text before the buffer, this utterance's and the previous ones'
        prompt_words = [w.text for w in self._history if w.end_ns <= buf_start_ns]
        prompt = " ".join(prompt_words)[-s.prompt_chars:] if s.prompt_chars else ""
        # the language is re-detected until the utterance's first commit, then kept
        language = utt.language if utt.committed else s.whisper.language
        hyp: Hypothesis = self._recognizer.decode(audio, prompt=prompt, language=language)
        utt.decoded_to = end_idx
        self.stats.decodes += 1
        self.stats.decode_s += hyp.decode_s
        self.stats.decode_cpu_s += hyp.decode_cpu_s
        self.stats.full_window_retries += hyp.full_window_retry
        if (hyp.no_speech_prob > s.no_speech_threshold and hyp.avg_logprob < s.log_prob_threshold) or (
            hyp.compression_ratio > s.compression_ratio_threshold
        ):
            self.stats.rejected += 1
            log.debug("decode rejected: no_speech=%.2f avg_logprob=%.2f ratio=%.2f text=%r",
                      hyp.no_speech_prob, hyp.avg_logprob, hyp.compression_ratio, hyp.text)
            return []
        if not utt.committed:
            utt.language = hyp.language
            self.stats.language = hyp.language
        words = [
            _W(w.text, normalize_word(w.text), buf_start_ns + round(w.start_s * _NS),
               buf_start_ns + round(w.end_s * _NS), w.probability)
            for w in hyp.words
        ]
        words = [w for w in words if w.norm]
        words, removed = cut_repetitions(words, s.max_repeats, key=lambda w: w.norm)
        self.stats.repeats_cut += removed
        if self._committed_tail:
            last_end_ns = self._last_end_ns
            words = [w for w in words if w.start_ns > last_end_ns - _NS // 10]
            if words and abs(words[0].start_ns - last_end_ns) < _NS:
                tail = list(self._committed_tail)
                for n in range(1, min(len(tail), len(words), 5) + 1):
                    if tail[-n:] == [w.norm for w in words[:n]]:
                        del words[:n]
                        break
        return words

    def _step(self, end_idx: int, *, pause_start: int | None = None) -> list[Word]:
        s = self.settings
        utt = self._utt
        assert utt is not None
        new = self._decode(utt, end_idx)
        agreed = 0
        while agreed < min(len(new), len(utt.pending)) and new[agreed].norm == utt.pending[agreed].norm:
            agreed += 1
        if pause_start is not None and agreed == len(utt.pending):
            # Decoded with the pause heard, and the previous hypothesis is a prefix of
            # this one (no word changed its mind): the new words before the pause are
            # as final as an utterance's last words, since Whisper has heard them end.
            agreed = _count_ending_by(new, agreed, self._ns(pause_start) + _PAUSE_TOLERANCE_NS)
        if s.commit_after_s:
            agreed = _count_ending_by(new, agreed, self._ns(end_idx) - round(s.commit_after_s * _NS))
        committed = self._commit(utt, new[:agreed], end_idx)
        utt.pending = new[agreed:]
        if end_idx - utt.buf_start >= s.max_buffer_s * SAMPLE_RATE_HZ:
            committed.extend(self._force_split(utt, end_idx))
        if end_idx - utt.buf_start > s.trim_after_s * SAMPLE_RATE_HZ:
            self._trim(utt, end_idx)
        out = committed
        if s.emit_partials and utt.pending:
            out = out + self._place(utt, utt.pending, end_idx, committed=False)
        return out

    def _force_split(self, utt: _Utterance, end_idx: int) -> list[Word]:
        """The buffer is full: commit the words that end well before its end."""
        n = _count_ending_by(utt.pending, 0, self._ns(end_idx) - round(self.settings.forced_tail_s * _NS))
        forced = utt.pending[:n]
        utt.pending = utt.pending[n:]
        self.stats.forced_commits += len(forced)
        out = self._commit(utt, forced, end_idx)
        if not utt.committed or utt.committed[-1].end_ns <= self._ns(utt.buf_start):
            # Whisper found no words in max_buffer_s of speech: give up the oldest audio.
            new_start = end_idx - round(self.settings.trim_after_s * SAMPLE_RATE_HZ)
            self.stats.dropped_audio_s += (new_start - utt.buf_start) / SAMPLE_RATE_HZ
            log.info("no words in %.1f s of speech; dropping %.1f s of audio",
                     (end_idx - utt.buf_start) / SAMPLE_RATE_HZ, (new_start - utt.buf_start) / SAMPLE_RATE_HZ)
            utt.buf_start = new_start
            utt.pending = [w for w in utt.pending if w.start_ns >= self._ns(new_start)]
        return out

    def _trim(self, utt: _Utterance, end_idx: int) -> None:
        """Cut the buffer at the end of the last committed word (before the next word)."""
        if not utt.committed:
            return
        cut_ns = utt.committed[-1].end_ns
        if utt.pending:
            cut_ns = min(cut_ns, utt.pending[0].start_ns)
        cut = self._timeline.index_at(cut_ns)
        if utt.buf_start < cut < end_idx:
            utt.buf_start = cut

    def _finalize(self, end_idx: int) -> list[Word]:
        """The utterance ended at ``end_idx``: commit every remaining word."""
        utt = self._utt
        assert utt is not None
        self._utt = None
        self._prev_utt_start, self._prev_utt_end = utt.start_idx, end_idx
        if utt.decoded_to < 0 or utt.voiced_since_step:
            new = self._decode(utt, end_idx) if end_idx > utt.buf_start else []
        else:  # nothing voiced since the last decode: its words are the final ones
            new = utt.pending
        out = self._commit(utt, new, end_idx, end_idx=end_idx)
        self.stats.utterances += 1
        return out

    # placing words ------------------------------------------------------------
    def _gaps(self, lo_idx: int, hi_idx: int) -> list[tuple[int, int]]:
        """Silent stretches (sample index ranges) inside [lo, hi) at least snap_min_gap_ms long."""
        s = self.settings
        if not s.snap_min_gap_ms:
            return []
        min_len = s.snap_min_gap_ms * SAMPLE_RATE_HZ // 1000
        gaps: list[tuple[int, int]] = []
        run_start: int | None = None
        for start, p in self._probs:
            if start + WINDOW_SAMPLES <= lo_idx or start >= hi_idx:
                continue
            if p < s.vad.offset:
                if run_start is None:
                    run_start = max(start, lo_idx)
            elif run_start is not None:
                if start - run_start >= min_len:
                    gaps.append((run_start, start))
                run_start = None
        if run_start is not None and hi_idx - run_start >= min_len:
            gaps.append((run_start, hi_idx))
        return gaps

    def _place(self, utt: _Utterance, words: list[_W], end_idx: int, *, committed: bool,
               final_end_idx: int | None = None) -> list[Word]:
        """Clamp, snap out of silent gaps and order the words; build Word items."""
        lo_ns = self._ns(utt.start_idx)
        hi_idx = final_end_idx if final_end_idx is not None else end_idx
        hi_ns = self._ns(hi_idx)
        gaps = [(self._ns(a), self._ns(b)) for a, b in self._gaps(utt.start_idx, hi_idx)]
        prev_end = max(self._last_end_ns, lo_ns)
        out = []
        for w in words:
            start = min(max(w.start_ns, lo_ns), hi_ns)
            end = min(max(w.end_ns, start), hi_ns)
            for g0, g1 in gaps:
                if g0 <= start < g1 and g0 <= end <= g1:
                    # the whole word sits in silence: move it to the nearer speech edge
                    length = end - start
                    if start - g0 <= g1 - end and g0 > lo_ns:
                        start, end = max(g0 - length, lo_ns), g0
                    else:
                        start, end = g1, min(g1 + length, hi_ns)
                    break
            for g0, g1 in gaps:
                if g0 <= start < g1 < end:  # starts in silence
                    start = g1
                elif start < g0 < end <= g1:  # ends in silence
                    end = g0
                elif start < g0 and g1 < end:  # spans a silence: keep the larger side
                    if g0 - start >= end - g1:
                        end = g0
                    else:
                        start = g1
            start = max(start, prev_end)
            end = min(max(end, start), hi_ns)
            start = min(start, end)
            prev_end = end
            out.append(Word(text=w.text, start_ns=int(start), end_ns=int(end), probability=round(w.probability, 4),
                            committed=committed, utterance_id=utt.id, language=utt.language))
        return out

    def _commit(self, utt: _Utterance, words: list[_W], at_idx: int, *, end_idx: int | None = None) -> list[Word]:
        if not words:
            return []
        placed = self._place(utt, words, at_idx, committed=True, final_end_idx=end_idx)
        position_ns = self._ns(max(self._now_idx, at_idx))
        for w in placed:
            self.stats._add_lag((position_ns - w.end_ns) / _NS)
        utt.committed.extend(placed)
        self._committed_tail.extend(normalize_word(w.text) for w in placed)
        self._history.extend(placed)
        self._last_end_ns = placed[-1].end_ns
        self.stats.words_committed += len(placed)
        return placed


def transcribe(
    settings: AsrSettings | None = None,
    *,
    recognizer: WhisperRecognizer | None = None,
    queue_chunks: int = 3000,
    on_stats: Callable[[AsrStats], None] | None = None,
) -> Callable[[Observable[AudioChunk]], Observable[Word]]:
    """Operator: audio chunks in, words out (committed, and partial if enabled).

    The recogniser runs on a thread of its own behind a
    :class:`streamline.flow.Handoff` with policy ``BLOCK`` (audio is never
    dropped; a file source waits when the queue is full). Each subscription gets
    its own :class:`StreamingTranscriber`; a model passed as ``recognizer`` is
    shared and left open, otherwise one is loaded at subscription and closed at
    completion, error or disposal.

    Args:
        settings: recogniser settings (defaults: :class:`AsrSettings`).
        recognizer: a loaded model to share between subscriptions.
        queue_chunks: bound of the hand-off queue, in chunks (3000 x 20 ms = 60 s).
        on_stats: called with the transcriber's :class:`AsrStats` at subscription,
            so the caller can watch lag and real-time factor while it runs.

    Returns:
        A function from ``Observable[AudioChunk]`` (16 kHz mono float32) to
        ``Observable[Word]``. Errors (a bad chunk, a missing model) arrive as ``on_error``.
    """
    from ..flow import Handoff, OverflowPolicy

    from ..flow import engine_operator

    settings = settings or AsrSettings()

    def make_engine() -> StreamingTranscriber:
        engine = StreamingTranscriber(settings, recognizer=recognizer)
        if on_stats is not None:
            on_stats(engine.stats)
        return engine

    return engine_operator(
        make_engine,
        lambda engine, chunk: engine.push(chunk),
        lambda engine: engine.finish(),
        upstream=Handoff(queue_chunks, OverflowPolicy.BLOCK, name="asr"),
    )

