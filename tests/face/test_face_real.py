"""Real faces from ../shared/data: MEAD emotional clips and talking heads.

The blendshape assertions were chosen after looking at the data (medians over
each clip's frames, docs/face.md has the table): they compare an emotional clip
with the same speaker's neutral clip, on the blendshapes FACS would predict,
with margins several times smaller than the observed differences.
"""

from __future__ import annotations

import numpy as np
import pytest

from streamline.face import BLENDSHAPE_NAMES, FaceAnalyzer, FaceSettings

SPEAKERS = ("M030", "W009")


@pytest.fixture(scope="module")
def mead(shared_data, read_frames):
    """Blendshapes (n, 52) at 15 fps of four MEAD front clips per speaker, and detection rates."""
    clips = shared_data / "mead" / "style_clips"
    out: dict[tuple[str, str], np.ndarray] = {}
    detected: dict[tuple[str, str], float] = {}
    with FaceAnalyzer(FaceSettings(fps=15)) as analyzer:
        for speaker in SPEAKERS:
            for emotion, level in (("neutral", 1), ("happy", 3), ("sad", 3), ("angry", 3)):
                frames = read_frames(clips / f"{speaker}_front_{emotion}_level{level}_001.mp4")
                analyzer.reset()
                observations = [o for o in (analyzer.analyze(f) for f in frames) if o is not None]
                present = [o for o in observations if o.present]
                detected[speaker, emotion] = len(present) / len(observations)
                out[speaker, emotion] = np.array([o.blendshapes for o in present])
    return out, detected


def _median(blendshapes: np.ndarray, *names: str, percentile: float = 50) -> float:
    """Median (or another percentile) over frames of the mean of the named blendshapes."""
    columns = [BLENDSHAPE_NAMES.index(n) for n in names]
    return float(np.percentile(blendshapes[:, columns].mean(axis=1), percentile))


def test_mead_face_found_in_every_frame(mead) -> None:
    _, detected = mead
    assert min(detected.values()) >= 0.98, detected


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_happy_smiles_more_than_neutral(mead, speaker) -> None:
    blend, _ = mead
    smile = ("mouthSmileLeft", "mouthSmileRight")
    happy, neutral = _median(blend[speaker, "happy"], *smile), _median(blend[speaker, "neutral"], *smile)
    assert happy > neutral + 0.3, (happy, neutral)  # observed: 0.55-0.62 vs <= 0.002


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_sad_lowers_the_mouth_corners_and_the_outer_brows(mead, speaker) -> None:
    blend, _ = mead
    frown = ("mouthFrownLeft", "mouthFrownRight")
    outer = ("browOuterUpLeft", "browOuterUpRight")
    sad, neutral = blend[speaker, "sad"], blend[speaker, "neutral"]
    # Upper quartile: W009's sadness shows in part of the clip (observed 0.018 vs 0.0004; M030 0.35).
    sad_frown, neutral_frown = _median(sad, *frown, percentile=75), _median(neutral, *frown, percentile=75)
    assert sad_frown > 5 * neutral_frown + 0.008, (sad_frown, neutral_frown)
    assert _median(sad, *outer) < _median(neutral, *outer) - 0.1  # observed: 0.20 and 0.56 lower


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_angry_lowers_the_brows(mead, speaker) -> None:
    blend, _ = mead
    down = ("browDownLeft", "browDownRight")
    outer = ("browOuterUpLeft", "browOuterUpRight")
    angry, neutral = blend[speaker, "angry"], blend[speaker, "neutral"]
    assert _median(angry, *down) > _median(neutral, *down) + 0.03  # observed: 0.056 and 0.10 higher
    assert _median(angry, *outer) < _median(neutral, *outer) - 0.1  # observed: 0.18 and 0.57 lower


def test_m030_sad_also_knits_the_brows(mead) -> None:
    """The strong M030 sad performance: brows pulled down and mouth corners down (AU4 + AU15)."""
    blend, _ = mead
    sad, neutral = blend["M030", "sad"], blend["M030", "neutral"]
    # observed: 0.19 vs 0.003, and 0.24
    assert _median(sad, "browDownLeft", "browDownRight") > _median(neutral, "browDownLeft", "browDownRight") + 0.08
    assert _median(sad, "mouthFrownLeft", "mouthFrownRight") > 0.1


@pytest.mark.parametrize(
    "name",
    [
        "video_retalking/face_1.mp4",  # variable frame rate
        "video_retalking/face_2.mp4",
        "video_retalking/face_3.mp4",
        "video_retalking/face_4.mp4",
        "video_retalking/face_5.mp4",
        "edtalk/uncrop_Obama.mp4",
        "edtalk/mouth_source.mp4",
        "edtalk/pose_source2.mp4",
    ],
)
def test_talking_heads_have_a_face_in_nearly_every_frame(shared_data, read_frames, name) -> None:
    frames = read_frames(shared_data / "talking_head" / name, fps=5)[:100]  # up to 20 s
    with FaceAnalyzer(FaceSettings(fps=None)) as analyzer:
        observations = [analyzer.analyze(f) for f in frames]
    present = [o for o in observations if o.present]
    assert len(present) >= 0.97 * len(observations), f"{len(present)}/{len(observations)}"
    assert len({o.track_id for o in present}) == 1  # one speaker, one track
    assert all(o.quality > 0.3 for o in present)
