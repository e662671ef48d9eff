"""Synchronizer windows -> model inputs: grids, face presence folded into the mask, text intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamline.face import FaceObservation
from streamline.features import TEXT_EMBEDDING_DIM, TextFeatures, VoiceEmbedding
from streamline.fusion import stream_specs, window_inputs
from streamline.fusion.extract import VOICE_MIN_SPEECH_RATIO
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


def _hop(k: int, weight: float = 1.0, speech_ratio: float = 1.0) -> VoiceEmbedding:
    """Voice item of hop k (0.5 s hops): mean k, std 1."""
    return VoiceEmbedding(k * S // 2, (k + 1) * S // 2, np.full(384, float(k), np.float32), np.ones(384, np.float32),
                          round(25 * weight), weight, speech_ratio)


def _windows() -> list:
    sync = Synchronizer(WindowSpec(2.0, 1.0), stream_specs())
    # 4 s of voice hops, faces at 15 fps absent during [1 s, 2 s), one utterance in [2.5 s, 3.5 s)
    for k in range(8):
        sync.push("voice", _hop(k))
    for k in range(60):
        t = k * S // 15
        sync.push("face", _face(t, not (S <= t < 2 * S)))
    emb = np.zeros(TEXT_EMBEDDING_DIM, np.float32)
    emb[0] = 1.0
    sync.push("text", TextFeatures(2_500_000_000, 3_500_000_000, 0, "so happy", emb, 0.6, 2))
    for name in ("voice", "face", "text"):
        sync.end_stream(name)
    return sync.poll()


def test_window_inputs_from_synchronizer_windows() -> None:
    windows = _windows()
    assert [w.start_ns for w in windows[:3]] == [0, S, 2 * S]
    w0 = window_inputs(windows[0])  # [0, 2): face absent in its second half, no text
    assert w0.voice is not None and w0.voice.shape == (4, 769) and w0.voice_mask is not None and w0.voice_mask.all()
    assert w0.voice[:, 0].tolist() == [0, 1, 2, 3] and (w0.voice[:, 768] == 1).all()  # exactly the window's own hops
    assert w0.face is not None and w0.face.shape == (30, 63) and w0.face_mask is not None
    assert w0.face_mask[:15].all() and not w0.face_mask[15:].any()
    assert np.allclose(w0.face[0, :52], 0.25) and np.allclose(w0.face[0, 52:55], (5.0, -2.0, 1.0))
    assert w0.text is None and w0.present == ("face", "voice")
    w1 = window_inputs(windows[1])  # [1, 3): overlaps the utterance
    assert w1.text is not None and w1.text[0] == 1.0 and w1.text[TEXT_EMBEDDING_DIM] == pytest.approx(0.6)
    assert w1.present == ("face", "voice", "text") and w1.voice is not None and w1.voice[:, 0].tolist() == [2, 3, 4, 5]
    w2 = window_inputs(windows[2])  # [2, 4)
    assert w2.text is not None and w2.face_mask is not None and w2.face_mask.all()


def test_hops_without_speech_are_masked_out_of_the_voice() -> None:
    """Silence is not voice: hops under VOICE_MIN_SPEECH_RATIO are invalid rows, and a window
    holding only such hops has no voice at all (the threshold itself is inclusive)."""
    sync = Synchronizer(WindowSpec(2.0, 2.0), [s for s in stream_specs() if s.name == "voice"])
    ratios = [0.0, VOICE_MIN_SPEECH_RATIO, 1.0, 0.1, 0.0, 0.0, 0.2, 0.0]
    for k, r in enumerate(ratios):
        sync.push("voice", _hop(k, speech_ratio=r))
    sync.end_stream("voice")
    w0, w1 = (window_inputs(w) for w in sync.poll())
    assert w0.voice is not None and w0.voice.shape == (4, 769) and w0.voice[:, 0].tolist() == [0, 1, 2, 3]
    assert w0.voice_mask is not None and w0.voice_mask.tolist() == [False, True, True, False]
    assert w0.present == ("voice",)
    assert w1.present == () and w1.voice_mask is not None and not w1.voice_mask.any()


def test_window_without_a_stream_is_an_absent_modality() -> None:
    sync = Synchronizer(WindowSpec(2.0, 1.0), [s for s in stream_specs() if s.name == "voice"])
    for k in range(6):
        sync.push("voice", _hop(k))
    sync.end_stream("voice")
    w = window_inputs(sync.poll()[0])
    assert w.present == ("voice",) and w.face is None and w.text is None


def test_every_hop_item_lands_in_the_windows_holding_its_time() -> None:
    """Items are not resampled onto a grid: a partial hop stamped off the grid (a stream that
    starts at 0.37 s) still belongs to the first window, and no hop is counted twice."""
    sync = Synchronizer(WindowSpec(2.0, 0.5), [s for s in stream_specs() if s.name == "voice"])
    first = VoiceEmbedding(370_000_000, S // 2, np.full(384, -1.0, np.float32), np.ones(384, np.float32), 6, 0.26, 1.0)
    sync.push("voice", first)
    for k in range(1, 6):
        sync.push("voice", _hop(k))
    sync.end_stream("voice")
    windows = [window_inputs(w) for w in sync.poll()]
    assert windows[0].voice is not None and windows[0].voice[:, 0].tolist() == [-1, 1, 2, 3]
    assert windows[0].voice[0, 768] == pytest.approx(0.26)
    assert windows[1].voice is not None and windows[1].voice[:, 0].tolist() == [1, 2, 3, 4]
