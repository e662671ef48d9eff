"""The engine behind every source: demux, decode, convert, timestamp, hand off.

One decode thread per source reads packets from a PyAV container, decodes them,
converts video to upright RGB and audio to mono float32 at the target rate (the mean of the channels),
puts every item on the session timeline, repairs timestamp anomalies, and hands
items to one :class:`~streamline.sources._outlet.Outlet` per stream.

Time on files: ``(PTS x time_base) - origin``, where the origin is the earliest
stream start (so the earliest stream starts at 0). Audio chunk times count
output samples from an anchor set by the PTS of the first frame; the anchor is
re-set when a frame's PTS departs from the count by more than
``audio_resync_ns`` (a hole from a lost packet stays a hole).

Time on live devices: the device's own timestamp is mapped onto the session
clock with a :class:`~streamline.timeline.DeviceClockModel`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

import av
import av.error
import numpy as np
from reactivex import Observable

from ..errors import ClosedError, CorruptMediaError, DeviceError, MediaError, StreamlineError
from ..flow import HandoffStats, OverflowPolicy
from ..timeline import NS_PER_S, Clock, DeviceClockModel, TimestampRepairer, TimestampStats, pts_to_ns
from ..types import AudioChunk, MediaInfo, TimestampFlag, VideoFrame
from ._outlet import Outlet
from ._pyav import describe_av_error, sane_rotation

log = logging.getLogger(__name__)

__all__ = ["MediaSource", "StreamStats", "SourceSettings"]

# Consecutive demux/decode failures after which a file is declared corrupt.
_MAX_CONSECUTIVE_ERRORS = 64


@dataclass(slots=True)
class StreamStats:
    """What happened on one stream of a source.

    Attributes:
        kind: ``"video"`` or ``"audio"``.
        source_id: the ``source_id`` its items carry.
        items: frames or chunks delivered to the outlet.
        samples: audio samples delivered (at the output rate); 0 for video.
        bad_packets: packets that failed to demux or decode and were skipped.
        skipped: video frames left out by ``fps`` subsampling.
        invalid_samples: audio samples that decoded as NaN or infinity (delivered as 0).
        timestamps: anomalies repaired (see :class:`~streamline.timeline.TimestampStats`).
        queue: the outlet's queue counters (depth, drops, blocking).
    """

    kind: str
    source_id: str
    items: int = 0
    samples: int = 0
    bad_packets: int = 0
    skipped: int = 0
    invalid_samples: int = 0
    timestamps: TimestampStats = field(default_factory=TimestampStats)
    queue: HandoffStats = field(default_factory=HandoffStats)

    def as_dict(self) -> dict[str, Any]:
        """Counters as plain data (for JSON)."""
        return {
            "kind": self.kind,
            "source_id": self.source_id,
            "items": self.items,
            "samples": self.samples,
            "bad_packets": self.bad_packets,
            "skipped": self.skipped,
            "invalid_samples": self.invalid_samples,
            "timestamps": self.timestamps.as_dict(),
            "queue": self.queue.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """How a :class:`MediaSource` decodes and delivers (built by the public constructors).

    Attributes:
        label: the input's name for messages (a path, a device).
        live: True for capture devices (device clock mapping, live queue policies).
        pace: emit items no faster than their timestamps (real-time replay;
            lavfi synthetic inputs, which FFmpeg generates as fast as asked).
        sample_rate_hz: audio output rate.
        fps: video subsampling target (frames chosen by timestamp), or None for all.
        video_queue: (maxsize, policy) of the video outlet.
        audio_queue: (maxsize, policy) of the audio outlet.
        audio_resync_ns: PTS departure from the sample count that re-anchors audio time
            (5 ms for files: below one lost AAC or MP3 frame, above container rounding).
        min_chunk_samples: audio output is coalesced to at least this many samples
            per chunk (devices can deliver one sample per packet).
    """

    label: str
    live: bool
    pace: bool
    sample_rate_hz: int
    fps: float | None
    video_queue: tuple[int, OverflowPolicy]
    audio_queue: tuple[int, OverflowPolicy]
    audio_resync_ns: int = 5_000_000
    min_chunk_samples: int = 160


def _rotate_upright(image: np.ndarray, rotation_deg: float) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, FFmpeg's display matrix sense)."""
    quarter_turns = int(round(rotation_deg / 90.0)) % 4
    if quarter_turns:
        image = np.rot90(image, k=quarter_turns)
    return np.ascontiguousarray(image)


