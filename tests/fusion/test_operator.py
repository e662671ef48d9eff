"""Synchronizer windows -> model inputs: grids, face presence folded into the mask, text intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamline.face import FaceObservation
from streamline.features import TextFeatures, VoiceFrame
from streamline.fusion import stream_specs, window_inputs
from streamline.sync import Synchronizer, WindowSpec

S = 1_000_000_000


def _face(t_ns: int, present: bool) -> FaceObservation:
    bs = np.full(52, 0.25 if present else np.nan, np.float32)
    return FaceObservation(
        pts_ns=t_ns, present=present, blendshapes=bs,
        head_pose_deg=(5.0, -2.0, 1.0) if present else (math.nan,) * 3,
        box=(10.0, 10.0, 90.0, 90.0) if present else None, landmarks=None, quality=1.0 if present else 0.0,
        track_id=1 if present else None, track_switched=False, num_faces=int(present),
        expression=None, expression_pts_ns=None, image_size=(100, 100),
    )


def _windows() -> list:
    sync = Synchronizer(WindowSpec(2.0, 1.0), stream_specs())
    # 4 s of voice frames, faces at 15 fps absent during [1 s, 2 s), one utterance in [2.5 s, 3.5 s)
    for k in range(400):
        sync.push("voice", VoiceFrame(k * 10_000_000, np.full(57, -30.0 + k % 7, np.float32)))
    for k in range(60):
        t = k * S // 15
        sync.push("face", _face(t, not (S <= t < 2 * S)))
    emb = np.zeros(384, np.float32)
    emb[0] = 1.0
    sync.push("text", TextFeatures(2_500_000_000, 3_500_000_000, 0, "so happy", emb, 0.6, 2))
    for name in ("voice", "face", "text"):
        sync.end_stream(name)
    return sync.poll()


def test_window_inputs_from_synchronizer_windows() -> None:
    windows = _windows()
    assert [w.start_ns for w in windows[:3]] == [0, S, 2 * S]
    w0 = window_inputs(windows[0])  # [0, 2): face absent in its second half, no text
    assert w0.voice is not None and w0.voice.shape == (200, 57) and w0.voice_mask is not None and w0.voice_mask.all()
    assert w0.face is not None and w0.face.shape == (30, 63) and w0.face_mask is not None
    assert w0.face_mask[:15].all() and not w0.face_mask[15:].any()
    assert np.allclose(w0.face[0, :52], 0.25) and np.allclose(w0.face[0, 52:55], (5.0, -2.0, 1.0))
    assert w0.text is None and w0.present == ("face", "voice")
    w1 = window_inputs(windows[1])  # [1, 3): overlaps the utterance
    assert w1.text is not None and w1.text[0] == 1.0 and w1.text[384] == pytest.approx(0.6)
    assert w1.present == ("face", "voice", "text")
    w2 = window_inputs(windows[2])  # [2, 4)
    assert w2.text is not None and w2.face_mask is not None and w2.face_mask.all()


def test_window_without_a_stream_is_an_absent_modality() -> None:
    sync = Synchronizer(WindowSpec(2.0, 1.0), [s for s in stream_specs() if s.name == "voice"])
    for k in range(300):
        sync.push("voice", VoiceFrame(k * 10_000_000, np.zeros(57, np.float32)))
    sync.end_stream("voice")
    w = window_inputs(sync.poll()[0])
    assert w.present == ("voice",) and w.face is None and w.text is None
