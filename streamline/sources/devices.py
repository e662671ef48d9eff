"""Live sources: :func:`camera`, :func:`microphone` and :func:`synthetic`.

All three go through PyAV's device inputs and the same decode engine as files;
only the timing differs: each item's device timestamp is mapped onto the session
clock by a per-source :class:`~streamline.timeline.DeviceClockModel`, so audio and
video from different clocks line up. Live video is handed on with a keep-latest
queue (the newest frame wins; drops are counted in ``source.stats``); live audio
with a blocking queue of many seconds (never dropped).

Device names by platform (the ``device`` argument):

=========  ================  ==============================  ==================================
platform   format            camera                          microphone
=========  ================  ==============================  ==================================
Linux      ``v4l2`` / ``alsa``  ``/dev/video0``               ``default``, ``hw:0,0``, ``plughw:1``
macOS      ``avfoundation``  ``"0"`` (index) or a name       ``":0"`` (audio index after colon)
Windows    ``dshow``         ``"video=Integrated Camera"``   ``"audio=Microphone (Realtek)"``
=========  ================  ==============================  ==================================

PulseAudio (``pulse``) is used where the PyAV build has it (the PyPI wheels for
Linux do not; ALSA's ``default`` device reaches PulseAudio/PipeWire through
their ALSA plugins). The PyPI wheel's ALSA library needs
``ALSA_CONFIG_DIR=/usr/share/alsa`` (Debian/Ubuntu package ``libasound2-data``);
streamline sets it when unset and that folder exists.

List devices: ``v4l2-ctl --list-devices`` and ``arecord -L`` (Linux);
``ffmpeg -f avfoundation -list_devices true -i ""`` (macOS);
``ffmpeg -f dshow -list_devices true -i dummy`` (Windows).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from ..errors import ConfigError, DeviceError
from ..flow import OverflowPolicy
from ..timeline import Clock, monotonic_clock
from ..types import MediaInfo
from ._pyav import open_device, stream_info
from ._source import MediaSource, SourceSettings

__all__ = ["SessionClock", "camera", "microphone", "synthetic", "default_session_clock"]

#: Live video hand-off: the newest frames win.
LIVE_VIDEO_QUEUE = (2, OverflowPolicy.KEEP_LATEST)
#: Live audio hand-off: never dropped; ~60 s of 20 ms chunks before the producer waits.
LIVE_AUDIO_QUEUE = (3000, OverflowPolicy.BLOCK)


class SessionClock:
    """The session timeline for live capture: 0 is when the clock was made.

    Pass the same SessionClock to every live source of one session (camera and
    microphone) so that their items share one timeline.

    Args:
        clock: the underlying monotonic clock in int ns (default :func:`time.monotonic_ns`).
    """

    def __init__(self, clock: Clock = monotonic_clock) -> None:
        self.clock = clock
        self.origin_ns = clock()

    def now_ns(self) -> int:
        """Nanoseconds since the session origin."""
        return self.clock() - self.origin_ns


_default_clock: SessionClock | None = None
_default_lock = threading.Lock()


def default_session_clock() -> SessionClock:
    """The process-wide session clock used when none is passed (made on first use)."""
    global _default_clock
    with _default_lock:
        if _default_clock is None:
            _default_clock = SessionClock()
        return _default_clock


def _ensure_alsa_config() -> None:
    if "ALSA_CONFIG_DIR" not in os.environ and os.path.isdir("/usr/share/alsa"):
        os.environ["ALSA_CONFIG_DIR"] = "/usr/share/alsa"


def _platform_video() -> tuple[str, str]:
    if sys.platform.startswith("linux"):
        return "v4l2", "/dev/video0"
    if sys.platform == "darwin":
        return "avfoundation", "0"
    if sys.platform.startswith("win"):
        return "dshow", "video=Integrated Camera"
    raise DeviceError(f"no default camera input for platform {sys.platform!r}; pass format= and device=")


def _platform_audio() -> tuple[str, str]:
    import av

    if sys.platform.startswith("linux"):
        return ("pulse", "default") if "pulse" in av.formats_available else ("alsa", "default")
    if sys.platform == "darwin":
        return "avfoundation", ":0"
    if sys.platform.startswith("win"):
        return "dshow", "audio=Microphone"
    raise DeviceError(f"no default microphone input for platform {sys.platform!r}; pass format= and device=")


def _live_source(container: Any, label: str, *, want_video: bool, want_audio: bool, sample_rate_hz: int,
                 fps: float | None, pace: bool, session: SessionClock) -> MediaSource:
    video_stream = next((s for s in container.streams if s.type == "video"), None) if want_video else None
    audio_stream = next((s for s in container.streams if s.type == "audio"), None) if want_audio else None
    if video_stream is None and audio_stream is None:
        container.close()
        raise DeviceError(f"{label}: the device delivers no {'video' if want_video else 'audio'} stream")
    info = MediaInfo(
        path=label,
        format_name=container.format.name,
        duration_s=None,
        streams=tuple(stream_info(s) for s in (video_stream, audio_stream) if s is not None),
        origin_offset_ns=0,
    )
    settings = SourceSettings(
        label=label,
        live=True,
        pace=pace,
        sample_rate_hz=sample_rate_hz,
        fps=fps,
        video_queue=LIVE_VIDEO_QUEUE,
        audio_queue=LIVE_AUDIO_QUEUE,
        audio_resync_ns=100_000_000,
    )
    return MediaSource(container, info, settings, video_stream=video_stream, audio_stream=audio_stream,
                       clock=session.clock, session_origin_ns=session.origin_ns)


def camera(
    device: str | None = None,
    *,
    format: str | None = None,
    size: tuple[int, int] | None = (640, 480),
    fps: float | None = 30.0,
    pixel_format: str | None = None,
    options: dict[str, str] | None = None,
    session: SessionClock | None = None,
) -> MediaSource:
    """Open a camera as a live video source.

    Args:
        device: the device name (see the module docstring); platform default if None.
        format: PyAV input format (``v4l2``, ``avfoundation``, ``dshow``); platform default if None.
        size: requested (width, height) in pixels, or None for the device default.
        fps: requested frame rate, or None for the device default.
        pixel_format: requested pixel format (e.g. ``"mjpeg"``, ``"yuyv422"``), or None.
        options: further FFmpeg input options, passed as they are.
        session: the session clock shared with the other live sources of the session.

    Returns:
        A started-on-subscribe :class:`MediaSource` with ``.video`` only.

    Raises:
        DeviceError: the format is not in this build, or the device cannot be opened.
    """
    default_format, default_device = _platform_video()
    opts = dict(options or {})
    if size is not None:
        opts.setdefault("video_size", f"{int(size[0])}x{int(size[1])}")
    if fps is not None:
        opts.setdefault("framerate", f"{fps:g}")
    if pixel_format is not None:
        opts.setdefault("input_format" if (format or default_format) == "v4l2" else "pixel_format", pixel_format)
    fmt, dev = format or default_format, device or default_device
    container = open_device(dev, fmt, opts)
    return _live_source(container, f"{fmt}:{dev}", want_video=True, want_audio=False, sample_rate_hz=16_000,
                        fps=None, pace=False, session=session or default_session_clock())


def microphone(
    device: str | None = None,
    *,
    format: str | None = None,
    sample_rate_hz: int = 16_000,
    capture_rate_hz: int | None = None,
    channels: int | None = None,
    options: dict[str, str] | None = None,
    session: SessionClock | None = None,
) -> MediaSource:
    """Open a microphone as a live audio source (16 kHz mono float32 by default).

    Args:
        device: the device name (see the module docstring); platform default if None.
            On Linux without a sound card, ``device="null", format="alsa"`` opens ALSA's
            null device (useful in tests; it delivers arbitrary data as fast as it is read).
        format: PyAV input format (``alsa``, ``pulse``, ``avfoundation``, ``dshow``).
        sample_rate_hz: output rate after resampling.
        capture_rate_hz: rate requested from the device, or None for the device default.
        channels: channel count requested from the device, or None.
        options: further FFmpeg input options.
        session: the session clock shared with the other live sources of the session.

    Raises:
        DeviceError: the format is not in this build, or the device cannot be opened.
        ConfigError: an invalid rate.
    """
    if not isinstance(sample_rate_hz, int) or sample_rate_hz < 1000:
        raise ConfigError(f"sample_rate_hz must be an int >= 1000, got {sample_rate_hz!r}")
    _ensure_alsa_config()
    default_format, default_device = _platform_audio()
    opts = dict(options or {})
    if capture_rate_hz is not None:
        opts.setdefault("sample_rate", str(int(capture_rate_hz)))
    if channels is not None:
        opts.setdefault("channels", str(int(channels)))
    fmt, dev = format or default_format, device or default_device
    container = open_device(dev, fmt, opts)
    return _live_source(container, f"{fmt}:{dev}", want_video=False, want_audio=True,
                        sample_rate_hz=sample_rate_hz, fps=None, pace=False,
                        session=session or default_session_clock())


def synthetic(
    *,
    video: bool = True,
    audio: bool = True,
    size: tuple[int, int] = (640, 480),
    fps: float = 30.0,
    pattern: str = "testsrc2",
    tone_hz: float = 440.0,
    capture_rate_hz: int = 48_000,
    sample_rate_hz: int = 16_000,
    duration_s: float | None = None,
    session: SessionClock | None = None,
) -> MediaSource:
    """A synthetic live device: FFmpeg lavfi test video and a sine tone, paced in real time.

    It runs through exactly the live path of :func:`camera` and :func:`microphone`
    (device timestamps mapped onto the session clock, live queue policies), so
    demos and tests can exercise live capture on machines without devices.

    Args:
        video: include the video source.
        audio: include the audio source.
        size: (width, height) of the video in pixels.
        fps: video frame rate.
        pattern: a lavfi video source (``testsrc2``, ``testsrc``, ``smptebars``, ``mandelbrot``...).
        tone_hz: frequency of the sine tone.
        capture_rate_hz: the "device" audio rate before resampling.
        sample_rate_hz: output audio rate.
        duration_s: stop after this long (None: until closed).
        session: the session clock.

    Raises:
        ConfigError: an invalid argument.
    """
    if not (video or audio):
        raise ConfigError("synthetic(): at least one of video and audio must be True")
    if fps <= 0 or size[0] <= 0 or size[1] <= 0 or tone_hz <= 0:
        raise ConfigError(f"synthetic(): size, fps and tone_hz must be positive (got {size}, {fps}, {tone_hz})")
    if duration_s is not None and duration_s <= 0:
        raise ConfigError(f"synthetic(): duration_s must be positive or None, got {duration_s}")
    limit = f":duration={duration_s:g}" if duration_s is not None else ""
    graphs = []
    if video:
        graphs.append(f"{pattern}=size={int(size[0])}x{int(size[1])}:rate={fps:g}{limit}[out{len(graphs)}]")
    if audio:
        graphs.append(f"sine=frequency={tone_hz:g}:sample_rate={int(capture_rate_hz)}{limit}[out{len(graphs)}]")
    container = open_device(";".join(graphs), "lavfi")
    return _live_source(container, f"synthetic:{pattern if video else 'sine'}", want_video=video,
                        want_audio=audio, sample_rate_hz=sample_rate_hz, fps=None, pace=True,
                        session=session or default_session_clock())