class _VideoPath:
    """Per-stream video state: timestamps, rotation, fps subsampling."""

    def __init__(self, stream: Any, settings: SourceSettings, origin_ns: int, stats: StreamStats,
                 clock_model: DeviceClockModel | None, session_now: Callable[[], int],
                 device_pacer: "_Pacer | None" = None) -> None:
        self._stream = stream
        self._origin_ns = origin_ns
        self._stats = stats
        self._device_pacer = device_pacer
        self._clock_model = clock_model
        self._session_now = session_now
        self._repairer = TimestampRepairer()
        stats.timestamps = self._repairer.stats
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self._period_ns = int(NS_PER_S / float(rate)) if rate else 0
        self._fps = Fraction(settings.fps).limit_denominator(1001) if settings.fps else None
        self._last_slot: int | None = None

    def convert(self, frame: av.VideoFrame) -> VideoFrame | None:
        time_base = frame.time_base or self._stream.time_base
        raw_ns: int | None = None
        if frame.pts is not None and time_base is not None:
            device_ns = pts_to_ns(frame.pts, time_base)
            if self._clock_model is not None:
                if self._device_pacer is not None:
                    self._device_pacer.wait_until(device_ns)
                raw_ns = self._clock_model.map(device_ns, self._session_now())
            else:
                raw_ns = device_ns - self._origin_ns
        duration_ns = self._period_ns
        if frame.duration and time_base is not None:
            duration_ns = pts_to_ns(frame.duration, time_base)
        pts_ns, flag = self._repairer.repair(raw_ns, duration_ns)
        if self._fps is not None:
            slot = (pts_ns * self._fps.numerator) // (NS_PER_S * self._fps.denominator)
            if self._last_slot is not None and slot <= self._last_slot:
                self._stats.skipped += 1
                return None
            self._last_slot = slot
        image = frame.to_ndarray(format="rgb24")
        image = _rotate_upright(image, sane_rotation(frame.rotation))
        image.flags.writeable = False
        return VideoFrame(pts_ns=pts_ns, image=image, source_id=self._stats.source_id, flags=flag)


