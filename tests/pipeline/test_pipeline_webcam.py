"""The live path (the webcam demo) driven headless by the synthetic devices: cadence, latency, release.

The synthetic devices (a lavfi test pattern at 30 fps and a 440 Hz tone) go through
exactly the live capture path of a camera and a microphone, paced in real time.
Windows of 2 s every 0.5 s::

    session t (s):  s0        s0+1      s0+2      s0+3      s0+4
    window 0:       [-------------------)                        emitted just after s0+2
    window 1:            [-------------------)                   ... s0+2.5
    window 2:                 [-------------------)              ... s0+3
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest

from pipeline_media import thread_names
from streamline.cli import main
from streamline.pipeline import Pipeline
from streamline.pipeline.live_view import LiveState, TerminalView, run_webcam


def test_synthetic_devices_give_an_estimate_per_hop_and_release_everything(models):
    before = thread_names()
    arrivals: list[tuple[float, object]] = []
    pipeline = Pipeline.from_synthetic(duration_s=5.0, models=models)
    pipeline.subscribe(lambda est: arrivals.append((time.monotonic(), est)))
    with pipeline:
        pipeline.start()
        assert pipeline.wait(60), "the 5 s synthetic session did not end"
        metrics = pipeline.metrics()
    assert pipeline.error is None
    ests = [e for _, e in arrivals]
    # windows on the hop grid, consecutive, 2 s long
    starts = [e.start_ns for e in ests]
    assert all(b - a == 500_000_000 for a, b in zip(starts, starts[1:]))
    assert all(e.end_ns - e.start_ns == 2_000_000_000 for e in ests)
    # live: emitted one per hop as the session runs (the last ones are flushed together at the end)
    live = [t for t, e in arrivals if e.end_ns <= metrics["media_s"] * 1e9]
    assert len(live) >= 5
    gaps = np.diff(live)
    assert np.median(gaps) == pytest.approx(0.5, abs=0.15)
    # a sine tone is not speech and the test pattern has no face: the voice and face stages
    # run on every hop and frame and find neither, so the estimates carry no data
    assert all(e.modalities == () and e.label is None for e in ests)
    assert metrics["stages"]["voice"]["count"] >= 8
    assert metrics["faces"] >= 40 and metrics["faces_present"] == 0
    lat = metrics["estimate_latency"]
    assert lat["total"]["count"] >= 5
    assert lat["excluding_words"]["p95_ms"] < 1000          # a loaded 2-core CI machine; ~50 ms when idle
    assert metrics["queues"]["source_audio"]["dropped"] == 0  # live audio is never dropped
    assert all(a.closed for a in pipeline.face_analyzers)
    time.sleep(0.1)
    assert not {name for _, name in thread_names() - before}


def test_the_terminal_view_prints_one_line_per_estimate(models):
    out = io.StringIO()
    before = thread_names()
    assert run_webcam(headless=True, synthetic=True, duration_s=3.5, models=models, stream=out) == 0
    lines = [x for x in out.getvalue().splitlines() if x.startswith("t=")]
    assert len(lines) >= 3
    assert all("latency=" in x and "no data" in x for x in lines[:2])  # a tone, a test pattern
    time.sleep(0.1)
    assert not {name for _, name in thread_names() - before}


def test_a_replayed_recording_shows_face_voice_and_words_live(models, bundled_clip):
    """--replay: the bundled clip paced like a device, through the same live view: the
    speaker's face, her voice while she speaks, and the words as they are committed."""
    out = io.StringIO()
    started = time.monotonic()
    assert run_webcam(headless=True, replay=bundled_clip, models=models, stream=out) == 0
    assert time.monotonic() - started >= 2.5  # real time: the 3 s clip is not rushed through
    lines = [x for x in out.getvalue().splitlines() if x.startswith("t=")]
    assert len(lines) >= 5 and all("face" in x for x in lines)
    assert any("[face+voice" in x for x in lines) and "blue" in out.getvalue().lower()
    assert not any("no data" in x for x in lines)


