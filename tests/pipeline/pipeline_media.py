"""Media the pipeline tests make from the bundled GRID clip with PyAV (no third-party data needed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from media_gen import wav
from streamline.sources import read_audio


def _frames(clip: Path) -> tuple[list[np.ndarray], float]:
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        return [f.to_ndarray(format="rgb24") for f in container.decode(stream)], fps


def _encode_video(out: av.container.OutputContainer, images: list[np.ndarray], fps: float) -> av.video.stream.VideoStream:
    stream = out.add_stream("libx264", rate=int(round(fps)), options={"preset": "ultrafast", "bf": "0"})
    stream.height, stream.width = images[0].shape[:2]
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, int(round(fps)))
    return stream


def _write_av(path: Path, images: list[np.ndarray], fps: float, audio: np.ndarray | None, rate: int) -> Path:
    """Video frames and (optionally) mono audio, interleaved frame by frame."""
    pcm = None if audio is None else (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w") as out:
        vs = _encode_video(out, images, fps)
        a_s = out.add_stream("pcm_s16le", rate=rate, layout="mono") if pcm is not None else None
        written = 0

        def audio_until(n: int) -> None:
            nonlocal written
            assert a_s is not None and pcm is not None
            while written < min(n, len(pcm)):
                block = pcm[written:min(n, len(pcm), written + 1600)]
                frame = av.AudioFrame.from_ndarray(block[None, :], format="s16", layout="mono")
                frame.sample_rate = rate
                frame.pts = written
                frame.time_base = Fraction(1, rate)
                for packet in a_s.encode(frame):
                    out.mux(packet)
                written += len(block)

        frame_tb = Fraction(1, int(round(fps)))  # the muxer may change the stream's time base
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            frame.time_base = frame_tb
            for packet in vs.encode(frame):
                out.mux(packet)
            if a_s is not None:
                audio_until(int(round((i + 1) / fps * rate)))
        for packet in vs.encode(None):
            out.mux(packet)
        if a_s is not None and pcm is not None:
            audio_until(len(pcm))
            for packet in a_s.encode(None):
                out.mux(packet)
    return path


def repeated_clip(clip: Path, folder: Path, *, times: int) -> Path:
    """The clip's video and audio ``times`` times in a row (Matroska: H.264 + 16 kHz PCM)."""
    images, fps = _frames(clip)
    audio = read_audio(clip).samples
    n_video_s = len(images) / fps
    # pad or cut the audio to the video's length so that the repetitions stay aligned
    n = int(round(n_video_s * 16_000))
    one = np.zeros(n, np.float32)
    one[: min(n, len(audio))] = audio[:n]
    return _write_av(folder / f"grid_x{times}.mkv", images * times, fps, np.tile(one, times), 16_000)


def video_only_clip(clip: Path, folder: Path) -> Path:
    """The clip's video alone (Matroska, H.264, no audio stream)."""
    images, fps = _frames(clip)
    return _write_av(folder / "grid_video_only.mkv", images, fps, None, 16_000)


def audio_only_wav(clip: Path, folder: Path) -> Path:
    """The clip's audio alone, 16 kHz mono 16-bit WAV (decoded with read_audio, written with PyAV)."""
    return wav(folder, "grid_audio_only.wav", np.clip(read_audio(clip).samples, -1, 1)[None], 16_000)


def thread_names() -> set[tuple[int | None, str]]:
    """The live threads, as (ident, name) pairs (to check that nothing outlives close)."""
    import threading

    return {(t.ident, t.name) for t in threading.enumerate()}
