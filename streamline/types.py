"""Immutable, timestamped items that flow between streamline's stages.

All times are int64 nanoseconds on the *session timeline*: 0 is the session
origin (for a file, the earliest stream start; for live capture, the moment the
session clock was created). Field names carry their unit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TimestampFlag",
    "VideoFrame",
    "AudioChunk",
    "StreamInfo",
    "MediaInfo",
    "SpeechSegment",
    "Word",
]


class TimestampFlag(enum.IntFlag):
    """How an item's timestamp was obtained.

    ``NONE`` means the timestamp is the source's own (PTS x time_base, or a
    device capture time mapped onto the session clock).
    """

    NONE = 0
    #: The source gave no timestamp; it was synthesized from frame or sample counting.
    SYNTHESIZED = 1
    #: The source's timestamp was a duplicate, went backwards or jumped, and was repaired.
    REPAIRED = 2


@dataclass(frozen=True, slots=True, eq=False)
class VideoFrame:
    """One decoded video frame.

    Attributes:
        pts_ns: presentation time on the session timeline, int nanoseconds.
        image: (H, W, 3) uint8 RGB, C-contiguous, upright (container rotation
            already applied). Treat as read-only; the array is shared.
        source_id: name of the source that produced the frame (e.g. ``"video:0"``).
        flags: how ``pts_ns`` was obtained (see :class:`TimestampFlag`).
    """

    pts_ns: int
    image: np.ndarray
    source_id: str = "video"
    flags: TimestampFlag = TimestampFlag.NONE

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    @property
    def t_s(self) -> float:
        """``pts_ns`` in float seconds (a convenience; ``pts_ns`` is the truth)."""
        return self.pts_ns / 1e9


@dataclass(frozen=True, slots=True, eq=False)
class AudioChunk:
    """A block of consecutive audio samples.

    Attributes:
        pts_ns: time of the first sample on the session timeline, int nanoseconds.
        samples: (n,) float32 mono in [-1, 1]. Treat as read-only.
        sample_rate_hz: samples per second (16000 by default from the sources).
        source_id: name of the source that produced the chunk (e.g. ``"audio:0"``).
        flags: how ``pts_ns`` was obtained (see :class:`TimestampFlag`).
    """

    pts_ns: int
    samples: np.ndarray
    sample_rate_hz: int
    source_id: str = "audio"
    flags: TimestampFlag = TimestampFlag.NONE

    @property
    def num_samples(self) -> int:
        """Number of samples in the chunk."""
        return int(self.samples.shape[0])

    @property
    def duration_ns(self) -> int:
        """Duration of the chunk in nanoseconds (rounded down)."""
        return self.num_samples * 1_000_000_000 // self.sample_rate_hz

    @property
    def end_ns(self) -> int:
        """Time just after the last sample (``pts_ns + duration_ns``)."""
        return self.pts_ns + self.duration_ns

    @property
    def t_s(self) -> float:
        """``pts_ns`` in float seconds."""
        return self.pts_ns / 1e9


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a container says about one of its streams.

    Attributes:
        index: stream index in the container.
        kind: ``"video"`` or ``"audio"``.
        codec: codec name as FFmpeg spells it (``"h264"``, ``"aac"``...).
        start_s: stream start in seconds on the container's own clock (before rebasing),
            or None when the container does not say.
        duration_s: stream duration in seconds, or None when unknown.
        time_base: the stream's time_base as ``"num/den"``.
        fps: average frame rate (video), or None.
        width, height: frame size in pixels after rotation (video), or None.
        rotation_deg: display rotation from the container, degrees counter-clockwise.
        sample_rate_hz: sample rate (audio), or None.
        channels: channel count (audio), or None.
    """

    index: int
    kind: str
    codec: str
    start_s: float | None
    duration_s: float | None
    time_base: str
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    rotation_deg: int = 0
    sample_rate_hz: int | None = None
    channels: int | None = None


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """A container's streams and how its times map onto the session timeline.

    Attributes:
        path: the file.
        format_name: container format as FFmpeg names it.
        duration_s: container duration in seconds, or None.
        streams: every audio and video stream (other kinds are left out).
        origin_offset_ns: the container time that became session time 0
            (the earliest start among the selected streams), int nanoseconds.
            ``container_time_ns = pts_ns + origin_offset_ns``.
    """

    path: str
    format_name: str
    duration_s: float | None
    streams: tuple[StreamInfo, ...] = field(default_factory=tuple)
    origin_offset_ns: int = 0

    @property
    def video(self) -> StreamInfo | None:
        """The first video stream, or None."""
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def audio(self) -> StreamInfo | None:
        """The first audio stream, or None."""
        return next((s for s in self.streams if s.kind == "audio"), None)


@dataclass(frozen=True, slots=True)
class SpeechSegment:
    """A stretch of speech found by voice activity detection, ``[start_ns, end_ns)``.

    Attributes:
        start_ns: first instant of speech on the session timeline, int ns (inclusive).
        end_ns: end of speech, int ns (exclusive); ``end_ns >= start_ns``.
        probability: mean speech probability over the segment, in [0, 1].
        source_id: the audio source the segment came from.
    """

    start_ns: int
    end_ns: int
    probability: float = 1.0
    source_id: str = "audio"

    def as_dict(self) -> dict[str, object]:
        """The JSON record of the segment (``type`` "segment"; times in s and ns)."""
        return {
            "type": "segment",
            "start_s": round(self.start_ns / 1e9, 3),
            "end_s": round(self.end_ns / 1e9, 3),
            "probability": round(float(self.probability), 4),
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
        }


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word, ``[start_ns, end_ns)`` on the session timeline.

    Attributes:
        text: the word as the recogniser wrote it (leading space stripped).
        start_ns: start time, int ns (inclusive).
        end_ns: end time, int ns (exclusive); ``end_ns >= start_ns``.
        probability: the recogniser's word probability, in [0, 1].
        committed: True once the word is final (it will not be revised);
            False for a partial hypothesis.
        utterance_id: index of the utterance (VAD speech run) the word belongs to.
        language: ISO 639-1 code detected for the utterance, or None.
    """

    text: str
    start_ns: int
    end_ns: int
    probability: float
    committed: bool = True
    utterance_id: int = 0
    language: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The JSON record of the word, as every command writes it (``type`` "word")."""
        return {
            "type": "word",
            "text": self.text,
            "start_s": round(self.start_ns / 1e9, 3),
            "end_s": round(self.end_ns / 1e9, 3),
            "probability": round(float(self.probability), 4),
            "committed": self.committed,
            "utterance_id": self.utterance_id,
            "language": self.language,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
        }
