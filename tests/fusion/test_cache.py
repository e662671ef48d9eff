"""Training caches are built with the inference operators (same numbers), with seeded augmentation."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from streamline.fusion import cache as C
from streamline.fusion.datasets import LabeledItem
from streamline.features import TEXT_EMBEDDING_DIM
from streamline.fusion.extract import (
    TEXT_FEATURE_DIM,
    audio_file_features,
    image_face_features,
    texts_features,
    voice_has_speech,
)
from streamline.fusion.train import clip_window_starts


def _wav(path: Path, f0: float, seconds: float = 1.5, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * f0 * t)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype(np.int16).tobytes())
    return path


def test_voice_cache_matches_the_inference_path_and_is_seeded(tmp_path: Path, bundled_clip: Path) -> None:
    items = [LabeledItem(str(_wav(tmp_path / "0.wav", 120)), "happy", speaker="0"),
             LabeledItem(str(bundled_clip), "neutral", speaker="1")]
    path = C.build_voice_cache(items, tmp_path / "v.npz", variants=3)
    cache = C.load_voice_cache(path)
    assert cache.variants == 3 and list(cache.labels) == ["happy", "neutral"]
    _, _, feats, speech = audio_file_features(items[1].path or "")
    # variant 0 is exactly what inference computes, speech flags included
    assert cache.get(1, 0).shape == feats.shape and np.array_equal(cache.get(1, 0), feats)
    assert cache.has_speech(1, 0).tolist() == voice_has_speech(speech).tolist()
    assert 2 <= cache.has_speech(1, 0).sum() < len(feats)  # GRID: silence, a sentence, silence
    assert not cache.has_speech(0, 0).any()  # a steady tone is not speech
    assert not np.array_equal(cache.get(1, 0), cache.get(1, 2))  # the noise variant differs
    again = C.load_voice_cache(C.build_voice_cache(items, tmp_path / "v2.npz", variants=3))
    assert np.array_equal(again.feats, cache.feats)  # seeded: identical rebuild
    mtime = path.stat().st_mtime_ns
    C.build_voice_cache(items, path, variants=3)
    assert path.stat().st_mtime_ns == mtime  # a fresh cache is reused, not rebuilt


def test_text_cache_and_augmentation(tmp_path: Path) -> None:
    items = [LabeledItem(None, "happy", transcript="Oh, I'm SO happy to see you!"), LabeledItem(None, "sad", transcript="no")]
    cache = C.load_text_cache(C.build_text_cache(items, tmp_path / "t.npz"))
    assert cache.feats.shape == (2, 3, TEXT_FEATURE_DIM)
    # the cache batches on all threads, the live path embeds one text on one: the same numbers
    assert np.allclose(cache.feats[:, 0], texts_features([it.transcript or "" for it in items]), atol=1e-4)
    assert cache.feats[0, 0, TEXT_EMBEDDING_DIM] > 0.3  # VADER finds the sentence positive
    rng = np.random.default_rng(0)
    assert C.augment_text("Oh, I'm SO happy!", 1, rng) == "oh i'm so happy"


def test_face_vectors_of_augmented_images(bundled_clip: Path) -> None:
    pytest.importorskip("mediapipe")
    from streamline.face import FaceAnalyzer, FaceSettings
    from streamline.fusion.extract import video_file_faces

    track = video_file_faces(bundled_clip, fps=5)
    assert track.present.mean() > 0.9 and track.feats.shape[1] == 63
    assert (track.feats[track.present, 62] == 1.0).all()  # the facex expression ran
    import av

    with av.open(str(bundled_clip)) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    rng = np.random.default_rng(1)
    imgs = [C.augment_image(img, v, rng) for v in range(5)]
    assert imgs[1].shape == img.shape and np.array_equal(imgs[1], img[:, ::-1])
    with FaceAnalyzer(FaceSettings(fps=None, expression=True)) as analyzer:
        vecs = image_face_features(analyzer, imgs)
    assert all(v is not None for v in vecs)
    # a mirrored face turns the other way: yaw and roll change sign, pitch stays
    yaw0, pitch0, roll0 = vecs[0][52:55]  # type: ignore[index]
    yaw1, pitch1, roll1 = vecs[1][52:55]  # type: ignore[index]
    assert yaw0 * yaw1 < 0 and abs(yaw0 + yaw1) < 2.0
    assert roll0 * roll1 < 0 and abs(roll0 + roll1) < 2.0
    assert abs(pitch0 - pitch1) < 2.0


def test_clip_window_starts() -> None:
    assert clip_window_starts(150, 200, 50) == [0]
    assert clip_window_starts(200, 200, 50) == [0]
    assert clip_window_starts(260, 200, 50) == [0, 50, 60]
    assert clip_window_starts(300, 200, 50) == [0, 50, 100]