class _AudioPath:
    """Per-stream audio state: resampling to mono float32, sample-count timing, coalescing."""

    def __init__(self, stream: Any, settings: SourceSettings, origin_ns: int, stats: StreamStats,
                 clock_model: DeviceClockModel | None, session_now: Callable[[], int],
                 device_pacer: "_Pacer | None" = None) -> None:
        self._stream = stream
        self._settings = settings
        self._device_pacer = device_pacer
        self._rate = settings.sample_rate_hz
        self._origin_ns = origin_ns
        self._stats = stats
        self._clock_model = clock_model
        self._session_now = session_now
        # Snap sub-millisecond PTS rounding between chunks; real holes stay.
        self._repairer = TimestampRepairer(snap_ns=1_000_000)
        stats.timestamps = self._repairer.stats
        self._resampler: av.AudioResampler | None = None
        self._channels = 1
        self._input_key: tuple[Any, ...] | None = None
        self._anchor_ns: int | None = None
        self._in_rate = 0
        self._in_samples = 0
        self._out_samples = 0
        self._pending: list[np.ndarray] = []
        self._pending_start_ns = 0
        self._pending_samples = 0
        self._pending_flag = TimestampFlag.NONE

    def _frame_time_ns(self, frame: av.AudioFrame) -> int | None:
        time_base = frame.time_base or self._stream.time_base
        if frame.pts is None or time_base is None:
            return None
        device_ns = pts_to_ns(frame.pts, time_base)
        if self._clock_model is not None:
            if self._device_pacer is not None:
                self._device_pacer.wait_until(device_ns)
            return self._clock_model.map(device_ns, self._session_now())
        return device_ns - self._origin_ns

    def convert(self, frame: av.AudioFrame) -> list[AudioChunk]:
        out: list[AudioChunk] = []
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        t_in = self._frame_time_ns(frame)
        flag = TimestampFlag.NONE if t_in is not None else TimestampFlag.SYNTHESIZED
        if key != self._input_key:
            # Format, layout or rate changed mid-stream: drain the old resampler first.
            out += self._drain_resampler()
            self._resampler = self._new_resampler(frame)
            self._input_key = key
            self._in_rate = frame.sample_rate
            self._reanchor(t_in)
        elif t_in is not None and self._anchor_ns is not None:
            expected_ns = self._anchor_ns + self._in_samples * NS_PER_S // self._in_rate
            if abs(t_in - expected_ns) > self._settings.audio_resync_ns:
                log.debug("%s: audio PTS departs from the sample count by %.1f ms: re-anchoring",
                          self._settings.label, (t_in - expected_ns) / 1e6)
                out += self._drain_resampler()
                self._resampler = self._new_resampler(frame)
                self._reanchor(t_in)
        assert self._resampler is not None
        self._in_samples += frame.samples
        for resampled in self._resampler.resample(frame):
            self._append(resampled, flag)
        out += self._emit(force=False)
        return out

    def _new_resampler(self, frame: av.AudioFrame) -> av.AudioResampler:
        # Resample to packed float in the input's own layout, then average the channels
        # ourselves: swresample's stereo-to-mono matrix sums at -3 dB each, which
        # exceeds full scale on loud, correlated channels. Packed, not planar: PyAV
        # mis-reads planar frames with 8 or more channels.
        self._channels = frame.layout.nb_channels
        try:
            return av.AudioResampler(format="flt", layout=frame.layout.name, rate=self._rate)
        except (av.error.FFmpegError, ValueError):
            # A layout swresample cannot name: let it mix down to mono itself.
            self._channels = 1
            return av.AudioResampler(format="flt", layout="mono", rate=self._rate)

    def _reanchor(self, t_in: int | None) -> None:
        emitted_end = None if self._anchor_ns is None else self._anchor_ns + self._out_samples * NS_PER_S // self._rate
        if t_in is None:
            # No PTS: continue where the previous audio ended (or at 0).
            t_in = 0 if emitted_end is None else emitted_end
        elif emitted_end is not None and t_in < emitted_end:
            # Never overlap audio already delivered (e.g. a new MP3 header mid-file).
            t_in = emitted_end
        self._anchor_ns = t_in
        self._in_samples = 0
        self._out_samples = 0

    def _append(self, resampled: av.AudioFrame, flag: TimestampFlag) -> None:
        interleaved = resampled.to_ndarray().reshape(-1)[: resampled.samples * self._channels]
        if self._channels == 1:
            samples = interleaved
        else:
            samples = interleaved.reshape(-1, self._channels).mean(axis=1, dtype=np.float32)
        if not np.isfinite(samples).all():
            bad = ~np.isfinite(samples)
            self._stats.invalid_samples += int(bad.sum())
            samples = np.where(bad, np.float32(0.0), samples)
        if samples.size == 0:
            return
        if not self._pending:
            assert self._anchor_ns is not None
            self._pending_start_ns = self._anchor_ns + self._out_samples * NS_PER_S // self._rate
            self._pending_flag = flag
        self._pending.append(samples.astype(np.float32, copy=False))
        self._pending_samples += samples.size
        self._out_samples += samples.size

    def _emit(self, *, force: bool) -> list[AudioChunk]:
        if not self._pending or (not force and self._pending_samples < self._settings.min_chunk_samples):
            return []
        samples = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        samples = np.ascontiguousarray(np.clip(samples, -1.0, 1.0), dtype=np.float32)
        samples.flags.writeable = False
        duration_ns = samples.size * NS_PER_S // self._rate
        pts_ns, repair_flag = self._repairer.repair(self._pending_start_ns, duration_ns)
        self._pending, self._pending_samples = [], 0
        return [AudioChunk(pts_ns=pts_ns, samples=samples, sample_rate_hz=self._rate,
                           source_id=self._stats.source_id, flags=self._pending_flag | repair_flag)]

    def _drain_resampler(self) -> list[AudioChunk]:
        if self._resampler is not None:
            for resampled in self._resampler.resample(None):
                self._append(resampled, self._pending_flag)
        return self._emit(force=True)

    def flush(self) -> list[AudioChunk]:
        return self._drain_resampler()


