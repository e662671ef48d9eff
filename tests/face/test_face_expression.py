"""The optional facex expression classifier: class order, rate, and real faces."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from streamline.face import EXPRESSION_CLASSES, FaceAnalyzer, FaceSettings
from streamline.face.expression import FACEX_CLASSES, FACEX_TO_STREAMLINE, crop_face
from streamline.types import VideoFrame

MS = 1_000_000


def test_facex_class_order_matches_the_package_source() -> None:
    """Read facex/core.py (without importing facex, which pulls TensorFlow) and
    compare its default category list with ours."""
    spec = importlib.util.find_spec("facex")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("facex is not installed")
    source = (Path(list(spec.submodule_search_locations)[0]) / "core.py").read_text()
    lists = [
        ast.literal_eval(node)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.List) and all(isinstance(e, ast.Constant) for e in node.elts) and len(node.elts) == 7
    ]
    assert lists == [list(FACEX_CLASSES)]
    assert sorted(FACEX_TO_STREAMLINE.values()) == sorted(EXPRESSION_CLASSES)


def test_crop_face_is_square_with_margin_and_edge_replication() -> None:
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    crop = crop_face(image, (10.0, 5.0, 20.0, 15.0), margin=0.1)
    assert crop.shape == (12, 12, 3)
    np.testing.assert_array_equal(crop, image[4:16, 9:21])
    edge = crop_face(image, (0.0, 0.0, 10.0, 10.0), margin=0.5)  # sticks out top-left
    assert edge.shape == (20, 20, 3)
    np.testing.assert_array_equal(edge[0, 0], image[0, 0])


def test_expression_on_the_bundled_clip_at_its_own_rate(grid_frames) -> None:
    settings = FaceSettings(fps=None, expression=True, expression_fps=5)
    with FaceAnalyzer(settings) as analyzer:
        observations = [analyzer.analyze(f) for f in grid_frames]
        stats = analyzer.stats
    assert stats.expression_runs == 15  # 3 s at 5 per second
    fresh = [o for o in observations if o.expression_pts_ns == o.pts_ns]
    assert [o.pts_ns // MS for o in fresh] == list(range(0, 3000, 200))
    for obs in observations:
        assert obs.expression is not None and obs.expression.shape == (7,)
        assert obs.expression.sum() == pytest.approx(1.0, abs=1e-4)
        assert 0 <= obs.pts_ns - obs.expression_pts_ns < 200 * MS  # carried between updates
        assert set(obs.expression_dict()) == set(EXPRESSION_CLASSES)
        assert set(obs.to_json_dict()["expression"]) == set(EXPRESSION_CLASSES)


def test_no_expression_without_a_face(grid_frames) -> None:
    with FaceAnalyzer(FaceSettings(fps=None, expression=True)) as analyzer:
        blank = analyzer.analyze(VideoFrame(0, np.full((240, 320, 3), 127, np.uint8)))
        assert not blank.present and blank.expression is None
        face = analyzer.analyze(VideoFrame(40 * MS, grid_frames[0].image))
        assert face.present and face.expression is not None


def _mean_expression(analyzer: FaceAnalyzer, frames) -> np.ndarray:
    analyzer.reset()
    probs = [o.expression for o in (analyzer.analyze(f) for f in frames) if o is not None and o.expression is not None]
    assert len(probs) >= 10
    return np.mean(probs, axis=0)


def test_mead_happy_and_neutral_clips_are_named_correctly(shared_data, read_frames) -> None:
    """MEAD front-view clips (M030, W009): the happy clip's mean expression is
    'happy' and the neutral clip's is 'neutral' (the clearest two classes; the
    other MEAD emotions are often confused by this model, see docs/face.md)."""
    clips = shared_data / "mead" / "style_clips"
    with FaceAnalyzer(FaceSettings(fps=10, expression=True, expression_fps=10)) as analyzer:
        for speaker in ("M030", "W009"):
            happy = _mean_expression(analyzer, read_frames(clips / f"{speaker}_front_happy_level3_001.mp4"))
            neutral = _mean_expression(analyzer, read_frames(clips / f"{speaker}_front_neutral_level1_001.mp4"))
            assert EXPRESSION_CLASSES[int(happy.argmax())] == "happy", (speaker, happy)
            assert EXPRESSION_CLASSES[int(neutral.argmax())] == "neutral", (speaker, neutral)
            h = EXPRESSION_CLASSES.index("happy")
            assert happy[h] > neutral[h] + 0.3