def test_a_missing_camera_says_how_to_run_without_one(capsys):
    assert main(["webcam", "--headless", "--camera", "/dev/video97", "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert "cannot open v4l2 device '/dev/video97'" in err and "--replay FILE" in err


def test_replay_and_devices_are_exclusive(bundled_clip, capsys):
    assert main(["webcam", "--headless", "--replay", str(bundled_clip), "--synthetic"]) == 1
    assert "leave out --synthetic" in capsys.readouterr().err
    assert main(["webcam", "--headless", "--replay", "no_such_file.mp4"]) == 1
    assert "no_such_file.mp4" in capsys.readouterr().err


def test_webcam_command_headless_synthetic_reports_the_duration_that_ran(capsys):
    assert main(["webcam", "--headless", "--synthetic", "--duration", "3.5", "--modalities", "face,voice",
                 "--stats"]) == 0
    out, err = capsys.readouterr()
    lines = [x for x in out.splitlines() if x.startswith("t=")]
    assert len(lines) >= 3
    # 3.5 s of capture, not the session time the last item reached (capture starts some time
    # after the session clock's origin, while the pipeline is wired)
    media_s = float(re.search(r"media ([\d.]+) s", err).group(1))
    assert media_s == pytest.approx(3.5, abs=0.15)


def test_live_state_follows_words_and_estimates():
    from streamline.fusion import CLASSES, EmotionEstimate
    from streamline.types import Word

    state = LiveState()
    state.update(Word("hel", 0, 100, 0.5, False, 0, "en"))
    state.update(Word("hello", 0, 200, 0.9, True, 0, "en"))
    state.update(Word("wor", 300, 400, 0.5, False, 0, "en"))
    assert state.transcript() == ("hello", "wor")
    probs = np.array([0.1, 0.6, 0.1, 0.05, 0.05, 0.05, 0.05], np.float32)
    est = EmotionEstimate(0, 2_000_000_000, probs, 0.5, 0.2, 0.6, ("voice",), {"voice": 1.0}, probs, 0.5, 0.2)
    assert state.update(est, now_ns=2_150_000_000)
    assert state.latency_ms == pytest.approx(150.0)
    assert state.top(2) == [("happy", pytest.approx(0.6)), ("neutral", pytest.approx(0.1))]
    buf = io.StringIO()
    TerminalView(buf).show(state)
    assert buf.getvalue().startswith("t=   2.00s happy") and "latency=150 ms" in buf.getvalue()
    assert CLASSES[1] == "happy"




def test_the_overlay_draws_the_face_box_bars_and_transcript(bundled_clip):
    """The window view's drawing, on a real frame and a real face observation (no display needed)."""
    from streamline.face import FaceAnalyzer, FaceSettings
    from streamline.fusion import EmotionEstimate
    from streamline.pipeline.live_view import render_overlay
    from streamline.sources import open_media
    from streamline.types import Word

    frames = []
    with open_media(bundled_clip, audio=False) as media:
        done = __import__("threading").Event()
        media.video.subscribe(frames.append, on_completed=done.set)
        assert done.wait(30)
    frame = frames[30]
    with FaceAnalyzer(FaceSettings(fps=None)) as analyzer:
        face = analyzer.analyze(frame)
    assert face.present
    state = LiveState()
    state.update(face)
    probs = np.array([0.1, 0.6, 0.1, 0.05, 0.05, 0.05, 0.05], np.float32)
    state.update(EmotionEstimate(0, 2 * 10**9, probs, 0.5, 0.2, 0.6, ("face",), {"face": 1.0}, probs, 0.5, 0.2),
                 now_ns=2 * 10**9 + 90 * 10**6)
    state.update(Word("bin", 0, 10**8, 0.9, True, 0, "en"))
    img = render_overlay(frame, state, fps=15.0)
    h, w = frame.image.shape[:2]
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    x0, y0, x1, y1 = (int(v) for v in face.box)
    edge = img[(y0 + y1) // 2, max(x0, 0)]                  # on the left side of the box: the green line
    assert tuple(int(v) for v in edge) == (80, 220, 80)
    top_bar = img[24 - 6, 95 + 5]                           # inside the first emotion bar (orange, BGR)
    assert top_bar[2] > 150 and top_bar[0] < 80
    assert img[h - 5, 2].mean() < frame.image[h - 5, 2].mean()   # the transcript band darkens the bottom


@pytest.mark.parametrize("modality", ["voice", "face"])
def test_synthetic_run_with_one_modality_gets_its_data(modality, models):
    """Only the device a modality reads is opened (a source waits for every stream it opened)."""
    from streamline.pipeline import Pipeline, PipelineSettings

    with Pipeline.from_synthetic(PipelineSettings(modalities=modality), duration_s=3.0, models=models) as pipeline:
        ests = pipeline.run(timeout_s=60)
        metrics = pipeline.metrics()
    assert ests and metrics["media_s"] >= 2.0
    if modality == "voice":  # the tone was embedded hop by hop, and is not speech
        assert all(e.modalities == () for e in ests) and metrics["stages"]["voice"]["count"] >= 5
    else:  # the test pattern holds no face, but every frame was analysed
        assert metrics["faces"] >= 30 and metrics["faces_present"] == 0
