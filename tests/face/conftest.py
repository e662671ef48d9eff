"""Fixtures for the face tests: decoded frames of real clips, shared analyzers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from streamline.face import FaceAnalyzer, FaceSettings
from streamline.sources import open_media
from streamline.types import VideoFrame


def _read_frames(path: str | Path, *, fps: float | None = None, timeout_s: float = 120.0) -> list[VideoFrame]:
    """Every video frame of a file (through streamline's own source), in order."""
    frames: list[VideoFrame] = []
    failure: list[BaseException] = []
    done = threading.Event()
    with open_media(path, audio=False, fps=fps) as media:
        assert media.video is not None
        media.video.subscribe(frames.append, lambda e: (failure.append(e), done.set()), done.set)
        assert done.wait(timeout_s), f"decoding {path} took longer than {timeout_s} s"
    if failure:
        raise failure[0]
    return frames


@pytest.fixture(scope="session")
def read_frames():
    """``read_frames(path, *, fps=None) -> list[VideoFrame]``: decode a file with open_media."""
    return _read_frames


@pytest.fixture(scope="session")
def grid_frames(bundled_clip: Path) -> list[VideoFrame]:
    """The 75 frames (3 s, 25 fps, 360x288) of the bundled GRID clip."""
    return _read_frames(bundled_clip)


@pytest.fixture(scope="session")
def face_image(grid_frames: list[VideoFrame]) -> np.ndarray:
    """One (288, 360, 3) RGB frame with a frontal face (GRID speaker)."""
    return grid_frames[10].image


@pytest.fixture(scope="module")
def every_frame_analyzer():
    """One analyzer per test module that analyses every frame it is given."""
    with FaceAnalyzer(FaceSettings(fps=None)) as analyzer:
        yield analyzer


def _encode_clip(
    path: str | Path,
    images: list[np.ndarray],
    *,
    size: tuple[int, int] | None = None,
    fmt: str = "matroska",
    codec: str = "ffv1",
    pix_fmt: str = "yuv420p",
    rate: int = 25,
) -> Path:
    """Encode RGB images into a clip with PyAV (``size`` = (width, height) resizes)."""
    import av
    import cv2

    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        height, width = images[0].shape[:2]
        stream.width, stream.height = size if size is not None else (width, height)
        stream.pix_fmt = pix_fmt
        for i, image in enumerate(images):
            if size is not None:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format=pix_fmt)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Path(path)


@pytest.fixture(scope="session")
def encode_clip():
    """``encode_clip(path, images, *, size=None, fmt, codec, pix_fmt, rate) -> Path`` (PyAV)."""
    return _encode_clip


def _run_operator(frames, operator, *, timeout_s: float = 60.0) -> list:
    """Push ``frames`` through ``operator``; wait for completion; return what came out.

    Raises the stream's error, if any.
    """
    import reactivex

    out: list = []
    failure: list[BaseException] = []
    done = threading.Event()
    reactivex.from_iterable(frames).pipe(operator).subscribe(
        out.append, lambda e: (failure.append(e), done.set()), done.set
    )
    assert done.wait(timeout_s), "the operator did not complete"
    if failure:
        raise failure[0]
    return out


@pytest.fixture(scope="session")
def run_operator():
    """``run_operator(frames, operator, *, timeout_s=60) -> list`` (waits for completion)."""
    return _run_operator
