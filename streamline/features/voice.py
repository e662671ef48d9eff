"""Voice features: energy, F0 with voicing, log-mel and MFCC every 10 ms.

Frames
------
At the default 16 kHz, frame ``k`` of a *segment* (a run of contiguous audio)
is centred on sample ``k * hop`` of the segment, ``hop`` = 10 ms (160 samples);
its timestamp ``pts_ns`` is that centre on the session timeline,
``segment_pts_ns + round(k * hop * 1e9 / sample_rate_hz)``. Analysis windows:

* energy and spectrum: 25 ms (400 samples) centred on the frame, Hann window
  for the spectrum, FFT size 512;
* F0 (YIN): an integration window of 25 ms and lags up to ``1 / f0_min_hz``,
  i.e. ``[c - 333, c + 334)`` samples at the defaults.

Samples outside the segment count as zeros, so frames run from the segment's
first sample to its last (``ceil(n / hop)`` frames for ``n`` samples), and a
frame is emitted as soon as its look-ahead has arrived (about 21 ms of audio
at the defaults), or at the end of the segment.

Feature vector (float32, :data:`VOICE_FEATURE_NAMES`, 57 values)::

    0      log_energy_db   10*log10(mean(x^2) + 1e-10) over the 25 ms window (dBFS; -100 = digital silence)
    1      f0_hz           YIN fundamental frequency, 0.0 when unvoiced
    2      voicing_prob    1 - YIN's cumulative-mean-normalised dip, in [0, 1] (0 below the energy floor)
    3      voiced          1.0 when voiced (dip < voicing_threshold and energy >= energy_floor_db) else 0.0
    4-43   log_mel_00..39  10*log10(mel power + 1e-10), 40 Slaney mel bands 20 Hz - 8 kHz (librosa's filters)
    44-56  mfcc_00..12     orthonormal DCT-II of the 40 log-mel values (librosa.feature.mfcc's definition)

No deltas: the fusion encoders see the frame sequence and learn their own
temporal filters, and deltas would add two frames of look-ahead.

Segments and gaps
-----------------
A chunk whose ``pts_ns`` is later than the end of the audio so far (by more than
``gap_tolerance_ns``) ends the current segment (its remaining frames are
emitted, zero-padded) and starts a new one at that time: no frame is invented
across the hole. A chunk that starts earlier than expected overlaps audio
already analysed; the overlapping samples are dropped (counted in
``stats.overlap_samples``). Times inside a segment come from sample counts, so
chunking never changes them: 20 ms, 100 ms or 1 s chunks give bit-identical
frames, and :func:`voice_features_array` gives the same numbers as the stream.

Sources: YIN, de Cheveigné & Kawahara (2002), J. Acoust. Soc. Am. 111(4);
mel scale and filter normalisation, Slaney's Auditory Toolbox as in librosa.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from reactivex import Observable

from ..errors import ConfigError, MediaError
from ..types import AudioChunk
from . import _voice_kernels as _k

__all__ = [
    "VOICE_FEATURE_NAMES",
    "VOICE_FEATURE_DIM",
    "N_MELS",
    "N_MFCC",
    "VoiceSettings",
    "VoiceFrame",
    "VoiceStats",
    "VoiceFeatureExtractor",
    "voice_features",
    "voice_features_array",
    "stack_voice_frames",
    "warmup_voice_kernels",
]

log = logging.getLogger(__name__)

_NS_PER_S = 1_000_000_000

#: Number of log-mel bands in the feature vector.
N_MELS = 40
#: Number of MFCCs in the feature vector.
N_MFCC = 13
#: Names of the feature vector's entries, in order (see the module docstring).
VOICE_FEATURE_NAMES: tuple[str, ...] = (
    "log_energy_db",
    "f0_hz",
    "voicing_prob",
    "voiced",
    *(f"log_mel_{i:02d}" for i in range(N_MELS)),
    *(f"mfcc_{i:02d}" for i in range(N_MFCC)),
)
#: Length of the feature vector (57).
VOICE_FEATURE_DIM = len(VOICE_FEATURE_NAMES)

_I_ENERGY, _I_F0, _I_PROB, _I_VOICED = 0, 1, 2, 3
_MEL_SLICE = slice(4, 4 + N_MELS)
_MFCC_SLICE = slice(4 + N_MELS, 4 + N_MELS + N_MFCC)


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    """How voice features are computed (hashable, printable; build with :meth:`build`).

    Attributes:
        sample_rate_hz: the input's sample rate; chunks at another rate are refused
            (the sources resample to 16 kHz). Must be a multiple of 100 between 8 kHz
            and 48 kHz so a 10 ms hop is a whole number of samples.
        f0_min_hz: lowest F0 searched (sets the longest YIN lag), Hz.
        f0_max_hz: highest F0 searched, Hz; at most ``sample_rate_hz / 4``.
        yin_threshold: YIN's absolute threshold: the first dip of the normalised
            difference below it is taken as the period (0.1-0.2 in the paper).
        voicing_threshold: a frame is voiced when its dip is below this (>= yin_threshold).
        energy_floor_db: frames quieter than this (dBFS over 25 ms) are unvoiced.
        gap_tolerance_ns: a chunk starting up to this much later than expected is
            treated as contiguous (timestamp rounding); later starts a new segment.
    """

    sample_rate_hz: int = 16000
    f0_min_hz: float = 60.0
    f0_max_hz: float = 500.0
    yin_threshold: float = 0.15
    voicing_threshold: float = 0.3
    energy_floor_db: float = -60.0
    gap_tolerance_ns: int = 1_000_000

    def __post_init__(self) -> None:
        sr = self.sample_rate_hz
        if not isinstance(sr, int) or isinstance(sr, bool) or not (8000 <= sr <= 48000) or sr % 100:
            raise ConfigError(
                f"VoiceSettings.sample_rate_hz must be an int multiple of 100 in [8000, 48000], got {sr!r}"
            )
        if not (0 < self.f0_min_hz < self.f0_max_hz <= sr / 4):
            raise ConfigError(
                "VoiceSettings: need 0 < f0_min_hz < f0_max_hz <= sample_rate_hz / 4, got "
                f"f0_min_hz={self.f0_min_hz!r}, f0_max_hz={self.f0_max_hz!r}, sample_rate_hz={sr}"
            )
        if not (0 < self.yin_threshold <= self.voicing_threshold <= 1):
            raise ConfigError(
                "VoiceSettings: need 0 < yin_threshold <= voicing_threshold <= 1, got "
                f"{self.yin_threshold!r} and {self.voicing_threshold!r}"
            )
        if not math.isfinite(self.energy_floor_db):
            raise ConfigError(f"VoiceSettings.energy_floor_db must be finite, got {self.energy_floor_db!r}")
        if self.gap_tolerance_ns < 0:
            raise ConfigError(f"VoiceSettings.gap_tolerance_ns must be >= 0, got {self.gap_tolerance_ns!r}")

    @property
    def hop_samples(self) -> int:
        """Samples between frame centres (10 ms)."""
        return self.sample_rate_hz // 100

    @property
    def window_samples(self) -> int:
        """Samples in the energy / spectrum / YIN integration window (25 ms)."""
        return self.sample_rate_hz // 40

    @property
    def hop_ns(self) -> int:
        """Time between frames, ns (10 ms)."""
        return 10_000_000

    @property
    def feature_names(self) -> tuple[str, ...]:
        """:data:`VOICE_FEATURE_NAMES` (the layout does not depend on the settings)."""
        return VOICE_FEATURE_NAMES

    def build(self) -> VoiceFeatureExtractor:
        """A new streaming extractor with these settings."""
        return VoiceFeatureExtractor(self)


@dataclass(frozen=True, slots=True, eq=False)
class VoiceFrame:
    """Voice features of one 10 ms frame.

    Attributes:
        pts_ns: time of the frame's centre on the session timeline, int ns.
        features: (57,) float32, laid out as :data:`VOICE_FEATURE_NAMES`. Treat as read-only.
        source_id: the audio source the frame came from.
    """

    pts_ns: int
    features: np.ndarray
    source_id: str = "audio"

    @property
    def log_energy_db(self) -> float:
        """Log energy over the 25 ms window, dBFS (-100 for digital silence)."""
        return float(self.features[_I_ENERGY])

    @property
    def f0_hz(self) -> float:
        """Fundamental frequency in Hz, 0.0 when unvoiced."""
        return float(self.features[_I_F0])

    @property
    def voicing_prob(self) -> float:
        """YIN voicing probability (1 - dip) in [0, 1]."""
        return float(self.features[_I_PROB])

    @property
    def voiced(self) -> bool:
        """True when the frame is voiced."""
        return bool(self.features[_I_VOICED] > 0.5)

    @property
    def log_mel_db(self) -> np.ndarray:
        """(40,) float32 log-mel powers, dB."""
        return self.features[_MEL_SLICE]

    @property
    def mfcc(self) -> np.ndarray:
        """(13,) float32 MFCCs."""
        return self.features[_MFCC_SLICE]

    @property
    def t_s(self) -> float:
        """``pts_ns`` in float seconds (a convenience)."""
        return self.pts_ns / 1e9


@dataclass(slots=True)
class VoiceStats:
    """Counters of one extractor.

    Attributes:
        chunks: chunks pushed.
        samples: samples received (before overlap trimming).
        frames: frames emitted.
        segments: contiguous segments started (1 + gaps).
        gaps: holes in the input (a chunk later than expected).
        overlap_samples: samples dropped because they overlapped audio already analysed.
        compute_s: seconds spent computing features (for the real-time factor).
    """

    chunks: int = 0
    samples: int = 0
    frames: int = 0
    segments: int = 0
    gaps: int = 0
    overlap_samples: int = 0
    compute_s: float = 0.0

    def real_time_factor(self, sample_rate_hz: int) -> float:
        """Compute time divided by audio duration (0 before any audio)."""
        audio_s = self.samples / sample_rate_hz
        return self.compute_s / audio_s if audio_s > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return {
            "chunks": self.chunks,
            "samples": self.samples,
            "frames": self.frames,
            "segments": self.segments,
            "gaps": self.gaps,
            "overlap_samples": self.overlap_samples,
            "compute_s": round(self.compute_s, 6),
        }


class _Plan:
    """Constant tables and sizes derived from settings (shared, read-only)."""

    __slots__ = (
        "settings", "hop", "win", "n_fft", "window", "rev", "tw_re", "tw_im", "mel_fb", "dct",
        "tau_min", "tau_max", "yin_lookback", "lookback", "lookahead",
    )

    def __init__(self, settings: VoiceSettings) -> None:
        sr = settings.sample_rate_hz
        self.settings = settings
        self.hop = settings.hop_samples
        self.win = settings.window_samples
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.window = _k.hann_window(self.win)
        self.rev, tw = _k.fft_tables(self.n_fft)
        self.tw_re = np.ascontiguousarray(tw.real)
        self.tw_im = np.ascontiguousarray(tw.imag)
        self.mel_fb = _k.mel_filterbank(sr, self.n_fft, N_MELS, 20.0, min(8000.0, sr / 2.0))
        self.dct = _k.dct_matrix(N_MFCC, N_MELS)
        self.tau_min = max(2, int(math.floor(sr / settings.f0_max_hz)))
        self.tau_max = int(math.ceil(sr / settings.f0_min_hz))
        yin_span = self.win + self.tau_max + 1
        self.yin_lookback = yin_span // 2
        self.lookback = max(self.win // 2, self.yin_lookback)
        self.lookahead = max(self.win - self.win // 2, yin_span - self.yin_lookback)

    def compute(self, buf: np.ndarray, first_centre: int, n_frames: int) -> np.ndarray:
        out = np.empty((n_frames, VOICE_FEATURE_DIM), dtype=np.float32)
        if n_frames:
            s = self.settings
            _k.voice_frames_kernel(
                buf, first_centre, n_frames, self.hop, self.win, self.window, self.rev, self.tw_re,
                self.tw_im, self.mel_fb, self.dct, self.yin_lookback, self.tau_min, self.tau_max,
                float(s.yin_threshold), float(s.voicing_threshold), float(s.energy_floor_db),
                float(s.sample_rate_hz), out,
            )
        return out


_PLANS: dict[VoiceSettings, _Plan] = {}
_PLANS_LOCK = threading.Lock()


def _plan(settings: VoiceSettings) -> _Plan:
    with _PLANS_LOCK:
        plan = _PLANS.get(settings)
        if plan is None:
            plan = _PLANS[settings] = _Plan(settings)
        return plan


_WARM = False


def warmup_voice_kernels() -> None:
    """Compile (or load from numba's cache) the kernels now, not on the first chunk.

    Called by :class:`VoiceFeatureExtractor` and :func:`voice_features_array`;
    the first compile takes a few seconds, later runs load the on-disk cache.
    """
    global _WARM
    if _WARM:
        return
    t0 = time.perf_counter()
    plan = _plan(VoiceSettings())
    buf = np.zeros(plan.lookback + plan.lookahead + plan.hop, dtype=np.float32)
    plan.compute(buf, plan.lookback, 1)
    _WARM = True
    log.debug("voice feature kernels ready in %.2f s", time.perf_counter() - t0)


def _centre_ns(segment_pts_ns: int, index: int, sample_rate_hz: int) -> int:
    """Session time of segment sample ``index`` (exact integer rounding)."""
    return segment_pts_ns + (index * _NS_PER_S + sample_rate_hz // 2) // sample_rate_hz


def _check_samples(samples: Any, what: str) -> np.ndarray:
    if not isinstance(samples, np.ndarray):
        raise MediaError(f"{what}: samples must be a numpy array, got {type(samples).__name__}")
    if samples.ndim != 1:
        raise MediaError(f"{what}: samples must be mono, shape (n,), got shape {samples.shape}")
    return samples


_RESTART_BACK_NS = 1_000_000_000  # a chunk this far before the audio so far is a restart, not an overlap


def _chunk_samples(chunk: Any, sample_rate_hz: int, consumer: str, rate_hint: str) -> tuple[np.ndarray, str]:
    """A streaming extractor's checks on a pushed chunk: ``(samples, what)``, ``what`` naming the chunk.

    Raises:
        MediaError: not an AudioChunk; samples not 1-D float32 or not finite.
        ConfigError: the chunk is not at ``sample_rate_hz`` (the message ends with ``rate_hint``).
    """
    if not isinstance(chunk, AudioChunk):
        raise MediaError(f"{consumer}: expected an AudioChunk, got {type(chunk).__name__}")
    what = f"{consumer}: chunk from {chunk.source_id!r} at {chunk.pts_ns} ns"
    samples = _check_samples(chunk.samples, what)
    if samples.dtype != np.float32:
        raise MediaError(f"{what}: samples must be float32 in [-1, 1], got dtype {samples.dtype}")
    if chunk.sample_rate_hz != sample_rate_hz:
        raise ConfigError(f"{what}: sample rate is {chunk.sample_rate_hz} Hz but the {consumer} expect "
                          f"{sample_rate_hz} Hz ({rate_hint})")
    if samples.size and not np.isfinite(samples).all():
        raise MediaError(f"{what}: samples contain NaN or infinity")
    return samples, what


def _place_chunk(expected_ns: int | None, pts_ns: int, samples: np.ndarray, sample_rate_hz: int,
                 tolerance_ns: int) -> tuple[str, np.ndarray, int]:
    """Where a chunk goes relative to the current segment of a streaming extractor.

    Returns ``(how, samples, overlap)``: ``"new"`` when there is no segment, ``"gap"``
    when the chunk starts more than ``tolerance_ns`` after ``expected_ns`` or more than
    :data:`_RESTART_BACK_NS` before it (a source that restarted its clock: the caller
    ends the segment and starts another at ``pts_ns``, whose items the synchronizer
    then counts as late), else ``"append"`` with the samples that overlap audio
    already received (``overlap`` of them) dropped.
    """
    if expected_ns is None:
        return "new", samples, 0
    if pts_ns > expected_ns + tolerance_ns:
        return "gap", samples, 0
    if pts_ns < expected_ns - _RESTART_BACK_NS:
        log.warning("audio timestamps went back by %.3f s (at %d ns): starting a new segment",
                    (expected_ns - pts_ns) / _NS_PER_S, pts_ns)
        return "gap", samples, 0
    if pts_ns < expected_ns - tolerance_ns:
        overlap = min(-(-(expected_ns - pts_ns) * sample_rate_hz // _NS_PER_S), samples.shape[0])
        return "append", samples[overlap:], overlap
    return "append", samples, 0


class VoiceFeatureExtractor:
    """Streaming voice features: push chunks, get the frames they complete.

    Keeps only the samples later frames still need (about 42 ms at 16 kHz)
    between calls. Not thread-safe: use one extractor per stream, from one thread.

    Args:
        settings: how to compute (default :class:`VoiceSettings()`).
    """

    def __init__(self, settings: VoiceSettings | None = None) -> None:
        self.settings = settings if settings is not None else VoiceSettings()
        if not isinstance(self.settings, VoiceSettings):
            raise ConfigError(f"settings must be a VoiceSettings, got {type(settings).__name__}")
        self._plan = _plan(self.settings)
        warmup_voice_kernels()
        self.stats = VoiceStats()
        self._source_id = "audio"
        self._reset_segment(None)

    def _reset_segment(self, pts_ns: int | None) -> None:
        self._seg_pts_ns = pts_ns
        self._received = 0  # samples of the current segment received so far
        self._next_frame = 0
        # buffer holds segment samples [buf_start, buf_start + len(buf)); negative indices are zeros
        self._buf_start = -self._plan.lookback
        self._buf = np.zeros(self._plan.lookback, dtype=np.float32)

    @property
    def expected_pts_ns(self) -> int | None:
        """Where the next chunk should start to continue the current segment, or None."""
        if self._seg_pts_ns is None:
            return None
        return _centre_ns(self._seg_pts_ns, self._received, self.settings.sample_rate_hz)

    @property
    def buffered_samples(self) -> int:
        """Samples held for frames not yet emitted (bounded: lookback + lookahead + one chunk)."""
        return int(self._buf.shape[0])

    def _emit(self, n_frames: int) -> list[VoiceFrame]:
        plan = self._plan
        first_centre = self._next_frame * plan.hop - self._buf_start
        t0 = time.perf_counter()
        feats = plan.compute(self._buf, first_centre, n_frames)
        feats.flags.writeable = False
        self.stats.compute_s += time.perf_counter() - t0
        sr = self.settings.sample_rate_hz
        assert self._seg_pts_ns is not None
        frames = [
            VoiceFrame(_centre_ns(self._seg_pts_ns, (self._next_frame + i) * plan.hop, sr), feats[i], self._source_id)
            for i in range(n_frames)
        ]
        self._next_frame += n_frames
        self.stats.frames += n_frames
        # keep exactly what the next frame needs
        keep_from = self._next_frame * plan.hop - plan.lookback
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:].copy()
            self._buf_start = keep_from
        return frames

    def _flush_segment(self) -> list[VoiceFrame]:
        """Emit the current segment's remaining frames, zero-padding past its end."""
        if self._seg_pts_ns is None:
            return []
        hop = self._plan.hop
        total = -(-self._received // hop)  # frames whose centre is inside the segment
        n = total - self._next_frame
        frames: list[VoiceFrame] = []
        if n > 0:
            self._buf = np.concatenate([self._buf, np.zeros(self._plan.lookahead + hop, dtype=np.float32)])
            frames = self._emit(n)
        return frames

    def push(self, chunk: AudioChunk) -> list[VoiceFrame]:
        """Add a chunk; return the frames it completes, in time order.

        Raises:
            ConfigError: the chunk's sample rate is not ``settings.sample_rate_hz``.
            MediaError: the samples are not a 1-D float32 array of finite values.
        """
        sr = self.settings.sample_rate_hz
        samples, _ = _chunk_samples(chunk, sr, "voice features",
                                    "resample at the source, or set VoiceSettings.sample_rate_hz")
        self.stats.chunks += 1
        self.stats.samples += samples.shape[0]
        self._source_id = chunk.source_id
        frames: list[VoiceFrame] = []
        how, samples, overlap = _place_chunk(self.expected_pts_ns, chunk.pts_ns, samples, sr, self.settings.gap_tolerance_ns)
        if how == "gap":
            frames.extend(self._flush_segment())
            log.debug("voice features: gap before %d ns", chunk.pts_ns)
            self.stats.gaps += 1
        if how != "append":
            self._reset_segment(int(chunk.pts_ns))
            self.stats.segments += 1
        self.stats.overlap_samples += overlap
        if samples.shape[0]:
            self._buf = np.concatenate([self._buf, samples])
            self._received += samples.shape[0]
            plan = self._plan
            ready = (self._received - plan.lookahead) // plan.hop + 1 if self._received >= plan.lookahead else 0
            n = ready - self._next_frame
            if n > 0:
                frames.extend(self._emit(n))
        return frames

    def flush(self) -> list[VoiceFrame]:
        """End the current segment: emit its remaining frames (zero-padded). Call at end of stream."""
        frames = self._flush_segment()
        self._reset_segment(None)
        return frames

    def reset(self) -> None:
        """Forget the current segment without emitting anything (stats are kept)."""
        self._reset_segment(None)


def voice_features(settings: VoiceSettings | None = None) -> Callable[[Observable[AudioChunk]], Observable[VoiceFrame]]:
    """Reactive operator: ``Observable[AudioChunk]`` to ``Observable[VoiceFrame]``.

    Each subscription gets its own :class:`VoiceFeatureExtractor`; frames are
    emitted on the thread that delivers the chunks, and the last frames at
    completion. Bad chunks (wrong rate, dtype, shape) end the stream with
    ``on_error`` (:class:`ConfigError` or :class:`MediaError`).

    Args:
        settings: how to compute (default :class:`VoiceSettings()`).

    Raises:
        ConfigError: ``settings`` is not a VoiceSettings (at call time).
    """
    settings = settings if settings is not None else VoiceSettings()
    if not isinstance(settings, VoiceSettings):
        raise ConfigError(f"voice_features: settings must be a VoiceSettings, got {type(settings).__name__}")
    warmup_voice_kernels()

    from ..flow import engine_operator

    return engine_operator(
        lambda: VoiceFeatureExtractor(settings),
        lambda extractor, chunk: extractor.push(chunk),
        lambda extractor: extractor.flush(),
        close=lambda extractor: None,  # holds only buffers
    )


def voice_features_array(
    samples: np.ndarray,
    sample_rate_hz: int,
    *,
    settings: VoiceSettings | None = None,
    start_ns: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Voice features of a whole signal at once (feature caches for training).

    Gives exactly the frames the streaming extractor gives for the same audio
    as one contiguous segment starting at ``start_ns``.

    Args:
        samples: (n,) mono floating-point audio in [-1, 1] (converted to float32
            first, as the stream carries float32).
        sample_rate_hz: the samples' rate; must equal ``settings.sample_rate_hz`` (16 kHz by default).
        settings: how to compute (default :class:`VoiceSettings()`).
        start_ns: session time of the first sample.

    Returns:
        ``(times_ns, features)``: (m,) int64 frame-centre times and (m, 57) float32
        features, ``m = ceil(n / hop)``.

    Raises:
        ConfigError: the sample rate does not match the settings.
        MediaError: ``samples`` is not 1-D floating point or holds NaN/infinity.
    """
    settings = settings if settings is not None else VoiceSettings()
    if not isinstance(settings, VoiceSettings):
        raise ConfigError(f"voice_features_array: settings must be a VoiceSettings, got {type(settings).__name__}")
    what = "voice_features_array"
    samples = _check_samples(samples, what)
    if not np.issubdtype(samples.dtype, np.floating):
        raise MediaError(
            f"{what}: samples must be floating point in [-1, 1], got dtype {samples.dtype} "
            "(convert integer PCM with samples / 32768.0)"
        )
    if sample_rate_hz != settings.sample_rate_hz:
        raise ConfigError(
            f"{what}: sample_rate_hz is {sample_rate_hz} but the voice features expect "
            f"{settings.sample_rate_hz} Hz (resample first, or set VoiceSettings.sample_rate_hz)"
        )
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if x.size and not np.isfinite(x).all():
        raise MediaError(f"{what}: samples contain NaN or infinity")
    warmup_voice_kernels()
    plan = _plan(settings)
    n = x.shape[0]
    m = -(-n // plan.hop)
    buf = np.concatenate(
        [np.zeros(plan.lookback, dtype=np.float32), x, np.zeros(plan.lookahead + plan.hop, dtype=np.float32)]
    )
    feats = plan.compute(buf, plan.lookback, m)
    idx = np.arange(m, dtype=np.int64) * plan.hop
    times = start_ns + (idx * _NS_PER_S + settings.sample_rate_hz // 2) // settings.sample_rate_hz
    return times.astype(np.int64), feats


def stack_voice_frames(frames: list[VoiceFrame] | tuple[VoiceFrame, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Frames to arrays: ``(times_ns (m,) int64, features (m, 57) float32)``."""
    if not frames:
        return np.zeros(0, dtype=np.int64), np.zeros((0, VOICE_FEATURE_DIM), dtype=np.float32)
    times = np.fromiter((f.pts_ns for f in frames), dtype=np.int64, count=len(frames))
    return times, np.stack([f.features for f in frames]).astype(np.float32, copy=False)
