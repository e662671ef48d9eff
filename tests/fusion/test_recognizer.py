"""The shipped weights, the recognizer and its causal running estimate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from streamline.errors import ClosedError, ConfigError, ModelNotFoundError  # noqa: E402
from streamline.fusion import CLASSES, DEFAULT_WEIGHTS_DIR, EmotionRecognizer, RecognizerSettings, WindowInputs  # noqa: E402
from streamline.features import TEXT_EMBEDDING_DIM  # noqa: E402
from streamline.fusion.extract import TEXT_FEATURE_DIM  # noqa: E402
from streamline.fusion.recognizer import RunningFilter, load_model  # noqa: E402


def _windows(n: int, seed: int = 0) -> list[WindowInputs]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        kind = k % 4
        voice = np.concatenate([rng.standard_normal((4, 384)), rng.random((4, 384)) + 0.1, np.ones((4, 1))], 1).astype(np.float32)
        face = rng.random((30, 63)).astype(np.float32)
        text = np.zeros(TEXT_FEATURE_DIM, np.float32)
        text[:TEXT_EMBEDDING_DIM] = rng.standard_normal(TEXT_EMBEDDING_DIM)
        out.append(
            WindowInputs(
                face=face if kind != 1 else None,
                face_mask=np.ones(30, bool) if kind != 1 else None,
                voice=voice if kind != 2 else None,
                voice_mask=np.ones(4, bool) if kind != 2 else None,
                text=text if kind == 0 else None,
            )
        )
    return out


@pytest.fixture(scope="module")
def recognizer():
    with EmotionRecognizer() as rec:
        yield rec


def test_shipped_weights_are_small_and_load_offline() -> None:
    config = json.loads((DEFAULT_WEIGHTS_DIR / "fusion.json").read_text())
    total = sum(p.stat().st_size for p in DEFAULT_WEIGHTS_DIR.iterdir() if p.is_file())
    assert (DEFAULT_WEIGHTS_DIR / config["weights_file"]).stat().st_size <= 10 * 1024 * 1024
    assert total <= 10 * 1024 * 1024
    net, cfg = load_model()
    assert cfg["classes"] == list(CLASSES)
    assert not net.training


def test_a_tampered_weights_file_is_refused(tmp_path: Path) -> None:
    shutil.copytree(DEFAULT_WEIGHTS_DIR, tmp_path / "w")
    weights = tmp_path / "w" / "fusion.pt"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelNotFoundError, match="SHA-256"):
        load_model(tmp_path / "w")
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_model(tmp_path / "nowhere")


def test_estimates_are_valid_for_every_kind_of_window(recognizer: EmotionRecognizer) -> None:
    recognizer.reset()
    wins = _windows(8)
    spans = [(k * 500_000_000, k * 500_000_000 + 2_000_000_000) for k in range(8)]
    ests = recognizer.estimate_many(wins, spans)
    for w, e in zip(wins, ests):
        assert e.probs.shape == (7,) and e.probs.dtype == np.float32
        assert abs(float(e.probs.sum()) - 1) < 1e-5 and (e.probs >= 0).all()
        assert -1 <= e.valence <= 1 and -1 <= e.arousal <= 1
        assert e.confidence == pytest.approx(float(e.probs.max()))
        assert e.modalities == w.present
        assert set(e.contributions) == set(w.present)
        assert sum(e.contributions.values()) == pytest.approx(1.0, abs=1e-5)
        assert abs(float(e.running_probs.sum()) - 1) < 1e-5
    d = ests[0].as_dict()
    for key in ("type", "start_s", "end_s", "probs", "valence", "arousal", "confidence", "modalities", "contributions"):
        assert key in d
    assert d["type"] == "estimate" and list(d["probs"]) == list(CLASSES) and d["end_s"] == 2.0
    json.dumps(d)


def test_running_estimate_is_causal(recognizer: EmotionRecognizer) -> None:
    wins = _windows(12, seed=3)
    spans = [(k * 500_000_000, k * 500_000_000 + 2_000_000_000) for k in range(12)]

    def run(windows: list[WindowInputs]) -> list:
        recognizer.reset()
        return [recognizer.estimate(w, start_ns=s, end_ns=e) for w, (s, e) in zip(windows, spans)]

    full = run(wins)
    prefix = run(wins[:5])
    other_future = run(wins[:5] + _windows(7, seed=99))
    for a, b, c in zip(full[:5], prefix, other_future[:5]):
        assert np.array_equal(a.running_probs, b.running_probs) and np.array_equal(a.running_probs, c.running_probs)
        assert a.running_valence == b.running_valence == c.running_valence
    assert not np.array_equal(full[7].running_probs, other_future[7].running_probs)  # the futures did differ
    assert np.array_equal(full[0].running_probs, full[0].probs)  # the first window sets the state
    assert not np.array_equal(full[4].running_probs, full[4].probs)  # later ones are smoothed
    # one batched call gives the same estimates up to float rounding
    recognizer.reset()
    batched = recognizer.estimate_many(wins, spans)
    for a, b in zip(full, batched):
        assert np.allclose(a.running_probs, b.running_probs, atol=1e-5)


def test_a_window_without_data_leaves_the_running_estimate_alone(recognizer: EmotionRecognizer) -> None:
    recognizer.reset()
    first = recognizer.estimate(_windows(1)[0], start_ns=0, end_ns=2_000_000_000)
    empty = recognizer.estimate(WindowInputs(), start_ns=500_000_000, end_ns=2_500_000_000)
    assert empty.modalities == () and empty.contributions == {}
    assert np.allclose(empty.probs, 1 / 7) and empty.valence == 0.0
    assert np.array_equal(empty.running_probs, first.running_probs)


def test_running_filter_gain_follows_time_and_confidence() -> None:
    f = RunningFilter(time_constant_s=1.0)
    a = np.eye(7, dtype=np.float32)[0]
    b = np.eye(7, dtype=np.float32)[1]
    f.update(0, a, 0.0, 0.0, 1.0, True)
    p, _, _ = f.update(1_000_000_000, b, 1.0, 0.0, 1.0, True)  # dt = tau, full confidence: gain 1 - e^-1
    assert p[1] == pytest.approx(1 - np.exp(-1), rel=1e-5)
    g = RunningFilter(time_constant_s=1.0)
    g.update(0, a, 0.0, 0.0, 1.0, True)
    q, _, _ = g.update(1_000_000_000, b, 1.0, 0.0, 1 / 7, True)  # no confidence: half the gain
    assert q[1] == pytest.approx(0.5 * (1 - np.exp(-1)), rel=1e-5)


def test_bad_inputs_and_closed_recognizer() -> None:
    with pytest.raises(ConfigError):
        WindowInputs(voice=np.zeros((10, 50), np.float32), voice_mask=np.ones(10, bool))
    with pytest.raises(ConfigError):
        WindowInputs(face=np.zeros((3, 63), np.float32))
    with pytest.raises(ConfigError):
        RecognizerSettings(time_constant_s=0)
    rec = EmotionRecognizer()
    rec.close()
    with pytest.raises(ClosedError):
        rec.predict(_windows(1))


def test_int8_quantized_recognizer_agrees_mostly(recognizer: EmotionRecognizer) -> None:
    wins = _windows(16, seed=7)
    with EmotionRecognizer(RecognizerSettings(quantized=True)) as q:
        a = recognizer.predict(wins)["probs"]
        b = q.predict(wins)["probs"]
    # int8 weights move a probability by a few thousandths on most windows, and by up
    # to about 0.2 on the odd window near a decision boundary; the decisions agree
    assert (a.argmax(1) == b.argmax(1)).mean() >= 14 / 16
    assert np.abs(a - b).mean() < 0.02 and np.abs(a - b).max() < 0.3
