"""Media files made by the tests with PyAV, each with a known ground truth.

Every generator writes into a folder the test gives (pytest's tmp_path) and
returns the path. Times are chosen so the truth is exact in the container's
time_base.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _video_frame(image: np.ndarray, pts: int, time_base: Fraction) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    frame.pts = pts
    frame.time_base = time_base
    return frame


def _audio_frame(samples: np.ndarray, rate: int, pts: int, layout: str = "mono") -> av.AudioFrame:
    """samples: (channels, n) float32 planar."""
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout=layout)
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = Fraction(1, rate)
    return frame


def flash_and_beep(folder: Path, *, audio_delay_s: float = 0.7, event_s: float = 1.2, duration_s: float = 2.0,
                   fps: int = 25, rate: int = 48_000) -> Path:
    """An MP4 (H.264 + AAC) whose audio stream starts ``audio_delay_s`` after its video.

    Video: black frames with one white frame at ``event_s``. Audio: silence with a
    1 kHz beep starting at ``event_s`` (container time), so both events are at the
    same instant on the timeline.
    """
    path = folder / "flash_beep.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "bf": "0"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a_s = out.add_stream("aac", rate=rate, layout="mono")
        vs.time_base = Fraction(1, fps)
        flash_index = int(round(event_s * fps))
        for i in range(int(duration_s * fps)):
            value = 255 if i == flash_index else 0
            image = np.full((48, 64, 3), value, dtype=np.uint8)
            for packet in vs.encode(_video_frame(image, i, Fraction(1, fps))):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        n_total = int((duration_s - audio_delay_s) * rate)
        t = np.arange(n_total) / rate + audio_delay_s
        audio = np.where((t >= event_s) & (t < event_s + 0.2), 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
        start_pts = int(round(audio_delay_s * rate))
        block = 1024
        for offset in range(0, n_total - block + 1, block):
            frame = _audio_frame(audio[None, offset:offset + block], rate, start_pts + offset)
            for packet in a_s.encode(frame):
                out.mux(packet)
        for packet in a_s.encode(None):
            out.mux(packet)
    return path


def vfr_with_bframes(folder: Path, *, pts_ms: list[int]) -> Path:
    """An MP4 (H.264 with B-frames) whose frames sit at the given times (ms, time_base 1/1000)."""
    path = folder / "vfr_bframes.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "bf": "2", "tune": "zerolatency"})
        vs.options = {"preset": "fast", "bf": "2"}
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.time_base = Fraction(1, 1000)
        vs.codec_context.time_base = Fraction(1, 1000)
        rng = np.random.default_rng(0)
        for pts in pts_ms:
            image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for packet in vs.encode(_video_frame(image, pts, Fraction(1, 1000))):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return path


def raw_h264(folder: Path, *, frames: int = 30, fps: int = 25) -> Path:
    """A raw Annex-B H.264 elementary stream: no container, so no PTS at all."""
    path = folder / "raw.h264"
    with av.open(str(path), "w", format="h264") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "bf": "0"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.full((48, 64, 3), (i * 8) % 256, dtype=np.uint8)
            for packet in vs.encode(_video_frame(image, i, Fraction(1, fps))):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return path


def marker_image(width: int = 64, height: int = 48) -> np.ndarray:
    """Black image with a white block in the top-left corner (to check orientation)."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[: height // 4, : width // 4] = 255
    return image


def rotated_phone_video(folder: Path, *, display_rotation_deg: float = -90.0, frames: int = 10) -> Path:
    """A landscape-coded MP4 with a display matrix, like a phone filming upright.

    ``display_rotation_deg`` is FFmpeg's display-matrix angle (counter-clockwise);
    phones filming portrait write -90 ("rotate=90": turn 90 degrees clockwise to show).
    """
    path = folder / "phone.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.set_display_rotation(display_rotation_deg)
        for i in range(frames):
            for packet in vs.encode(_video_frame(marker_image(), i, Fraction(1, 25))):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return path


