"""Turn AudioChunks into one continuous sample stream with an exact time map.

Both the voice activity detector and the streaming recogniser work on absolute
sample indices (``0, 1, 2, ...`` since the first chunk) so that their decisions
do not depend on how the audio was cut into chunks. :class:`SampleTimeline`
maps an index back onto the session timeline and absorbs small timing
irregularities between chunks:

* a chunk that starts later than the previous one ended by more than
  ``tolerance_ns`` leaves a *gap*: gaps up to ``max_fill_ns`` are filled with
  zeros (silence), longer ones end the stream there and start a new *run*
  (the consumers close what is open, as at the end of a stream);
* a chunk that starts earlier than expected overlaps audio already seen: the
  overlapping samples are dropped.

Within a run, ``time(i) = anchor_ns + (i - anchor_index) * 1e9 // rate``. A new
run starts one index after the old one ended, so every index (including the
old run's exclusive end) maps to one time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..types import AudioChunk

__all__ = ["SampleTimeline", "Piece"]

#: The only sample rate the speech models accept (Silero VAD and Whisper).
SAMPLE_RATE_HZ = 16_000


@dataclass(frozen=True, slots=True)
class Piece:
    """A part of an admitted chunk.

    Attributes:
        samples: (n,) float32 samples that continue the current run, or None
            for a run break (a gap longer than ``max_fill_ns``).
        index: absolute index of the first sample (for a break: of the new run).
    """

    samples: np.ndarray | None
    index: int


def as_mono_float32(chunk: AudioChunk, *, who: str) -> np.ndarray:
    """Validate a chunk for the speech models and return its samples as float32.

    Raises:
        ConfigError: the chunk is not 16 kHz, or its samples are not a 1-D float array.
    """
    if chunk.sample_rate_hz != SAMPLE_RATE_HZ:
        raise ConfigError(
            f"{who} needs {SAMPLE_RATE_HZ} Hz mono audio, got a chunk at {chunk.sample_rate_hz} Hz "
            f"from source {chunk.source_id!r}; open the source with sample_rate_hz={SAMPLE_RATE_HZ}"
        )
    samples = np.asarray(chunk.samples)
    if samples.ndim != 1:
        raise ConfigError(
            f"{who} needs mono samples of shape (n,), got shape {samples.shape} from source {chunk.source_id!r}"
        )
    if not np.issubdtype(samples.dtype, np.floating):
        raise ConfigError(
            f"{who} needs float samples in [-1, 1], got dtype {samples.dtype} from source {chunk.source_id!r}"
        )
    return samples.astype(np.float32, copy=False)


class SampleTimeline:
    """Admit chunks into a continuous run of samples and map indices to ns.

    Args:
        sample_rate_hz: samples per second of the run.
        tolerance_ns: chunk start errors up to this are ignored (rounding of PTS).
        max_fill_ns: gaps up to this are filled with zeros; longer gaps break the run.
    """

    def __init__(self, sample_rate_hz: int = SAMPLE_RATE_HZ, *, tolerance_ns: int = 2_000_000,
                 max_fill_ns: int = 1_000_000_000) -> None:
        if sample_rate_hz <= 0 or tolerance_ns < 0 or max_fill_ns < 0:
            raise ConfigError("SampleTimeline: sample_rate_hz must be > 0, tolerance_ns and max_fill_ns >= 0")
        self.sample_rate_hz = sample_rate_hz
        self._tolerance_ns = tolerance_ns
        self._max_fill_ns = max_fill_ns
        self._anchor_ns: int | None = None
        self._anchor_index = 0
        self._previous_runs: list[tuple[int, int]] = []  # (anchor_index, anchor_ns) of earlier runs
        #: Index of the next sample (samples admitted so far, gaps included).
        self.position = 0
        #: Samples of silence inserted for small gaps, and samples dropped as overlap.
        self.filled_samples = 0
        self.dropped_samples = 0
        #: Run breaks (gaps longer than ``max_fill_ns``).
        self.breaks = 0

    @property
    def started(self) -> bool:
        """True once the first chunk has been admitted."""
        return self._anchor_ns is not None

    def time_ns(self, index: int) -> int:
        """Session time of sample ``index`` of the current run, int ns."""
        if self._anchor_ns is None:
            return index * 1_000_000_000 // self.sample_rate_hz
        anchor_index, anchor_ns = self._anchor_index, self._anchor_ns
        if index < anchor_index:  # an index of an earlier run
            for run_index, run_ns in reversed(self._previous_runs):
                if run_index <= index:
                    anchor_index, anchor_ns = run_index, run_ns
                    break
        return anchor_ns + (index - anchor_index) * 1_000_000_000 // self.sample_rate_hz

    def index_at(self, t_ns: int) -> int:
        """The sample index at or just after session time ``t_ns`` (current run)."""
        anchor_ns = self._anchor_ns or 0
        return self._anchor_index + -((anchor_ns - t_ns) * self.sample_rate_hz // 1_000_000_000)

    def admit(self, chunk_pts_ns: int, samples: np.ndarray) -> list[Piece]:
        """Place a chunk's samples after the ones already admitted.

        Returns:
            The pieces to process in order: samples continuing the run, and a
            ``Piece(None)`` where the run breaks (then the rest re-anchors).
        """
        if self._anchor_ns is None:
            self._anchor_ns = chunk_pts_ns
            self._anchor_index = self.position
        pieces: list[Piece] = []
        expected_ns = self.time_ns(self.position)
        error_ns = chunk_pts_ns - expected_ns
        if error_ns > self._tolerance_ns:
            if error_ns <= self._max_fill_ns:
                n_fill = int(error_ns * self.sample_rate_hz // 1_000_000_000)
                if n_fill:
                    pieces.append(Piece(np.zeros(n_fill, dtype=np.float32), self.position))
                    self.filled_samples += n_fill
                    self.position += n_fill
            else:
                self._previous_runs = [*self._previous_runs[-7:], (self._anchor_index, self._anchor_ns)]
                self.position += 1  # the new run starts one index after the old one's end
                self.breaks += 1
                self._anchor_ns = chunk_pts_ns
                self._anchor_index = self.position
                pieces.append(Piece(None, self.position))
        elif error_ns < -self._tolerance_ns:
            n_drop = min(len(samples), int(-error_ns * self.sample_rate_hz // 1_000_000_000))
            samples = samples[n_drop:]
            self.dropped_samples += n_drop
        if len(samples):
            pieces.append(Piece(samples, self.position))
            self.position += len(samples)
        return pieces
