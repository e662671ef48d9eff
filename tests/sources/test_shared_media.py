"""Every file in ../shared/data/tricky and talking_head: correct streams or a clear typed error."""

from __future__ import annotations

import csv
import time

import pytest

from source_helpers import collect
from streamline import CorruptMediaError, MediaError
from streamline.sources import probe

# Files that are broken on purpose, and the error each must give.
EXPECTED_ERRORS = {
    "truncated_sample.mkv": CorruptMediaError,
    "empty_test1_empty.wav": MediaError,
}


def _rows(shared_data, folder):
    with open(shared_data / folder / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.shared_data
@pytest.mark.parametrize("folder", ["tricky", "talking_head"])
def test_every_shared_file_decodes_or_fails_cleanly(shared_data, folder):
    for row in _rows(shared_data, folder):
        path = shared_data / folder / row["file"]
        started = time.monotonic()
        if row["file"] in EXPECTED_ERRORS:
            with pytest.raises(EXPECTED_ERRORS[row["file"]], match=row["file"].split("/")[-1]):
                probe(path)
                got = collect(path)
                raise next(iter(got.errors.values()))
            continue
        info = probe(path)
        assert (info.video is not None) == (row["has_video"] == "yes"), row["file"]
        assert (info.audio is not None) == (row["has_audio"] == "yes"), row["file"]
        got = collect(path)
        assert not got.errors, (row["file"], got.errors)
        assert time.monotonic() - started < 60
        if info.audio is not None and row.get("duration_s"):
            duration = float(info.audio.duration_s or row["duration_s"])
            assert got.audio_samples / 16_000 == pytest.approx(duration, abs=0.1), row["file"]
        if info.video is not None:
            times = [f.pts_ns for f in got.frames]
            assert all(b > a for a, b in zip(times, times[1:])), row["file"]
            assert got.frames[0].image.shape[2] == 3


@pytest.mark.shared_data
def test_vfr_clip_keeps_its_container_timestamps(shared_data):
    import av

    path = shared_data / "talking_head" / "video_retalking" / "face_1.mp4"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        truth = sorted(int(round(float(f.pts * stream.time_base) * 1e9)) for f in container.decode(stream))
    got = collect(path)
    # Video starts 33 ms after audio; the timeline origin is the audio start (0).
    assert [f.pts_ns for f in got.frames] == pytest.approx(truth, abs=1)
    gaps_ms = {round((b - a) / 1e6) for a, b in zip(truth, truth[1:])}
    assert gaps_ms >= {33, 67}


@pytest.mark.shared_data
def test_video_starting_after_audio_keeps_its_offset(shared_data):
    got = collect(shared_data / "tricky" / "pymediainfo_sample.mp4")
    assert got.chunks[0].pts_ns == 0
    assert got.frames[0].pts_ns == pytest.approx(83_417_000, abs=1_000)
