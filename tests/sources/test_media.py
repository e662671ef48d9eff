"""open_media on files made by the tests and on the bundled clip: real decoding, exact times."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import media_gen as gen
from source_helpers import collect
from streamline import (
    CorruptMediaError,
    MediaError,
    MediaNotFoundError,
    NoMediaStreamsError,
    TimestampFlag,
)
from streamline.errors import ConfigError
from streamline.sources import open_media, probe, read_audio


def strictly_increasing(times: list[int]) -> bool:
    return all(b > a for a, b in zip(times, times[1:]))


def test_bundled_clip_video_and_audio_on_one_timeline(bundled_clip):
    got = collect(bundled_clip)
    assert not got.errors
    # GRID: 75 frames at 25 fps, 3 s; MP2 audio 44.1 kHz stereo resampled to 16 kHz mono.
    assert len(got.frames) == 75
    assert [f.pts_ns for f in got.frames[:3]] == [0, 40_000_000, 80_000_000]
    assert got.frames[-1].pts_ns == 74 * 40_000_000
    assert got.frames[0].image.shape == (288, 360, 3)
    assert got.frames[0].image.dtype == np.uint8 and got.frames[0].image.flags.c_contiguous
    info = probe(bundled_clip)
    audio_duration_s = info.audio.duration_s
    assert got.audio_samples == pytest.approx(audio_duration_s * 16_000, abs=0.03 * 16_000)
    assert got.chunks[0].pts_ns == 0
    times = [c.pts_ns for c in got.chunks]
    assert strictly_increasing(times)
    # Chunks are contiguous: each starts where the previous ended (no invented gaps).
    for a, b in zip(got.chunks, got.chunks[1:]):
        assert abs(b.pts_ns - a.end_ns) <= 1_000_000
    samples = np.concatenate([c.samples for c in got.chunks])
    assert samples.dtype == np.float32 and np.abs(samples).max() <= 1.0
    assert np.sqrt(np.mean(samples**2)) > 0.01  # real speech, not silence


def test_flash_and_beep_line_up_when_audio_starts_late(tmp_path):
    path = gen.flash_and_beep(tmp_path, audio_delay_s=0.7, event_s=1.2)
    got = collect(path)
    assert not got.errors
    # The video starts at 0; the audio stream starts ~0.7 s later on the same timeline.
    assert got.frames[0].pts_ns == 0
    assert got.chunks[0].pts_ns == pytest.approx(0.7e9, abs=0.03e9)
    flash_ns = [f.pts_ns for f in got.frames if f.image.mean() > 128]
    assert len(flash_ns) == 1
    samples = np.concatenate([c.samples for c in got.chunks])
    onset = int(np.argmax(np.abs(samples) > 0.1))
    beep_ns = got.chunks[0].pts_ns + onset * 1_000_000_000 // 16_000
    frame_period_ns = 40_000_000
    assert abs(beep_ns - flash_ns[0]) < frame_period_ns
    assert flash_ns[0] == 1_200_000_000


def test_variable_frame_rate_with_b_frames_keeps_container_pts(tmp_path):
    pts_ms = [0, 33, 100, 133, 166, 250, 283, 400, 433, 466, 600, 633]
    path = gen.vfr_with_bframes(tmp_path, pts_ms=pts_ms)
    got = collect(path)
    assert [f.pts_ns for f in got.frames] == [ms * 1_000_000 for ms in pts_ms]
    assert got.stats["video"]["timestamps"]["synthesized"] == 0
    assert all(f.flags == TimestampFlag.NONE for f in got.frames)


def test_raw_h264_without_pts_gets_synthesized_increasing_times(tmp_path):
    path = gen.raw_h264(tmp_path, frames=30, fps=25)
    got = collect(path)
    times = [f.pts_ns for f in got.frames]
    assert len(times) == 30
    assert strictly_increasing(times)
    assert np.allclose(np.diff(times), 40_000_000, atol=1)
    assert all(f.flags & TimestampFlag.SYNTHESIZED for f in got.frames)
    assert got.stats["video"]["timestamps"]["synthesized"] == 30


def test_rotated_phone_video_arrives_upright(tmp_path):
    path = gen.rotated_phone_video(tmp_path, display_rotation_deg=-90)
    info = probe(path)
    assert (info.video.width, info.video.height, info.video.rotation_deg) == (48, 64, 270)
    got = collect(path)
    image = got.frames[0].image
    assert image.shape == (64, 48, 3) and image.flags.c_contiguous
    # The marker block coded at top-left shows at top-right after turning 90 degrees clockwise.
    assert image[:8, -8:].mean() > 200
    assert image[:8, :8].mean() < 50


def test_sample_rate_change_mid_file_rebuilds_the_resampler(tmp_path):
    path = gen.rate_change_mp2(tmp_path)
    got = collect(path)
    assert not got.errors
    # 1 s at 44.1 kHz then 1 s at 32 kHz: 2 s at 16 kHz (plus the encoder's last-frame padding).
    assert got.audio_samples / 16_000 == pytest.approx(2.0, abs=0.06)
    samples = np.concatenate([c.samples for c in got.chunks])
    # 440 Hz in the first second, 880 Hz in the second: both came through.
    def dominant_hz(x: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
        return float(np.fft.rfftfreq(x.size, 1 / 16_000)[np.argmax(spectrum)])
    assert dominant_hz(samples[2000:14000]) == pytest.approx(440, abs=5)
    assert dominant_hz(samples[-14000:-2000]) == pytest.approx(880, abs=5)
    assert strictly_increasing([c.pts_ns for c in got.chunks])


@pytest.mark.parametrize(
    ("codec", "rate", "layout"),
    [("pcm_s16le", 8_000, "mono"), ("pcm_s16le", 44_100, "stereo"), ("pcm_u8", 48_000, "mono"),
     ("pcm_f32le", 48_000, "stereo")],
)
def test_pcm_inputs_resample_to_16k_mono(tmp_path, codec, rate, layout):
    seconds = 1.5
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 300 * t)
    channels = 1 if layout == "mono" else 2
    path = gen.wav(tmp_path, f"tone_{codec}_{rate}.wav", np.tile(tone, (channels, 1)), rate, codec=codec, layout=layout)
    audio = read_audio(path)
    assert audio.sample_rate_hz == 16_000
    assert audio.num_samples == pytest.approx(seconds * 16_000, abs=64)
    # The amplitude survives (a mean down-mix of identical channels, not a sum).
    peak = float(np.abs(audio.samples[1000:-1000]).max())
    assert peak == pytest.approx(0.5, abs=0.03)


def test_fps_subsampling_chooses_frames_by_timestamp(tmp_path):
    pts_ms = [0, 33, 100, 133, 166, 250, 283, 400, 433, 466, 600, 633]
    path = gen.vfr_with_bframes(tmp_path, pts_ms=pts_ms)
    got = collect(path, fps=5)  # slots of 200 ms: the first frame in each slot
    assert [f.pts_ns // 1_000_000 for f in got.frames] == [0, 250, 400, 600]
    assert got.stats["video"]["skipped"] == len(pts_ms) - 4


def test_realtime_pacing_follows_timestamps(bundled_clip):
    started = time.monotonic()
    got = collect(bundled_clip, audio=False, realtime=True)
    elapsed = time.monotonic() - started
    assert len(got.frames) == 75
    assert elapsed == pytest.approx(74 * 0.04, abs=0.5)


def test_truncated_mp4_fails_fast_with_a_typed_error(tmp_path):
    whole = gen.flash_and_beep(tmp_path)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    started = time.monotonic()
    with pytest.raises(CorruptMediaError, match="cut.mp4"):
        open_media(cut)
    assert time.monotonic() - started < 5


def test_truncated_stream_keeps_what_was_decodable(bundled_clip, tmp_path):
    cut = tmp_path / "cut.mpg"
    data = bundled_clip.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    got = collect(cut)
    assert 20 < len(got.frames) < 75
    assert strictly_increasing([f.pts_ns for f in got.frames])


def test_corrupt_bytes_mid_file_are_skipped_and_the_hole_stays(bundled_clip, tmp_path):
    clean = collect(bundled_clip)
    data = bytearray(bundled_clip.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20_000] = bytes(20_000)  # wipe ~4 % of the file
    broken = tmp_path / "broken.mpg"
    broken.write_bytes(bytes(data))
    got = collect(broken)
    assert strictly_increasing([f.pts_ns for f in got.frames])
    assert strictly_increasing([c.pts_ns for c in got.chunks])
    assert len(got.frames) >= 60
    # Audio is not papered over: fewer samples than the clean decode, and what follows
    # the hole keeps its true time (the last chunk ends where the clean one ends).
    assert got.audio_samples < clean.audio_samples
    holes = [(a.end_ns, b.pts_ns) for a, b in zip(got.chunks, got.chunks[1:]) if b.pts_ns - a.end_ns > 50_000_000]
    assert len(holes) == 1
    hole_ms = (holes[0][1] - holes[0][0]) / 1e6
    missing_ms = (clean.audio_samples - got.audio_samples) / 16
    assert hole_ms == pytest.approx(missing_ms, abs=30)
    assert abs(got.chunks[-1].end_ns - clean.chunks[-1].end_ns) <= 30_000_000


def test_missing_file_is_a_typed_error(tmp_path):
    with pytest.raises(MediaNotFoundError, match="nope.mp4"):
        open_media(tmp_path / "nope.mp4")
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "nope.mp4")


def test_garbage_and_empty_files_are_typed_errors(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(1).integers(0, 255, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptMediaError, match="garbage.mp4"):
        open_media(garbage)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(CorruptMediaError, match="empty"):
        open_media(empty)
    with pytest.raises(MediaError):
        open_media(tmp_path)  # a folder


def test_file_without_the_requested_streams(tmp_path):
    path = gen.raw_h264(tmp_path)
    with pytest.raises(NoMediaStreamsError, match="audio"):
        open_media(path, video=False)
    with pytest.raises(ConfigError):
        open_media(path, video=3)
    with pytest.raises(ConfigError):
        open_media(path, sample_rate_hz=0)


def test_close_before_the_end_releases_every_thread(tmp_path, bundled_clip):
    before = set(threading.enumerate())
    source = open_media(bundled_clip, realtime=True)
    seen = []
    source.video.subscribe(seen.append)
    source.audio.subscribe(lambda c: None)
    time.sleep(0.3)
    source.close()
    assert 0 < len(seen) < 75
    assert set(threading.enumerate()) <= before


def test_no_thread_outlives_completion(bundled_clip):
    before = set(threading.enumerate())
    collect(bundled_clip)
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) <= before


def test_a_failing_subscriber_gets_the_error_and_decoding_goes_on(bundled_clip):
    errors, good = [], []
    done = threading.Event()

    def explode(frame):
        raise RuntimeError("subscriber bug")

    with open_media(bundled_clip, audio=False) as source:
        source.video.subscribe(explode, on_error=errors.append)
        source.video.subscribe(good.append, on_completed=done.set)
        assert done.wait(30)
    assert isinstance(errors[0], RuntimeError)
    assert len(good) == 75
