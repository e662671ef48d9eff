"""Voice activity detection: a WebRTC gate, a Silero decision, hysteresis.

The default path decides speech with Silero VAD (v6, the onnx model shipped
inside faster-whisper, ``faster_whisper/assets/silero_vad_v6.onnx``), run
incrementally on 512-sample windows (32 ms at 16 kHz) with its LSTM state
carried from window to window. That is exactly what
``faster_whisper.vad.SileroVADModel.__call__`` computes over a whole file in one
batch (its batch axis is the time axis), only one window at a time, so a live
stream gets the same probabilities as a file (checked in the tests).

WebRTC VAD (``webrtcvad``, package ``webrtcvad-wheels``) runs first on
10/20/30 ms int16 frames as a cheap *gate*: while it has heard no speech frame
for ``gate_hangover_ms``, Silero is skipped and the window's probability is 0.
WebRTC VAD alone calls music and white noise speech, so it never decides on
its own: it can only close the gate, never open a segment.

Hysteresis (the rule of Silero's ``get_speech_timestamps``): a segment starts at
the first window whose probability is ``>= onset`` once speech has lasted
``min_speech_ms`` without dropping below ``offset``; it ends at the first
window below ``offset`` that begins a run of ``min_silence_ms`` in which no
window reaches ``onset`` again. Segments are widened by ``speech_pad_ms`` on
both sides (never before the previous segment's end or the stream start).

Everything is computed on absolute sample indices, so the segments do not
depend on how the audio was chunked: a 20 ms chunk stream and one 60 s chunk
give the same segments.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from reactivex import Observable

from .._optional import require
from ..errors import ClosedError, ConfigError
from ..types import AudioChunk, SpeechSegment
from ._stream import SAMPLE_RATE_HZ, SampleTimeline, as_mono_float32

__all__ = ["VadSettings", "VadStats", "VoiceActivityDetector", "detect_speech", "silero_probabilities"]

log = logging.getLogger(__name__)

#: Silero VAD window at 16 kHz (the model's fixed input size), and the context it prepends.
WINDOW_SAMPLES = 512
_CONTEXT_SAMPLES = 64
_WINDOW_NS = WINDOW_SAMPLES * 1_000_000_000 // SAMPLE_RATE_HZ  # 32 ms


@dataclass(frozen=True, slots=True)
class VadSettings:
    """How speech is told from non-speech.

    Attributes:
        onset: Silero probability at or above which speech starts (Silero's ``threshold``).
        offset: probability below which speech may end (Silero's ``neg_threshold``);
            ``offset <= onset``.
        min_speech_ms: speech must last this long (ms) before a segment opens;
            shorter bursts (clicks, coughs) are ignored.
        min_silence_ms: a segment closes after this much non-speech (ms); shorter
            pauses stay inside it. The segment is emitted this long after its end.
        speech_pad_ms: each segment is widened by this much (ms) on both sides,
            clamped so segments never overlap.
        webrtc_gate: run WebRTC VAD first and skip Silero while it hears no speech.
        webrtc_mode: WebRTC aggressiveness 0 (most permissive) to 3. A gate should be
            permissive: 1 by default.
        webrtc_frame_ms: WebRTC frame length, 10, 20 or 30 ms.
        gate_hangover_ms: the gate stays open this long (ms) after WebRTC's last speech frame.
        gate_warmup_windows: when the gate re-opens, Silero's state is rebuilt from this
            many preceding 32 ms windows (its LSTM needs a little context).
    """

    onset: float = 0.5
    offset: float = 0.35
    min_speech_ms: int = 250
    min_silence_ms: int = 1200
    speech_pad_ms: int = 300
    webrtc_gate: bool = True
    webrtc_mode: int = 1
    webrtc_frame_ms: int = 30
    gate_hangover_ms: int = 480
    gate_warmup_windows: int = 4

    def __post_init__(self) -> None:
        for name in ("onset", "offset"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ConfigError(f"VadSettings: {name} must be a probability, got {v!r}")
        for name in ("min_speech_ms", "min_silence_ms", "speech_pad_ms", "gate_hangover_ms", "gate_warmup_windows",
                     "webrtc_mode", "webrtc_frame_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ConfigError(f"VadSettings: {name} must be an int, got {v!r}")
        if not isinstance(self.webrtc_gate, bool):
            raise ConfigError(f"VadSettings: webrtc_gate must be True or False, got {self.webrtc_gate!r}")
        if not 0.0 < self.offset <= self.onset < 1.0:
            raise ConfigError(
                f"VadSettings: need 0 < offset <= onset < 1, got onset={self.onset}, offset={self.offset}")
        for name in ("min_speech_ms", "min_silence_ms", "speech_pad_ms", "gate_hangover_ms", "gate_warmup_windows"):
            if getattr(self, name) < 0:
                raise ConfigError(f"VadSettings: {name} must be >= 0, got {getattr(self, name)}")
        if self.webrtc_mode not in (0, 1, 2, 3):
            raise ConfigError(f"VadSettings: webrtc_mode must be 0, 1, 2 or 3, got {self.webrtc_mode}")
        if self.webrtc_frame_ms not in (10, 20, 30):
            raise ConfigError(f"VadSettings: webrtc_frame_ms must be 10, 20 or 30, got {self.webrtc_frame_ms}")


@dataclass(slots=True)
class VadStats:
    """Counters of one detector (updated by the thread that pushes audio).

    Attributes:
        audio_s: seconds of audio processed.
        windows: 32 ms Silero windows processed.
        silero_windows: windows Silero actually ran on (the rest were gated).
        webrtc_frames: WebRTC frames processed.
        webrtc_speech_frames: of those, the ones WebRTC called speech.
        segments: speech segments closed.
        speech_s: total seconds inside closed segments.
        compute_s: wall seconds spent in the detector.
    """

    audio_s: float = 0.0
    windows: int = 0
    silero_windows: int = 0
    webrtc_frames: int = 0
    webrtc_speech_frames: int = 0
    segments: int = 0
    speech_s: float = 0.0
    compute_s: float = 0.0

    @property
    def rtf(self) -> float:
        """Real-time factor: compute seconds per second of audio (0 before any audio)."""
        return self.compute_s / self.audio_s if self.audio_s else 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict (for JSON and logs)."""
        return {
            "audio_s": round(self.audio_s, 3),
            "windows": self.windows,
            "silero_windows": self.silero_windows,
            "webrtc_frames": self.webrtc_frames,
            "webrtc_speech_frames": self.webrtc_speech_frames,
            "segments": self.segments,
            "speech_s": round(self.speech_s, 3),
            "compute_s": round(self.compute_s, 4),
            "rtf": round(self.rtf, 5),
        }


class _Silero:
    """Silero VAD v6 run one 512-sample window at a time, state carried between calls."""

    def __init__(self) -> None:
        vad = require("faster_whisper.vad", "asr")
        # One shared onnxruntime session (InferenceSession.run is thread-safe); the
        # recurrent state lives here, per stream.
        self._session = vad.get_vad_model().session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT_SAMPLES, dtype=np.float32)

    def __call__(self, window: np.ndarray) -> float:
        x = np.concatenate([self._context, window])[None, :]
        out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._context = window[-_CONTEXT_SAMPLES:].copy()
        return float(out[0])


def silero_probabilities(samples: np.ndarray) -> np.ndarray:
    """Silero speech probability of each 512-sample window of 16 kHz audio (no gate).

    A convenience for analysis and tests: the same model and state handling as
    the detector, without WebRTC gating or hysteresis. The last partial window
    is zero-padded.

    Args:
        samples: (n,) float32 mono at 16 kHz.

    Returns:
        (ceil(n / 512),) float32 probabilities in [0, 1].
    """
    samples = np.asarray(samples, dtype=np.float32)
    n_windows = -(-len(samples) // WINDOW_SAMPLES)
    padded = np.zeros(n_windows * WINDOW_SAMPLES, dtype=np.float32)
    padded[: len(samples)] = samples
    model = _Silero()
    return np.array([model(padded[i * WINDOW_SAMPLES:(i + 1) * WINDOW_SAMPLES]) for i in range(n_windows)],
                    dtype=np.float32)


@dataclass(frozen=True, slots=True)
class _Event:
    """A segment boundary decided by the hysteresis, in absolute sample indices."""

    kind: str  # "start" or "end"
    sample: int  # padded boundary: first sample of speech ("start") or one past the last ("end")
    probability: float = 1.0  # mean window probability over the segment ("end" only)
    start_sample: int = 0  # the matching padded start ("end" only)


class _VadCore:
    """The detector on absolute sample indices: gate, Silero, hysteresis.

    ``process(samples)`` consumes samples continuing the stream and returns, per
    complete 32 ms window, ``(window_end_sample, probability, events)``.
    ``flush()`` pads the last partial window, closes any open segment at the real
    end of the audio, and resets the model state (a new run starts clean).
    """

    def __init__(self, settings: VadSettings, stats: VadStats) -> None:
        self.settings = settings
        self.stats = stats
        self._silero = _Silero()
        self._webrtc: Any = None  # made per run in _reset_run_state
        self._frame_samples = SAMPLE_RATE_HZ * settings.webrtc_frame_ms // 1000
        self._min_speech_windows = max(1, -(-settings.min_speech_ms * SAMPLE_RATE_HZ // (1000 * WINDOW_SAMPLES)))
        self._min_silence_windows = max(1, -(-settings.min_silence_ms * SAMPLE_RATE_HZ // (1000 * WINDOW_SAMPLES)))
        self._pad_samples = settings.speech_pad_ms * SAMPLE_RATE_HZ // 1000
        self._hangover_samples = settings.gate_hangover_ms * SAMPLE_RATE_HZ // 1000
        self._pending = np.zeros(0, dtype=np.float32)
        self._base = 0  # absolute index of self._pending[0]
        self._run_start = 0  # first sample of the current run (segments never start before it)
        self._reset_run_state()

    def _reset_run_state(self) -> None:
        if self.settings.webrtc_gate:
            # WebRTC VAD adapts its noise model to all it has heard and has no reset: a new
            # one per run, so that a run's decisions never depend on the audio before it
            self._webrtc = require("webrtcvad", "asr").Vad(self.settings.webrtc_mode)
        self._webrtc_pos = self._base  # next WebRTC frame start
        self._window_pos = self._base  # next Silero window start
        self._last_voice_end = -(1 << 62)  # end of WebRTC's last speech frame
        self._gate_open = False
        self._warmup: deque[np.ndarray] = deque(maxlen=self.settings.gate_warmup_windows)
        self._silero.reset()
        # hysteresis
        self._in_speech = False
        self._candidate: int | None = None  # first sample of the window where a possible onset began
        self._silence_start: int | None = None  # first sample of the window where a possible offset began
        self._segment_start = self._run_start
        self._prob_sum = 0.0
        self._prob_count = 0
        self._last_end_sample = self._run_start

    @property
    def in_speech(self) -> bool:
        """True while a segment is open (after its onset was confirmed)."""
        return self._in_speech

    def _gate(self, window_end: int) -> bool:
        """Run WebRTC on every whole frame ending by ``window_end``; is the gate open?"""
        if self._webrtc is None:
            return True
        n = self._frame_samples
        while self._webrtc_pos + n <= window_end:
            lo = self._webrtc_pos - self._base
            frame = self._pending[lo:lo + n]
            pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
            self.stats.webrtc_frames += 1
            if self._webrtc.is_speech(pcm, SAMPLE_RATE_HZ):
                self.stats.webrtc_speech_frames += 1
                self._last_voice_end = self._webrtc_pos + n
            self._webrtc_pos += n
        window_start = window_end - WINDOW_SAMPLES
        return self._last_voice_end >= window_start - self._hangover_samples

    def _probability(self, window: np.ndarray, window_end: int) -> float:
        is_open = self._gate(window_end)
        if not is_open:
            if self._gate_open:
                self._gate_open = False
            self._warmup.append(window)
            return 0.0
        if not self._gate_open and self._webrtc is not None:
            # Re-opening: rebuild the recurrent state from the last few windows.
            self._silero.reset()
            for past in self._warmup:
                self._silero(past)
                self.stats.silero_windows += 1
            self._warmup.clear()
        self._gate_open = True
        self.stats.silero_windows += 1
        return self._silero(window)

    def _hysteresis(self, window_start: int, p: float) -> list[_Event]:
        s = self.settings
        events: list[_Event] = []
        if not self._in_speech:
            if self._candidate is None:
                if p >= s.onset:
                    self._candidate = window_start
                    self._prob_sum, self._prob_count = p, 1
            elif p < s.offset:
                self._candidate = None
            else:
                self._prob_sum += p
                self._prob_count += 1
            if (self._candidate is not None
                    and (window_start - self._candidate) // WINDOW_SAMPLES + 1 >= self._min_speech_windows):
                self._in_speech = True
                self._silence_start = None
                start = max(self._candidate - self._pad_samples, self._last_end_sample, self._run_start)
                self._segment_start = start
                events.append(_Event("start", start))
            return events
        self._prob_sum += p
        self._prob_count += 1
        if p >= s.onset:
            self._silence_start = None
        elif p < s.offset and self._silence_start is None:
            self._silence_start = window_start
            # the segment's mean probability leaves out its closing silence
            self._sum_at_silence = (self._prob_sum - p, self._prob_count - 1)
        if (self._silence_start is not None
                and (window_start - self._silence_start) // WINDOW_SAMPLES + 1 >= self._min_silence_windows):
            end = min(self._silence_start + self._pad_samples, window_start + WINDOW_SAMPLES)
            events.append(self._close(end))
        return events

    def _close(self, end: int) -> _Event:
        if self._silence_start is not None:
            self._prob_sum, self._prob_count = self._sum_at_silence
        self._in_speech = False
        self._candidate = None
        self._silence_start = None
        event = _Event("end", end, self._prob_sum / max(self._prob_count, 1), self._segment_start)
        self._last_end_sample = end
        self.stats.segments += 1
        self.stats.speech_s += (end - self._segment_start) / SAMPLE_RATE_HZ
        return event

    def process(self, samples: np.ndarray) -> list[tuple[int, float, list[_Event]]]:
        """Consume samples continuing the stream; per complete window: (end, prob, events)."""
        started = time.perf_counter()
        self._pending = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        self.stats.audio_s += len(samples) / SAMPLE_RATE_HZ
        out: list[tuple[int, float, list[_Event]]] = []
        end_available = self._base + len(self._pending)
        while self._window_pos + WINDOW_SAMPLES <= end_available:
            lo = self._window_pos - self._base
            window = self._pending[lo:lo + WINDOW_SAMPLES]
            window_end = self._window_pos + WINDOW_SAMPLES
            p = self._probability(window, window_end)
            self.stats.windows += 1
            events = self._hysteresis(self._window_pos, p)
            out.append((window_end, p, events))
            self._window_pos = window_end
        # keep only what the next window and WebRTC frame still need
        keep_from = min(self._window_pos, self._webrtc_pos)
        if keep_from > self._base:
            self._pending = self._pending[keep_from - self._base:]
            self._base = keep_from
        self.stats.compute_s += time.perf_counter() - started
        return out

    def flush(self) -> list[tuple[int, float, list[_Event]]]:
        """End of the run: pad the last partial window, close an open segment, reset."""
        real_end = self._base + len(self._pending)
        out: list[tuple[int, float, list[_Event]]] = []
        remainder = real_end - self._window_pos
        if remainder > 0:
            # pad so both the last Silero window and the last WebRTC frame are whole
            pad = max(WINDOW_SAMPLES - remainder, 0)
            webrtc_rem = (real_end - self._webrtc_pos) % self._frame_samples
            pad = max(pad, (self._frame_samples - webrtc_rem) % self._frame_samples)
            audio_s = self.stats.audio_s
            out = self.process(np.zeros(pad, dtype=np.float32))
            self.stats.audio_s = audio_s  # padding is not audio
        # events decided on padding past the real end are clamped to it
        fixed: list[tuple[int, float, list[_Event]]] = []
        for window_end, p, events in out:
            fixed.append((min(window_end, real_end), p, [
                _Event(e.kind, min(e.sample, real_end), e.probability, min(e.start_sample, real_end)) for e in events
            ]))
        if self._in_speech:
            event = self._close(real_end)
            if fixed:
                fixed[-1][2].append(event)
            else:
                fixed.append((real_end, 0.0, [event]))
        self._pending = np.zeros(0, dtype=np.float32)
        self._base = real_end
        self._run_start = real_end
        self._reset_run_state()
        return fixed

    def restart_at(self, index: int) -> None:
        """Start a new run at absolute sample ``index`` (after a flush and a gap)."""
        self._base = index
        self._run_start = index
        self._reset_run_state()


class VoiceActivityDetector:
    """Push audio in, get closed speech segments out (no reactivex needed).

    Example::

        with VoiceActivityDetector() as vad:
            for chunk in chunks:
                for segment in vad.push(chunk):
                    print(segment.start_ns, segment.end_ns)
            tail = vad.flush()

    A segment is returned by the :meth:`push` that completes its closing silence
    (``min_silence_ms`` after its end), or by :meth:`flush` at the end of the
    stream. Timing gaps between chunks longer than 1 s end the open segment
    (see :class:`~streamline.speech._stream.SampleTimeline`).

    Args:
        settings: detection settings (defaults: :class:`VadSettings`).
        source_id: ``source_id`` for the segments; by default the first chunk's.

    Raises:
        MissingExtraError: faster-whisper (Silero) or webrtcvad is not installed.
    """

    def __init__(self, settings: VadSettings | None = None, *, source_id: str | None = None) -> None:
        self.settings = settings or VadSettings()
        self.stats = VadStats()
        self._core = _VadCore(self.settings, self.stats)
        self._timeline = SampleTimeline()
        self._source_id = source_id
        self._closed = False

    @property
    def in_speech(self) -> bool:
        """True while a segment is open."""
        return self._core.in_speech

    def _segments(self, results: list[tuple[int, float, list[_Event]]]) -> list[SpeechSegment]:
        out = []
        for _end, _p, events in results:
            for e in events:
                if e.kind == "end":
                    out.append(SpeechSegment(
                        start_ns=self._timeline.time_ns(e.start_sample),
                        end_ns=self._timeline.time_ns(e.sample),
                        probability=round(e.probability, 4),
                        source_id=self._source_id or "audio",
                    ))
        return out

    def push(self, chunk: AudioChunk) -> list[SpeechSegment]:
        """Feed one chunk (16 kHz mono float); returns the segments it closed.

        Raises:
            ConfigError: the chunk is not 16 kHz mono float audio.
            ClosedError: the detector was closed.
        """
        if self._closed:
            raise ClosedError("VoiceActivityDetector: push() after close()")
        samples = as_mono_float32(chunk, who="VoiceActivityDetector")
        if self._source_id is None:
            self._source_id = chunk.source_id
        out: list[SpeechSegment] = []
        for piece in self._timeline.admit(chunk.pts_ns, samples):
            if piece.samples is None:
                out.extend(self._segments(self._core.flush()))
                self._core.restart_at(piece.index)
            else:
                out.extend(self._segments(self._core.process(piece.samples)))
        return out

    def flush(self) -> list[SpeechSegment]:
        """End of stream: close the open segment at the end of the audio."""
        if self._closed:
            raise ClosedError("VoiceActivityDetector: flush() after close()")
        return self._segments(self._core.flush())

    def close(self) -> None:
        """Release the detector (idempotent)."""
        self._closed = True

    def __enter__(self) -> VoiceActivityDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def detect_speech(settings: VadSettings | None = None) -> Callable[[Observable[AudioChunk]], Observable[SpeechSegment]]:
    """Operator: audio chunks in, speech segments ``[start_ns, end_ns)`` out.

    Runs on the thread that delivers the audio (the detector costs well under 1%
    of real time, see ``benchmarks/speech_bench.py``); each subscription gets its
    own detector. A segment is emitted once its closing silence has been heard;
    at completion the open segment is closed at the end of the audio.

    Args:
        settings: detection settings (defaults: :class:`VadSettings`).

    Returns:
        A function from ``Observable[AudioChunk]`` (16 kHz mono float32) to
        ``Observable[SpeechSegment]``. Bad chunks (wrong rate) end the stream
        with ``on_error(ConfigError)``.
    """
    from ..flow import engine_operator

    settings = settings or VadSettings()
    return engine_operator(
        lambda: VoiceActivityDetector(settings),
        lambda detector, chunk: detector.push(chunk),
        lambda detector: detector.flush(),
    )