class MediaSource:
    """A running source: one decode thread, one Observable per stream.

    Build one with :func:`~streamline.sources.open_media`, :func:`~streamline.sources.camera`,
    :func:`~streamline.sources.microphone` or :func:`~streamline.sources.synthetic`.

    Decoding starts when every selected stream has a subscriber, or at
    :meth:`start`; the Observables are hot, so subscribe first. Items come on the
    stream's delivery thread (``streamline-<label>-video`` / ``-audio``), never on
    the decode thread. Files end with ``on_completed``; a file that turns out to
    be unreadable ends with ``on_error`` carrying a :class:`~streamline.errors.MediaError`.

    Use it as a context manager, or call :meth:`close`: closing stops decoding,
    joins every thread and releases the file or device.

    Attributes:
        info: the streams (and, for files, the origin offset).
        video: Observable[VideoFrame], or None when there is no selected video stream.
        audio: Observable[AudioChunk], or None when there is no selected audio stream.
    """

    def __init__(self, container: Any, info: MediaInfo, settings: SourceSettings, *,
                 video_stream: Any | None, audio_stream: Any | None, clock: Clock,
                 session_origin_ns: int) -> None:
        self.info = info
        self.settings = settings
        self._container = container
        self._clock = clock
        self._session_origin_ns = session_origin_ns
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"streamline-decode-{settings.label}", daemon=True)
        self._paths: dict[int, _VideoPath | _AudioPath] = {}
        self._outlets: dict[int, Outlet[Any]] = {}
        self.stats: dict[str, StreamStats] = {}
        self.video: Observable[VideoFrame] | None = None
        self.audio: Observable[AudioChunk] | None = None
        session_now = self._session_now
        # Live inputs that FFmpeg generates on demand (lavfi) are paced on their own
        # device clock, before the arrival is taken, as a real device would deliver.
        device_pacer = _Pacer(clock, self._stop) if settings.pace and settings.live else None
        for stream, kind in ((video_stream, "video"), (audio_stream, "audio")):
            if stream is None:
                continue
            source_id = f"{kind}:{stream.index}"
            maxsize, policy = settings.video_queue if kind == "video" else settings.audio_queue
            outlet: Outlet[Any] = Outlet(f"{settings.label}-{kind}", maxsize=maxsize, policy=policy,
                                         on_subscribe=self._maybe_start)
            stats = StreamStats(kind=kind, source_id=source_id, queue=outlet.stats)
            clock_model = DeviceClockModel() if settings.live else None
            path_cls = _VideoPath if kind == "video" else _AudioPath
            self._paths[stream.index] = path_cls(stream, settings, info.origin_offset_ns, stats, clock_model,
                                                 session_now, device_pacer)
            self._outlets[stream.index] = outlet
            self.stats[kind] = stats
            if kind == "video":
                self.video = outlet.observable
            else:
                self.audio = outlet.observable
        self._streams = [s for s in (video_stream, audio_stream) if s is not None]

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> "MediaSource":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kinds = "+".join(k for k in ("video", "audio") if getattr(self, k) is not None)
        return f"<MediaSource {self.settings.label!r} {kinds} {'live' if self.settings.live else 'file'}>"

    @property
    def running(self) -> bool:
        """True while the decode thread is alive."""
        return self._thread.is_alive()

    def _session_now(self) -> int:
        return self._clock() - self._session_origin_ns

    def _maybe_start(self) -> None:
        if all(outlet.subscribed for outlet in self._outlets.values()):
            self.start()

    def start(self) -> None:
        """Start decoding now (streams nobody subscribed to are decoded and discarded).

        Raises:
            ClosedError: the source was closed.
        """
        with self._lock:
            if self._closed:
                raise ClosedError(f"source {self.settings.label!r} is closed")
            if self._started:
                return
            self._started = True
        self._thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the decode thread has finished; returns False on timeout."""
        return self._done.wait(timeout_s)

    def close(self) -> None:
        """Stop decoding, join every thread of this source, release the file or device. Idempotent."""
        with self._lock:
            already = self._closed
            self._closed = True
        self._stop.set()
        for outlet in self._outlets.values():
            outlet.shutdown()  # wakes a decode thread blocked on a full queue
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
        # Only now tell subscribers the stream ended: nothing of this source still runs.
        for outlet in self._outlets.values():
            outlet.close(end_subscribers=not already)
        if not self._started and not already:
            self._close_container()

    def _close_container(self) -> None:
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - closing must not raise
            log.debug("closing %s failed", self.settings.label, exc_info=True)

    # -- the decode thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._decode_all()
        except StreamlineError as exc:
            for outlet in self._outlets.values():
                outlet.fail(exc)
        except Exception as exc:  # noqa: BLE001 - anything from FFmpeg becomes a typed error
            err_cls = DeviceError if self.settings.live else CorruptMediaError
            error = err_cls(f"{self.settings.label}: decoding failed: {describe_av_error(exc)}")
            error.__cause__ = exc
            for outlet in self._outlets.values():
                outlet.fail(error)
        finally:
            self._close_container()
            self._done.set()

    def _deliver(self, index: int, item: Any, pacer: "_Pacer | None") -> bool:
        if pacer is not None:
            pacer.wait_until(item.pts_ns)
            if self._stop.is_set():
                return False
        stats = self.stats["video" if isinstance(item, VideoFrame) else "audio"]
        if not self._outlets[index].put(item):
            return False
        stats.items += 1
        if isinstance(item, AudioChunk):
            stats.samples += item.num_samples
        return True

    def _decode_all(self) -> None:
        # Files replayed in real time are paced on the timeline, after repair.
        pacer = _Pacer(self._clock, self._stop) if self.settings.pace and not self.settings.live else None
        consecutive_errors = 0
        finished = False
        while not finished and not self._stop.is_set():
            try:
                for packet in self._container.demux(*self._streams):
                    if self._stop.is_set():
                        return
                    index = packet.stream.index
                    path = self._paths[index]
                    try:
                        frames = packet.decode()
                    except (av.error.FFmpegError, ValueError) as exc:
                        self.stats[packet.stream.type].bad_packets += 1
                        consecutive_errors += 1
                        log.debug("%s: skipped a bad %s packet: %s", self.settings.label,
                                  packet.stream.type, describe_av_error(exc))
                        if consecutive_errors > _MAX_CONSECUTIVE_ERRORS:
                            raise CorruptMediaError(
                                f"{self.settings.label}: more than {_MAX_CONSECUTIVE_ERRORS} packets in a row "
                                f"could not be decoded ({describe_av_error(exc)})"
                            ) from exc
                        continue
                    consecutive_errors = 0 if frames else consecutive_errors
                    for frame in frames:
                        converted = path.convert(frame)
                        items = converted if isinstance(converted, list) else ([converted] if converted else [])
                        for item in items:
                            if not self._deliver(index, item, pacer):
                                return
                finished = True
            except av.error.EOFError:
                finished = True  # truncated mid-file: keep what was decoded
                log.info("%s: file ends early (truncated); delivered what was decodable", self.settings.label)
            except (av.error.FFmpegError, OSError) as exc:
                if self.settings.live:
                    raise DeviceError(f"{self.settings.label}: capture failed: {describe_av_error(exc)}") from exc
                for stats in self.stats.values():
                    stats.bad_packets += 1
                consecutive_errors += 1
                if consecutive_errors > _MAX_CONSECUTIVE_ERRORS:
                    raise CorruptMediaError(
                        f"{self.settings.label}: unreadable data ({describe_av_error(exc)})"
                    ) from exc
        if self._stop.is_set():
            return
        for index, path in self._paths.items():
            if isinstance(path, _AudioPath):
                for item in path.flush():
                    if not self._deliver(index, item, pacer):
                        return
        for index, outlet in self._outlets.items():
            kind = "video" if isinstance(self._paths[index], _VideoPath) else "audio"
            stats = self.stats[kind]
            if stats.items == 0 and stats.skipped == 0:
                what = "frames" if kind == "video" else "samples"
                outlet.fail(MediaError(f"{self.settings.label}: the {kind} stream has no decodable {what}"))
            else:
                outlet.complete()


class _Pacer:
    """Hold items back until their timestamp, relative to when the first item went out."""

    def __init__(self, clock: Clock, stop: threading.Event) -> None:
        self._clock = clock
        self._stop = stop
        self._wall0_ns: int | None = None

    def wait_until(self, pts_ns: int) -> None:
        now = self._clock()
        if self._wall0_ns is None:
            self._wall0_ns = now - pts_ns
            return
        delay_ns = self._wall0_ns + pts_ns - now
        if delay_ns > 0:
            self._stop.wait(delay_ns / NS_PER_S)
