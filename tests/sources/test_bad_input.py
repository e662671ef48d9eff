"""Inputs that broke earlier versions: each must decode correctly or fail with a typed error."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import media_gen as gen
from source_helpers import collect
from streamline import ConfigError, CorruptMediaError, MediaError
from streamline.sources import open_media, probe, read_audio


@pytest.mark.parametrize("layout", ["7.1", "octagonal", "5.1"])
def test_surround_audio_is_mixed_to_mono(tmp_path, layout):
    audio = read_audio(gen.multichannel_flac(tmp_path, layout=layout))
    assert audio.num_samples == pytest.approx(8_000, abs=100)
    # The mean of identical channels keeps their amplitude.
    assert float(np.abs(audio.samples[500:-500]).max()) == pytest.approx(0.25, abs=0.02)


def test_a_lost_packet_leaves_a_hole_of_its_length(tmp_path):
    path, frame_size = gen.audio_with_dropped_packets(tmp_path, drop=[20], codec="pcm_s16le")
    got = collect(path)
    holes = [(a.end_ns, b.pts_ns - a.end_ns) for a, b in zip(got.chunks, got.chunks[1:]) if b.pts_ns > a.end_ns + 1_000_000]
    packet_ns = frame_size * 1_000_000_000 // 48_000  # 21.3 ms
    assert len(holes) == 1
    assert holes[0][1] == pytest.approx(packet_ns, abs=1_000_000)
    assert got.chunks[-1].end_ns == pytest.approx(100 * packet_ns, abs=1_000_000)


def test_a_lost_aac_packet_keeps_later_audio_in_place(tmp_path):
    path, frame_size = gen.audio_with_dropped_packets(tmp_path, drop=[30], codec="aac", container="mp4")
    clean_path, _ = gen.audio_with_dropped_packets(tmp_path / "..", drop=[], codec="aac", container="mp4")
    got, clean = collect(path), collect(clean_path)
    assert got.chunks[-1].end_ns == pytest.approx(clean.chunks[-1].end_ns, abs=2_000_000)
    assert clean.audio_samples - got.audio_samples == pytest.approx(frame_size / 3, abs=40)


def test_nan_samples_become_zero_and_are_counted(tmp_path):
    path = gen.float_wav(tmp_path / "nan.wav", np.r_[np.full(800, np.nan), np.full(800, 0.5)])
    got = collect(path)
    samples = np.concatenate([c.samples for c in got.chunks])
    assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0
    assert got.stats["audio"]["invalid_samples"] > 0


def test_unknown_codec_is_a_typed_error(tmp_path):
    import av

    mkv = tmp_path / "v.mkv"
    with av.open(str(mkv), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    broken = tmp_path / "unknown.mkv"
    broken.write_bytes(mkv.read_bytes().replace(b"V_MPEG4/ISO/AVC", b"V_MPEG4/ISO/ZZZ"))
    for call in (open_media, probe):
        with pytest.raises(CorruptMediaError, match="unknown.mkv.*not supported"):
            call(broken)


@pytest.mark.parametrize(("name", "content"), [("one.h264", b"x"), ("noise.mp3", None)])
def test_probe_does_not_list_undecodable_garbage(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if content is not None else np.random.default_rng(3).bytes(100_000))
    with pytest.raises(MediaError, match=name):
        probe(path)


def test_close_ends_every_subscriber(bundled_clip):
    ended = []
    source = open_media(bundled_clip, realtime=True)
    source.audio.subscribe(lambda c: None, on_completed=lambda: ended.append("audio"))
    source.video.subscribe(lambda f: source.close() if f.pts_ns >= 200_000_000 else None,
                           on_completed=lambda: ended.append("video"))
    deadline = time.monotonic() + 5
    while len(ended) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(ended) == ["audio", "video"]
    assert not source.running


@pytest.mark.parametrize("kwargs", [{"video": "x"}, {"video": False, "audio": False}, {"fps": True},
                                    {"fps": 0}, {"queue_size": 0}])
def test_invalid_arguments_are_config_errors(bundled_clip, kwargs):
    with pytest.raises(ConfigError):
        open_media(bundled_clip, **kwargs)


def test_empty_path_is_a_config_error():
    with pytest.raises(ConfigError):
        open_media("")


def test_threads_end_after_a_decode_error(tmp_path):
    before = set(threading.enumerate())
    path = gen.float_wav(tmp_path / "empty_data.wav", np.zeros(0))
    with pytest.raises(MediaError):
        read_audio(path)
    time.sleep(0.05)
    assert set(threading.enumerate()) <= before
