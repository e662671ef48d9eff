"""Writers for the pipeline's results: JSON lines, CSV and WebVTT, written as they come.

Every writer flushes after each record, so a run that is interrupted (Ctrl-C, a
crash, a full disk) leaves files that hold everything computed so far and are
valid up to their last line.

JSON lines (``JsonlWriter``), one object per line, ``type`` first:

* ``"estimate"``: :meth:`EmotionEstimate.as_dict` (``start_s``, ``end_s``, ``probs``
  over the 7 classes, ``label``, ``valence``, ``arousal``, ``confidence``,
  ``modalities``, ``contributions``, ``running``);
* ``"word"``: a committed word (``text``, ``start_s``, ``end_s``, ``probability``,
  ``utterance_id``, ``language``);
* ``"segment"``: a speech segment found by the VAD (``start_s``, ``end_s``, ``probability``).

CSV (``CsvEstimateWriter``): one row per estimate (words are not in the CSV).

WebVTT (``VttWriter``): one cue per utterance (its committed words; an utterance
longer than 7 s is split at sentence ends and pauses, :class:`CueSplitter`), with
the cue's dominant emotion: the class with the highest mean probability over the
estimates overlapping it, each weighted by its overlap.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..errors import ConfigError
from ..fusion.types import CLASSES, MODALITIES
from ..types import SpeechSegment, Word

__all__ = [
    "estimate_record",
    "word_record",
    "segment_record",
    "JsonlWriter",
    "CsvEstimateWriter",
    "VttWriter",
    "open_estimate_writer",
    "format_vtt_time",
    "dominant_emotion",
    "CueSplitter",
]


def estimate_record(estimate: Any) -> dict[str, Any]:
    """The JSON line of an estimate (:meth:`EmotionEstimate.as_dict`)."""
    return estimate.as_dict()


def word_record(word: Word) -> dict[str, Any]:
    """The JSON line of a committed word (:meth:`Word.as_dict`, shared with ``streamline transcribe``)."""
    return word.as_dict()


def segment_record(segment: SpeechSegment) -> dict[str, Any]:
    """The JSON line of a speech segment (:meth:`SpeechSegment.as_dict`)."""
    return segment.as_dict()


def _open_text(path: str | os.PathLike[str], what: str) -> TextIO:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by the writer
    except OSError as exc:
        raise ConfigError(f"{what} {os.fspath(path)}: cannot write there ({exc.strerror or exc})") from exc


class _Writer:
    def __init__(self, target: str | os.PathLike[str] | TextIO, what: str) -> None:
        if isinstance(target, (str, os.PathLike)):
            self._file: TextIO = _open_text(target, what)
            self._owned = True
            self.path: str | None = os.fspath(target)
        else:
            self._file = target
            self._owned = False
            self.path = None
        self.closed = False

    def close(self) -> None:
        """Flush and close (a stream passed in is flushed, not closed). Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self._file.flush()
        finally:
            if self._owned:
                self._file.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonlWriter(_Writer):
    """JSON lines: estimates, committed words and speech segments, one per line, flushed each.

    Args:
        target: a path (parent folders are made) or an open text stream.
        words: also write committed words; segments: also write speech segments.
    """

    def __init__(self, target: str | os.PathLike[str] | TextIO, *, words: bool = True, segments: bool = True) -> None:
        super().__init__(target, "--out")
        self._words = words
        self._segments = segments
        self.count = 0

    def write_record(self, record: dict[str, Any]) -> None:
        """Write one object as a line and flush."""
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()
        self.count += 1

    def write(self, item: Any) -> None:
        """Write an estimate, a committed word or a segment (other items are ignored)."""
        if isinstance(item, Word):
            if self._words and item.committed:
                self.write_record(word_record(item))
        elif isinstance(item, SpeechSegment):
            if self._segments:
                self.write_record(segment_record(item))
        elif hasattr(item, "as_dict") and hasattr(item, "probs"):
            self.write_record(estimate_record(item))


#: CSV columns, in order.
CSV_COLUMNS: tuple[str, ...] = (
    "start_s", "end_s", "label", "confidence", "valence", "arousal",
    *(f"p_{c}" for c in CLASSES), "modalities", *(f"contribution_{m}" for m in MODALITIES),
    "running_label", "running_valence", "running_arousal",
)


