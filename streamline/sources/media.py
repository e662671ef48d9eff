"""Files as sources: :func:`open_media`, :func:`read_audio`, :func:`probe`."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from ..errors import ConfigError, MediaError
from ..flow import OverflowPolicy
from ..timeline import NS_PER_S, Clock, monotonic_clock
from ..types import AudioChunk
from ._pyav import media_info, open_file, probe, usable_streams
from ._source import MediaSource, SourceSettings

__all__ = ["open_media", "read_audio", "probe"]


def _pick(usable: list[Any], kind: str, choice: bool | int) -> Any | None:
    if not isinstance(choice, (bool, int)):
        raise ConfigError(f"{kind} must be True, False or a stream number, got {choice!r}")
    if choice is False:
        return None
    streams = [s for s in usable if s.type == kind]
    if not streams:
        return None
    index = 0 if choice is True else int(choice)
    if not 0 <= index < len(streams):
        raise ConfigError(f"{kind}={choice}: the file has {len(streams)} {kind} stream(s)")
    return streams[index]


def _check_rate(sample_rate_hz: int) -> None:
    if not isinstance(sample_rate_hz, int) or not 1000 <= sample_rate_hz <= 384_000:
        raise ConfigError(f"sample_rate_hz must be an int in [1000, 384000], got {sample_rate_hz!r}")


def open_media(
    path: str | os.PathLike[str],
    *,
    video: bool | int = True,
    audio: bool | int = True,
    sample_rate_hz: int = 16_000,
    fps: float | None = None,
    realtime: bool = False,
    queue_size: int = 32,
    clock: Clock = monotonic_clock,
) -> MediaSource:
    """Open a media file as timestamped video and audio Observables on one timeline.

    Time is ``PTS x time_base`` (exact rational arithmetic), rebased so the earliest
    selected stream starts at 0; the offset is ``source.info.origin_offset_ns``. A frame
    without PTS gets a synthesized time (flagged :attr:`TimestampFlag.SYNTHESIZED`);
    duplicates, backward steps and jumps are repaired and counted in ``source.stats``.
    A packet that fails to decode is skipped and counted (``bad_packets``), and the hole
    it leaves stays a hole in the timeline: it is never filled with silence.

    Video frames arrive as upright (container rotation applied), C-contiguous
    (H, W, 3) uint8 RGB. Audio arrives as mono float32 in [-1, 1] at ``sample_rate_hz``
    (FFmpeg's swresample; rebuilt when the input format, layout or rate changes
    mid-file; stereo is down-mixed). Chunks hold at least 10 ms of audio.

    Args:
        path: the file. The container format is detected from the content, not the name.
        video: True for the first video stream, an int for the n-th, False for none.
        audio: True for the first audio stream, an int for the n-th, False for none.
        sample_rate_hz: audio output rate in Hz.
        fps: keep at most this many video frames per second, chosen by timestamp
            (the first frame in each ``1/fps`` slot of the timeline), or None for all.
        realtime: pace delivery like a live device (items no earlier than their
            timestamps after the first); default False: as fast as possible.
        queue_size: bound of each stream's hand-off queue; files block when it is
            full, so nothing is ever dropped.
        clock: the clock used for real-time pacing (int ns).

    Returns:
        A :class:`MediaSource` (a context manager). Decoding starts once every
        selected stream has a subscriber, or at ``start()``.

    Raises:
        MediaNotFoundError: no such file.
        CorruptMediaError: not readable as media (truncated, garbage, unknown format).
        NoMediaStreamsError: the file holds neither audio nor video, or none of
            the requested kinds.
        ConfigError: an invalid argument.

    Errors found while decoding (e.g. a stream with no decodable data) arrive as
    ``on_error`` on the affected stream's Observable.
    """
    _check_rate(sample_rate_hz)
    if not os.fspath(path):
        raise ConfigError("open_media(): the path is empty")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 1000):
        raise ConfigError(f"fps must be a positive number up to 1000 or None, got {fps!r}")
    if not isinstance(queue_size, int) or queue_size < 1:
        raise ConfigError(f"queue_size must be an int >= 1, got {queue_size!r}")
    container = open_file(path)
    try:
        usable = usable_streams(container)[0]
        video_stream = _pick(usable, "video", video)
        audio_stream = _pick(usable, "audio", audio)
        if video_stream is None and audio_stream is None:
            from ..errors import NoMediaStreamsError

            wanted = [k for k, v in (("video", video), ("audio", audio)) if v is not False]
            if not wanted:
                raise ConfigError("open_media(): video and audio are both False; select at least one")
            raise NoMediaStreamsError(f"{path}: has no decodable {' or '.join(wanted)} stream")
        selected = [s for s in (video_stream, audio_stream) if s is not None]
        info = media_info(path, container, usable, origin_from=selected)
    except BaseException:
        container.close()
        raise
    settings = SourceSettings(
        label=os.fspath(path),
        live=False,
        pace=realtime,
        sample_rate_hz=sample_rate_hz,
        fps=fps,
        video_queue=(queue_size, OverflowPolicy.BLOCK),
        audio_queue=(queue_size, OverflowPolicy.BLOCK),
    )
    return MediaSource(container, info, settings, video_stream=video_stream, audio_stream=audio_stream,
                       clock=clock, session_origin_ns=0)


def read_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate_hz: int = 16_000,
    stream: int = 0,
    fill_gaps: bool = False,
    timeout_s: float = 600.0,
) -> AudioChunk:
    """Decode a file's whole audio stream into one chunk (for batch work and tests).

    Time 0 is the file's own origin (the earliest stream start, as with
    :func:`open_media`), so the chunk's ``pts_ns`` is where the audio starts on
    the timeline shared with the video.

    Args:
        path: the file.
        sample_rate_hz: output rate in Hz.
        stream: which audio stream (0 for the first).
        fill_gaps: holes in the audio (lost packets) are an error by default,
            because one array cannot represent them; True fills them with zeros.
        timeout_s: give up (MediaError) if decoding takes longer than this.

    Returns:
        AudioChunk with (n,) float32 mono samples in [-1, 1].

    Raises:
        MediaNotFoundError, CorruptMediaError, NoMediaStreamsError: as :func:`open_media`.
        MediaError: the audio has holes and ``fill_gaps`` is False; or decoding failed.
    """
    chunks: list[AudioChunk] = []
    failure: list[BaseException] = []
    done = threading.Event()
    with open_media(path, video=False, audio=stream, sample_rate_hz=sample_rate_hz) as source:
        assert source.audio is not None
        source.audio.subscribe(
            on_next=chunks.append,
            on_error=lambda e: (failure.append(e), done.set()),
            on_completed=done.set,
        )
        if not done.wait(timeout_s):
            raise MediaError(f"{path}: decoding took longer than {timeout_s} s")
    if failure:
        raise failure[0]
    pieces: list[np.ndarray] = []
    cursor = chunks[0].pts_ns
    for chunk in chunks:
        gap_samples = (chunk.pts_ns - cursor) * sample_rate_hz // NS_PER_S
        if gap_samples > 0:
            if not fill_gaps:
                raise MediaError(
                    f"{path}: the audio has a {gap_samples / sample_rate_hz * 1000:.0f} ms hole at "
                    f"{cursor / NS_PER_S:.3f} s (lost data); use open_media() to keep holes, "
                    "or fill_gaps=True to fill them with silence"
                )
            pieces.append(np.zeros(gap_samples, dtype=np.float32))
        pieces.append(chunk.samples)
        cursor = chunk.end_ns
    samples = np.concatenate(pieces)
    samples.flags.writeable = False
    return AudioChunk(pts_ns=chunks[0].pts_ns, samples=samples, sample_rate_hz=sample_rate_hz,
                      source_id=chunks[0].source_id)
