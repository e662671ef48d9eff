"""No "unclosed landmarker" error at interpreter exit, however the analyzer was left.

MediaPipe's FaceLandmarker closes itself in ``__del__``; left to interpreter
teardown that fails (``Exception ignored ... TypeError``). Each scenario runs
in a fresh interpreter and its stderr must hold no traceback. MediaPipe's own
start-up log lines (``W0000 ...``, ``INFO: Created TensorFlow Lite XNNPACK
delegate``) are expected and allowed: they cannot be switched off from Python.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import sys, threading
from streamline.face import FaceAnalyzer, FaceSettings, analyze_faces
from streamline.sources import open_media
CLIP = sys.argv[1]
"""

SCENARIOS = {
    # The operator used inside a `with open_media(...)` block, the subscription never
    # disposed, plus an analyzer that is never closed; the interpreter just exits.
    "left_open": """
        got = []
        with open_media(CLIP, audio=False) as media:
            media.video.pipe(analyze_faces(FaceSettings(fps=None))).subscribe(got.append)
            media.wait(30)
        forgotten = FaceAnalyzer(FaceSettings(fps=None))
        frames = []
        with open_media(CLIP, audio=False) as media:
            done = threading.Event()
            media.video.subscribe(frames.append, on_completed=done.set)
            done.wait(30)
        assert forgotten.analyze(frames[0]).present
        print("analysed", len(got) > 0)
    """,
    # The operator runs to completion (closes its analyzer itself).
    "completed": """
        done = threading.Event()
        got = []
        with open_media(CLIP, audio=False) as media:
            media.video.pipe(analyze_faces()).subscribe(got.append, on_completed=done.set)
            assert done.wait(60)
        print("analysed", len(got))
    """,
    # Control: MediaPipe's landmarker used directly and not closed shows the problem.
    "raw_mediapipe_control": """
        import numpy as np
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
        from streamline.models import resolve_model
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(resolve_model("face_landmarker"))),
            running_mode=vision.RunningMode.VIDEO,
        )
        landmarker = vision.FaceLandmarker.create_from_options(options)
        landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)), 0)
        print("analysed")
    """,
}


def _run(name: str, clip) -> subprocess.CompletedProcess[str]:
    code = PRELUDE + textwrap.dedent(SCENARIOS[name])
    return subprocess.run([sys.executable, "-c", code, str(clip)], capture_output=True, text=True, timeout=120)


def _problems(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if "Traceback" in line or "Exception ignored" in line or line.startswith(("E0000", "F0000", "Fatal"))
    ]


@pytest.mark.parametrize("scenario", ["left_open", "completed"])
def test_interpreter_exit_is_clean(scenario: str, bundled_clip) -> None:
    result = _run(scenario, bundled_clip)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "analysed" in result.stdout
    assert _problems(result.stderr) == [], result.stderr[-2000:]


def test_control_unclosed_mediapipe_landmarker_does_complain(bundled_clip) -> None:
    """Proves the check above can fail: the bare MediaPipe object errors at exit."""
    result = _run("raw_mediapipe_control", bundled_clip)
    assert "analysed" in result.stdout
    assert any("Exception ignored" in line for line in _problems(result.stderr)), result.stderr[-2000:]