class CsvEstimateWriter(_Writer):
    """CSV, one row per estimate (columns :data:`CSV_COLUMNS`; ``modalities`` joined by ``+``)."""

    def __init__(self, target: str | os.PathLike[str] | TextIO) -> None:
        super().__init__(target, "--out")
        self._csv = csv.writer(self._file)
        self._csv.writerow(CSV_COLUMNS)
        self._file.flush()
        self.count = 0

    def write(self, item: Any) -> None:
        """Write an estimate as a row and flush (other items are ignored)."""
        if not (hasattr(item, "as_dict") and hasattr(item, "probs")):
            return
        d = item.as_dict()
        row = [d["start_s"], d["end_s"], d["label"], d["confidence"], d["valence"], d["arousal"],
               *(d["probs"][c] for c in CLASSES), "+".join(d["modalities"]),
               *("" if m not in d["contributions"] else d["contributions"][m] for m in MODALITIES),
               d["running"]["label"], d["running"]["valence"], d["running"]["arousal"]]
        self._csv.writerow(row)
        self._file.flush()
        self.count += 1


def open_estimate_writer(path: str | os.PathLike[str]) -> JsonlWriter | CsvEstimateWriter:
    """A JSON lines or CSV writer, chosen by the extension (.jsonl/.ndjson/.json or .csv).

    Raises:
        ConfigError: another extension, or the file cannot be written.
    """
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return JsonlWriter(path)
    if suffix == ".csv":
        return CsvEstimateWriter(path)
    raise ConfigError(f"--out {os.fspath(path)}: unknown extension {suffix or '(none)'!r}; use .jsonl or .csv")


def format_vtt_time(t_ns: int) -> str:
    """``HH:MM:SS.mmm`` for a time in ns (negative times clamp to 0)."""
    ms = max(int(t_ns), 0) // 1_000_000
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def dominant_emotion(estimates: list[Any], start_ns: int, end_ns: int) -> tuple[str, float] | None:
    """The class with the highest overlap-weighted mean probability over ``[start_ns, end_ns)``.

    Estimates without any modality present are skipped. Returns ``(class, mean
    probability)`` or None when no estimate overlaps.
    """
    total = np.zeros(len(CLASSES), np.float64)
    weight = 0.0
    for est in estimates:
        if not est.modalities:
            continue
        overlap = min(est.end_ns, end_ns) - max(est.start_ns, start_ns)
        if end_ns <= start_ns:  # a zero-length utterance: the windows containing its instant
            overlap = 1 if est.start_ns <= start_ns < est.end_ns else 0
        if overlap <= 0:
            continue
        total += overlap * np.asarray(est.probs, np.float64)
        weight += overlap
    if weight <= 0:
        return None
    mean = total / weight
    k = int(np.argmax(mean))
    return CLASSES[k], float(mean[k])


class CueSplitter:
    """Group committed words into subtitle cues: one per utterance, long utterances split.

    An utterance is one cue unless it runs long: a cue is closed after a word ending a
    sentence (``.``, ``?``, ``!``) once it spans at least ``min_sentence_s``, when it holds
    ``max_words`` words, before a word that would make it longer than ``max_cue_s``, before
    a pause of ``max_pause_s`` or more between two words, and when its utterance ends. (The VAD closes an utterance only after
    500 ms of silence, so fluent speech can be a single utterance of a minute.)

    Args:
        max_cue_s: the longest cue, seconds.
        max_words: the most words in a cue.
        max_pause_s: a pause at least this long between words starts a new cue.
        min_sentence_s: a sentence end closes a cue only once the cue is this long.
    """

    def __init__(self, *, max_cue_s: float = 7.0, max_words: int = 16, max_pause_s: float = 0.8,
                 min_sentence_s: float = 1.5) -> None:
        self._max_ns = int(max_cue_s * 1e9)
        self._max_words = max_words
        self._pause_ns = int(max_pause_s * 1e9)
        self._sentence_ns = int(min_sentence_s * 1e9)
        self._open: list[Word] = []

    def add(self, word: Word) -> list[list[Word]]:
        """A committed word; returns the cues it closed (in order)."""
        out: list[list[Word]] = []
        if self._open and (word.utterance_id != self._open[-1].utterance_id
                           or word.start_ns - self._open[-1].end_ns >= self._pause_ns
                           or word.end_ns - self._open[0].start_ns > self._max_ns):
            out.append(self._take())
        self._open.append(word)
        span = self._open[-1].end_ns - self._open[0].start_ns
        sentence_end = word.text.rstrip().endswith((".", "?", "!"))
        if len(self._open) >= self._max_words or (sentence_end and span >= self._sentence_ns):
            out.append(self._take())
        return out

    def end_utterance(self, end_ns: int | None = None) -> list[list[Word]]:
        """The utterance being grouped is over (if its last word ends by ``end_ns``)."""
        if self._open and (end_ns is None or self._open[-1].end_ns <= end_ns):
            return [self._take()]
        return []

    def _take(self) -> list[Word]:
        cue, self._open = self._open, []
        return cue

    @staticmethod
    def split(words: list[Word], **kwargs: Any) -> list[list[Word]]:
        """All cues of a list of committed words (batch use, e.g. the report)."""
        splitter = CueSplitter(**kwargs)
        cues: list[list[Word]] = []
        for w in words:
            cues += splitter.add(w)
        return cues + splitter.end_utterance()


