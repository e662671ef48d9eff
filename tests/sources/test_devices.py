"""Live sources through PyAV device inputs: lavfi synthetic devices and ALSA's null device."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from source_helpers import drain
from streamline import DeviceError
from streamline.sources import SessionClock, camera, microphone, synthetic


def test_synthetic_camera_and_microphone_deliver_at_nominal_rates():
    session = SessionClock()
    started = time.monotonic()
    got = drain(synthetic(size=(160, 120), fps=30, tone_hz=440, duration_s=2.0, session=session))
    elapsed = time.monotonic() - started
    assert not got.errors
    # Paced like a device: 2 s of media takes about 2 s.
    assert elapsed == pytest.approx(2.0, abs=0.5)
    # 30 fps for 2 s; the first frames may be dropped by the keep-latest queue, never more than a few.
    assert 55 <= len(got.frames) + got.stats["video"]["queue"]["dropped"] <= 61
    frame_times = np.array([f.pts_ns for f in got.frames])
    assert np.all(np.diff(frame_times) > 0)
    assert np.median(np.diff(frame_times)) == pytest.approx(1e9 / 30, rel=0.02)
    assert got.frames[0].image.shape == (120, 160, 3)
    # Audio: 16 kHz mono, 2 s of a 440 Hz tone, never dropped.
    assert got.audio_samples == pytest.approx(32_000, abs=1_100)
    assert got.stats["audio"]["queue"]["dropped"] == 0
    samples = np.concatenate([c.samples for c in got.chunks])
    spectrum = np.abs(np.fft.rfft(samples[:16_000]))
    assert np.fft.rfftfreq(16_000, 1 / 16_000)[np.argmax(spectrum)] == pytest.approx(440, abs=2)
    # Both streams are on the session clock: they start within a frame of each other.
    assert abs(got.frames[0].pts_ns - got.chunks[0].pts_ns) < 40_000_000


def test_synthetic_video_alone_is_paced_like_a_camera():
    started = time.monotonic()
    got = drain(synthetic(video=True, audio=False, size=(64, 48), fps=20, duration_s=1.0))
    assert time.monotonic() - started == pytest.approx(1.0, abs=0.3)
    gaps_ms = np.diff([f.pts_ns for f in got.frames]) / 1e6
    assert np.median(gaps_ms) == pytest.approx(50, abs=5)


def test_live_sources_share_one_session_clock():
    session = SessionClock()
    time.sleep(0.2)
    got = drain(synthetic(video=True, audio=False, size=(64, 48), fps=10, duration_s=0.5, session=session))
    # Items are stamped on the session timeline, whose origin was 0.2 s before capture began.
    assert got.frames[0].pts_ns >= 150_000_000


def test_alsa_null_microphone_runs_and_closes(monkeypatch):
    monkeypatch.setenv("ALSA_CONFIG_DIR", "/usr/share/alsa")
    before = set(threading.enumerate())
    try:
        mic = microphone("null", format="alsa", capture_rate_hz=16_000, channels=1)
    except DeviceError as exc:  # pragma: no cover - a machine without ALSA's data files
        pytest.skip(f"ALSA null device unavailable: {exc}")
    chunks = []
    mic.audio.subscribe(chunks.append)
    time.sleep(0.5)
    mic.close()
    assert chunks, "the null device delivered nothing"
    times = [c.pts_ns for c in chunks]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert all(c.samples.dtype == np.float32 and c.sample_rate_hz == 16_000 for c in chunks)
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) <= before


def test_missing_camera_is_a_device_error():
    # v4l2 is in every Linux FFmpeg build, listed as "video4linux2,v4l2": the open itself fails
    with pytest.raises(DeviceError, match="cannot open v4l2 device '/dev/video97'"):
        camera("/dev/video97", format="v4l2")
    with pytest.raises(DeviceError, match="not available"):
        microphone("default", format="no-such-format")