def tone_mp2(path: Path, *, rate: int, seconds: float, freq_hz: float = 440.0) -> Path:
    """An MPEG-1 Layer II elementary stream of a sine tone (each frame header carries the rate)."""
    with av.open(str(path), "w", format="mp2") as out:
        stream = out.add_stream("mp2", rate=rate, layout="mono")
        n = int(seconds * rate)
        t = np.arange(n) / rate
        audio = (0.3 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
        block = 1152
        for offset in range(0, n, block):
            piece = audio[offset:offset + block]
            frame = av.AudioFrame.from_ndarray(piece[None, :].astype(np.int16) if False else
                                               (piece[None, :] * 32767).astype(np.int16), format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = offset
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def rate_change_mp2(folder: Path) -> Path:
    """1.0 s at 44.1 kHz followed by 1.0 s at 32 kHz in one MP2 stream (a mid-file rate change)."""
    first = tone_mp2(folder / "a.mp2", rate=44_100, seconds=1.0)
    second = tone_mp2(folder / "b.mp2", rate=32_000, seconds=1.0, freq_hz=880.0)
    path = folder / "rate_change.mp2"
    path.write_bytes(first.read_bytes() + second.read_bytes())
    return path


def wav(folder: Path, name: str, samples: np.ndarray, rate: int, *, codec: str = "pcm_s16le",
        layout: str = "mono") -> Path:
    """A WAV of (channels, n) float samples in the given PCM codec (pcm_s16le, pcm_u8, pcm_f32le)."""
    path = folder / name
    fmt = {"pcm_s16le": "s16", "pcm_u8": "u8", "pcm_f32le": "flt"}[codec]
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        data = np.ascontiguousarray(samples.T.reshape(1, -1), dtype=np.float32)  # packed, interleaved
        if fmt == "s16":
            data = (data * 32767).astype(np.int16)
        elif fmt == "u8":
            data = (data * 127 + 128).astype(np.uint8)
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
        frame.sample_rate = rate
        frame.pts = 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def audio_with_dropped_packets(folder: Path, *, drop: list[int], codec: str = "aac", container: str = "matroska",
                               rate: int = 48_000, packets: int = 100) -> tuple[Path, int]:
    """A 440 Hz tone encoded packet by packet with some packets left out (lost data).

    Returns the path and the number of samples per packet.
    """
    ctx = av.CodecContext.create(codec, "w")
    ctx.sample_rate, ctx.layout, ctx.time_base = rate, "mono", Fraction(1, rate)
    ctx.format = "fltp" if codec == "aac" else "s16"
    frame_size = ctx.frame_size or 1024
    encoded = []
    for i in range(packets):
        t = np.arange(i * frame_size, (i + 1) * frame_size) / rate
        tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        data = tone if ctx.format.name == "fltp" else (tone * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(data, format=ctx.format.name, layout="mono")
        frame.sample_rate, frame.pts = rate, i * frame_size
        encoded += list(ctx.encode(frame))
    encoded += list(ctx.encode(None))
    path = folder / f"dropped_{codec}.{'mkv' if container == 'matroska' else container}"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        if ctx.extradata:
            stream.codec_context.extradata = ctx.extradata
        for i, packet in enumerate(encoded):
            if i in drop:
                continue
            packet.stream = stream
            packet.time_base = Fraction(1, rate)
            out.mux(packet)
    return path, frame_size


def multichannel_flac(folder: Path, *, layout: str = "7.1", seconds: float = 0.5, rate: int = 48_000) -> Path:
    """A FLAC-in-Matroska file with many channels, each the same 0.25 amplitude tone."""
    channels = av.AudioLayout(layout).nb_channels
    n = int(seconds * rate)
    tone = (0.25 * np.sin(2 * np.pi * 220 * np.arange(n) / rate) * 32767).astype(np.int16)
    interleaved = np.repeat(tone, channels)[None, :]
    path = folder / f"surround_{layout.replace('.', '_')}.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("flac", rate=rate)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=layout)
        frame.sample_rate, frame.pts = rate, 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def float_wav(path: Path, samples: np.ndarray, rate: int = 16_000) -> Path:
    """A 32-bit IEEE-float mono WAV written byte by byte (so it can hold NaN)."""
    import struct

    data = np.asarray(samples, dtype=np.float32).tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path
