"""PyAV at arm's length: open containers and read stream facts, with typed errors.

Every PyAV/FFmpeg exception that can come out of opening or probing a file is
turned into a streamline error naming the file here, so no caller sees a
traceback from inside the dependency.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from ..errors import CorruptMediaError, DeviceError, MediaNotFoundError, NoMediaStreamsError
from ..types import MediaInfo, StreamInfo

__all__ = ["open_file", "open_device", "stream_info", "probe", "describe_av_error", "usable_streams", "sane_rotation", "media_info"]

# Bounded probing so that a truncated or garbage file fails in seconds, never hangs.
_FILE_OPTIONS = {"probesize": str(20_000_000), "analyzeduration": str(10_000_000)}
_OPEN_TIMEOUT_S = 10.0


def describe_av_error(exc: BaseException) -> str:
    """A short, human description of a PyAV/FFmpeg error (no errno noise)."""
    if isinstance(exc, av.error.FFmpegError):
        text = exc.strerror or str(exc)
        return text.rstrip(".")
    return str(exc) or type(exc).__name__


def open_file(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """Open a media file for reading.

    Raises:
        MediaNotFoundError: the path does not exist or is not a file.
        CorruptMediaError: FFmpeg cannot read it (truncated, not media, unknown format).
        NoMediaStreamsError: it holds neither audio nor video.
    """
    p = Path(path)
    if not p.exists():
        raise MediaNotFoundError(f"{p}: no such file")
    if not p.is_file():
        raise MediaNotFoundError(f"{p}: not a regular file")
    if p.stat().st_size == 0:
        raise CorruptMediaError(f"{p}: file is empty (0 bytes)")
    try:
        container = av.open(
            str(p), mode="r", options=_FILE_OPTIONS, timeout=_OPEN_TIMEOUT_S, metadata_errors="replace"
        )
    except av.error.EOFError as exc:
        raise CorruptMediaError(f"{p}: truncated: the data ends before the container headers do") from exc
    except av.error.InvalidDataError as exc:
        raise CorruptMediaError(f"{p}: not a readable audio or video file ({describe_av_error(exc)})") from exc
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise CorruptMediaError(f"{p}: cannot open as media ({describe_av_error(exc)})") from exc
    usable, rejected = usable_streams(container)
    if not usable:
        container.close()
        if rejected:
            raise CorruptMediaError(f"{p}: no decodable audio or video stream ({'; '.join(rejected)})")
        raise NoMediaStreamsError(f"{p}: contains neither an audio nor a video stream (or its headers are cut short)")
    return container


def usable_streams(container: Any) -> tuple[list[Any], list[str]]:
    """The audio and video streams streamline can decode, and why the others were left out.

    Left out: attached pictures (cover art is not a video), streams whose codec this
    FFmpeg build does not know, video without a frame size, audio with an implausible
    sample rate (< 1 kHz or > 768 kHz) or no channels.
    """
    usable: list[Any] = []
    rejected: list[str] = []
    for stream in container.streams:
        if stream.type not in ("audio", "video"):
            continue
        label = f"{stream.type} stream #{stream.index}"
        if stream.disposition & av.stream.Disposition.attached_pic:
            continue
        ctx = stream.codec_context
        if ctx is None:
            rejected.append(f"{label}: codec not supported by this FFmpeg build")
            continue
        if stream.type == "video" and not (ctx.width and ctx.height):
            rejected.append(f"{label} ({ctx.name}): unknown frame size")
            continue
        if stream.type == "audio":
            rate = ctx.sample_rate or 0
            channels = getattr(getattr(ctx, "layout", None), "nb_channels", 0) or getattr(ctx, "channels", 0)
            if not 1000 <= rate <= 768_000 or not channels:
                rejected.append(f"{label} ({ctx.name}): implausible format ({rate} Hz, {channels} channels)")
                continue
        usable.append(stream)
    return usable, rejected


def open_device(url: str, format_name: str, options: dict[str, str] | None = None) -> av.container.InputContainer:
    """Open a capture device (or a lavfi graph) through PyAV.

    Raises:
        DeviceError: the input format is not in this FFmpeg build, or the device
            cannot be opened (missing, busy, no permission, unsupported mode).
    """
    # FFmpeg lists a format under all its names at once ("video4linux2,v4l2")
    available = {name for entry in av.formats_available for name in entry.split(",")}
    if format_name not in available:
        devices = ("v4l2", "alsa", "pulse", "x11grab", "avfoundation", "dshow", "lavfi")
        raise DeviceError(
            f"input format {format_name!r} is not available in this PyAV/FFmpeg build "
            f"(device {url!r}); available device formats here: "
            f"{', '.join(f for f in devices if f in available)}"
        )
    try:
        return av.open(url, mode="r", format=format_name, options=dict(options or {}), timeout=_OPEN_TIMEOUT_S)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise DeviceError(f"cannot open {format_name} device {url!r}: {describe_av_error(exc)}") from exc


def _seconds(value: Any, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def sane_rotation(degrees: float | None) -> int:
    """A display rotation as 0/90/180/270 (counter-clockwise), or 0 when it is not a quarter turn.

    FFmpeg reports INT_MIN for a degenerate matrix and any angle for a skewed one;
    neither can be applied to a frame, so both count as no rotation.
    """
    import math

    if degrees is None or not math.isfinite(degrees) or abs(degrees) > 360:
        return 0
    quarter = round(degrees / 90.0)
    if abs(degrees - quarter * 90.0) > 1.0:
        return 0
    return int(quarter * 90) % 360


def _stream_rotation(stream: Any) -> int:
    """Display rotation from a stream's ``rotate`` tag, degrees counter-clockwise (0 if none).

    PyAV exposes the display matrix on decoded frames only; :func:`probe` reads it
    there. The tag is what older muxers wrote.
    """
    rotate = stream.metadata.get("rotate") if stream.metadata else None
    try:
        return sane_rotation(-float(rotate)) if rotate is not None else 0
    except ValueError:
        return 0


def stream_info(stream: Any, rotation_deg: int | None = None) -> StreamInfo:
    """Describe one PyAV stream as a :class:`StreamInfo`."""
    time_base = stream.time_base
    ctx = stream.codec_context
    codec = ctx.name if ctx is not None else "unknown"
    common = dict(
        index=stream.index,
        kind=stream.type,
        codec=codec,
        start_s=_seconds(stream.start_time, time_base),
        duration_s=_seconds(stream.duration, time_base),
        time_base=f"{time_base.numerator}/{time_base.denominator}" if time_base else "unknown",
    )
    if stream.type == "video":
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        rotation = _stream_rotation(stream) if rotation_deg is None else rotation_deg
        width, height = (ctx.width, ctx.height) if ctx is not None else (None, None)
        if rotation in (90, 270):
            width, height = height, width
        return StreamInfo(
            **common,
            fps=float(rate) if rate else None,
            width=width or None,
            height=height or None,
            rotation_deg=rotation,
        )
    channels = getattr(ctx, "channels", None)
    layout = getattr(ctx, "layout", None)
    if layout is not None:
        channels = getattr(layout, "nb_channels", channels) or channels
    return StreamInfo(
        **common,
        sample_rate_hz=(ctx.sample_rate or None) if ctx is not None else None,
        channels=channels or None,
    )


def _first_frames(path: str | os.PathLike[str], indices: list[int], max_packets: int = 500) -> dict[int, Any]:
    """Decode until each listed stream has given one frame (or ``max_packets`` were read)."""
    found: dict[int, Any] = {}
    try:
        with av.open(str(path), mode="r", options=_FILE_OPTIONS, timeout=_OPEN_TIMEOUT_S,
                     metadata_errors="replace") as container:
            streams = [container.streams[i] for i in indices]
            for n, packet in enumerate(container.demux(*streams)):
                if n >= max_packets or len(found) == len(indices):
                    break
                if packet.stream.index in found:
                    continue
                try:
                    frames = packet.decode()
                except (av.error.FFmpegError, ValueError):
                    continue
                if frames:
                    found[packet.stream.index] = frames[0]
    except (av.error.FFmpegError, ValueError, OSError):
        pass
    return found


def media_info(path: str | os.PathLike[str], container: Any, streams: list[Any], *,
               origin_from: list[Any] | None = None, rotations: dict[int, int] | None = None) -> MediaInfo:
    """Describe ``streams`` of an open container as a :class:`MediaInfo`.

    Args:
        path: the file, for the record.
        container: the open PyAV container.
        streams: the streams to list.
        origin_from: the streams whose earliest start becomes session time 0 (default: ``streams``).
        rotations: display rotation per video stream index, where known from a decoded frame.
    """
    from ..timeline import pts_to_ns

    rotations = rotations or {}
    starts = [pts_to_ns(s.start_time, s.time_base) for s in (origin_from or streams)
              if s.start_time is not None and s.time_base is not None]
    return MediaInfo(
        path=os.fspath(path),
        format_name=container.format.name,
        duration_s=container.duration / 1e6 if container.duration else None,
        streams=tuple(stream_info(s, rotations.get(s.index)) for s in streams),
        origin_offset_ns=min(starts) if starts else 0,
    )


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Read a media file's streams, decoding the first frame of each to prove it decodes.

    Args:
        path: the file.

    Returns:
        :class:`MediaInfo` listing the decodable audio and video streams (cover art and
        streams FFmpeg cannot decode are left out); ``origin_offset_ns`` is the earliest
        stream start, the container time that :func:`open_media` maps to session time 0.

    Raises:
        MediaNotFoundError: no such file.
        CorruptMediaError: not media, truncated, or no stream gives a decodable frame.
        NoMediaStreamsError: no audio or video stream at all.
    """
    container = open_file(path)
    try:
        usable, _ = usable_streams(container)
        first = _first_frames(path, [s.index for s in usable])
        decodable = [s for s in usable if s.index in first]
        if not decodable:
            raise CorruptMediaError(f"{path}: no audio or video frame could be decoded")
        rotations = {s.index: sane_rotation(first[s.index].rotation) for s in decodable if s.type == "video"}
        return media_info(path, container, decodable, rotations=rotations)
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(f"{path}: cannot read stream information ({describe_av_error(exc)})") from exc
    finally:
        container.close()