#: The VTT writer keeps the estimates a cue to come may still overlap; it assumes a committed
#: word arrives less than this long after the estimate of a window starting this much later
#: (the ASR commits within seconds), so that a long run without words keeps a bounded list.
_VTT_MAX_WORD_LAG_NS = 300_000_000_000


class VttWriter(_Writer):
    """WebVTT: the committed words as cues (:class:`CueSplitter`: one per utterance, long ones
    split), each with its dominant emotion, written as soon as both are known.

    A cue is written once it is closed and an estimate *starting* at or after its end
    has arrived (estimates come in window order, so every estimate overlapping the
    cue is in by then); :meth:`close` writes what is left. Cue text::

        bin blue at f two now
        [neutral 48%]

    Args:
        target: a path or an open text stream.
    """

    def __init__(self, target: str | os.PathLike[str] | TextIO) -> None:
        super().__init__(target, "--vtt")
        self._file.write("WEBVTT\n\n")
        self._file.flush()
        self._splitter = CueSplitter()
        self._ready: list[list[Word]] = []  # closed cues waiting for their estimates
        self._estimates: list[Any] = []
        self._last_estimate_start_ns = -(1 << 62)
        self._prune_at = 256  # prune the estimates when this many are kept
        self.cues = 0

    def write(self, item: Any) -> None:
        """Feed an estimate, a word or a segment; writes the cues that became ready."""
        if isinstance(item, Word):
            if not item.committed:
                return
            self._ready += self._splitter.add(item)
        elif isinstance(item, SpeechSegment):
            self._ready += self._splitter.end_utterance(item.end_ns)
        elif hasattr(item, "probs") and hasattr(item, "end_ns"):
            self._estimates.append(item)
            self._last_estimate_start_ns = max(self._last_estimate_start_ns, item.start_ns)
            if len(self._estimates) >= self._prune_at:
                self._prune()
        else:
            return
        self._flush_ready(final=False)

    def _prune(self) -> None:
        """Drop the estimates no cue to come can overlap (amortised O(1) per estimate)."""
        horizon = self._last_estimate_start_ns - _VTT_MAX_WORD_LAG_NS
        pending = [cue[0].start_ns for cue in self._ready] + [w.start_ns for w in self._splitter._open[:1]]
        if pending:
            horizon = min(horizon, min(pending))
        self._estimates = [e for e in self._estimates if e.end_ns > horizon]
        self._prune_at = max(256, 2 * len(self._estimates))

    def _flush_ready(self, *, final: bool) -> None:
        if final:
            self._ready += self._splitter.end_utterance()
        while self._ready:
            words = self._ready[0]
            if not final and self._last_estimate_start_ns < words[-1].end_ns:
                return
            self._write_cue(self._ready.pop(0))
            # estimates that end before the next cue starts are no longer needed
            if self._ready:
                horizon = self._ready[0][0].start_ns
                self._estimates = [e for e in self._estimates if e.end_ns > horizon]

    def _write_cue(self, words: list[Word]) -> None:
        start_ns, end_ns = words[0].start_ns, words[-1].end_ns
        if end_ns <= start_ns:
            end_ns = start_ns + 1_000_000
        text = " ".join(w.text.strip() for w in words if w.text.strip())
        text = text.replace("-->", "->")
        dominant = dominant_emotion(self._estimates, words[0].start_ns, words[-1].end_ns)
        label = f"[{dominant[0]} {dominant[1] * 100:.0f}%]" if dominant else "[no estimate]"
        self.cues += 1
        self._file.write(f"{self.cues}\n{format_vtt_time(start_ns)} --> {format_vtt_time(end_ns)}\n{text}\n{label}\n\n")
        self._file.flush()

    def close(self) -> None:
        """Write the remaining cues, then close."""
        if not self.closed:
            self._flush_ready(final=True)
        super().close()
