"""The synchronizer on real media: the bundled GRID clip (3 s, 25 fps video, 44.1 kHz audio).

Three streams from one file: video frames (points, value: mean brightness),
audio chunks (intervals ``[pts, end)``, value: RMS) and a loudness gate derived
from the audio (SpeechSegment intervals where the chunk is loud, a Watermark
where it is quiet). Windows of 1 s every 0.5 s::

    t (s):   0        0.5       1.0       1.5       2.0       2.5       3.0
    win 0:   [-------------------)
    win 1:             [-------------------)
    win 2:                       [-------------------)
    win 3:                                 [-------------------)
    win 4:                                           [-------------------)
    win 5:                                                     [-------------...
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from reactivex import operators as ops

from streamline.sources import open_media
from streamline.sync import StreamSpec, Synchronizer, Watermark, WindowSpec, synchronize
from streamline.types import AudioChunk, SpeechSegment

S = 1_000_000_000
LOUD_RMS = 0.02


def brightness(frame) -> list[float]:
    return [float(frame.image.mean()) / 255.0]


def rms(chunk: AudioChunk) -> list[float]:
    return [float(np.sqrt(np.mean(chunk.samples.astype(np.float64) ** 2)))]


def gate(chunk: AudioChunk):
    return SpeechSegment(chunk.pts_ns, chunk.end_ns, 1.0) if rms(chunk)[0] > LOUD_RMS else Watermark(chunk.end_ns)


SPECS = [
    StreamSpec("video", value_fn=brightness, grid_hz=25, resample="nearest", max_age_s=0.05),
    StreamSpec("audio", value_fn=rms, grid_hz=10),
    StreamSpec("speech"),
]


@pytest.fixture(scope="module")
def run(bundled_clip):
    """Synchronize the clip live through the operator, keeping what each input delivered."""
    source = open_media(bundled_clip)
    seen: dict[str, list] = {"video": [], "audio": [], "speech": []}
    video = source.video.pipe(ops.do_action(seen["video"].append))
    audio = source.audio.pipe(ops.do_action(seen["audio"].append))
    speech = source.audio.pipe(ops.map(gate), ops.do_action(seen["speech"].append))
    # live settings: the speech gate may lag up to an hour (a budget that never runs out here),
    # so the budget poll thread runs beside the source threads
    live_specs = SPECS[:2] + [StreamSpec("speech", lateness_budget_s=3600.0)]
    synced = synchronize({"video": video, "audio": audio, "speech": speech},
                         length_s=1.0, hop_s=0.5, streams=live_specs, poll_interval_s=0.001)
    windows: list = []
    done = threading.Event()
    errors: list = []
    with source:
        synced.windows.subscribe(windows.append, lambda e: (errors.append(e), done.set()), done.set)
        assert done.wait(60), "the clip did not finish"
    assert not errors
    return windows, seen, synced.stats


def test_every_frame_lands_in_the_windows_that_contain_it(run):
    windows, seen, stats = run
    frames = seen["video"]
    assert len(frames) == 75
    # windows 0, 2, 4 tile [0, 3 s): together they hold every frame exactly once
    assert sum(windows[k]["video"].count for k in (0, 2, 4)) == len(frames)
    for w in windows:
        want = [f for f in frames if w.start_ns <= f.pts_ns < w.end_ns]
        assert list(w["video"].items) == want
    full = [w for w in windows if w.end_ns <= frames[-1].pts_ns]
    assert len(full) >= 4
    assert all(w["video"].count == 25 and w["video"].coverage == 1.0 for w in full)
    assert stats.late == 0 and stats.incomplete_windows == 0


def test_audio_intervals_cover_the_windows_and_carry_their_rms(run):
    windows, seen, _ = run
    chunks = seen["audio"]
    audio_end = chunks[-1].end_ns
    assert abs(audio_end - 3 * S) < S // 10
    for w in windows:
        a = w["audio"]
        if w.end_ns <= audio_end:
            assert a.coverage == pytest.approx(1.0, abs=1e-6)
            assert a.grid_mask.all()
        # the overlap of each chunk with the window adds up to the covered time
        assert a.overlap_ns.sum() == pytest.approx(a.coverage * (w.end_ns - w.start_ns), abs=1)
        np.testing.assert_allclose(a.values[:, 0], [rms(c)[0] for c in a.items], rtol=1e-6)


def test_nearest_grid_follows_the_frames(run):
    windows, seen, _ = run
    w = windows[1]["video"]
    assert w.grid_values.shape == (25, 1) and w.grid_mask.all()
    # 25 Hz grid on 25 fps frames: each grid point takes the frame nearest to its time among
    # the window's frames and the last one before it (ties: the earlier)
    before = [f for f in seen["video"] if f.pts_ns < windows[1].start_ns][-1:]
    candidates = before + list(w.items)
    nearest = [min(candidates, key=lambda f: (abs(f.pts_ns - g), f.pts_ns)) for g in w.grid_times_ns.tolist()]
    np.testing.assert_allclose(w.grid_values[:, 0], [brightness(f)[0] for f in nearest], rtol=1e-6)


def test_the_loudness_gate_marks_speech_in_the_windows(run):
    windows, seen, _ = run
    segments = [x for x in seen["speech"] if isinstance(x, SpeechSegment)]
    assert segments and len(segments) < len(seen["audio"])      # the clip has quiet and loud parts
    loud_s = sum(s.end_ns - s.start_ns for s in segments) / S
    assert 0.5 < loud_s < 2.9
    for w in windows:
        sp = w["speech"]
        assert sp.coverage == pytest.approx(
            sum(max(0, min(s.end_ns, w.end_ns) - max(s.start_ns, w.start_ns)) for s in segments)
            / (w.end_ns - w.start_ns))


def test_replaying_the_recording_gives_the_live_windows(run):
    """The replay has no budgets and another interleaving; the live run had a poll thread."""
    windows, seen, _ = run
    ref = Synchronizer(WindowSpec(1.0, 0.5), SPECS)
    # a different interleaving: all speech first, then audio, then video, in uneven pushes
    for name in ("speech", "audio", "video"):
        for item in seen[name]:
            ref.push(name, item)
        ref.end_stream(name)
    replay = ref.poll()
    assert [w.index for w in replay] == [w.index for w in windows]
    for a, b in zip(windows, replay):
        for name in ("video", "audio", "speech"):
            assert a[name].items == b[name].items
            assert a[name].coverage == b[name].coverage
            if a[name].grid_values is not None:
                np.testing.assert_array_equal(a[name].grid_values, b[name].grid_values)
                np.testing.assert_array_equal(a[name].grid_mask, b[name].grid_mask)
