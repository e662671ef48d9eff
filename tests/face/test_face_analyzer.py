"""FaceAnalyzer on the bundled GRID clip, a face-less test pattern and awkward inputs."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest

from streamline.errors import ClosedError, ConfigError, MediaError, TimestampError
from streamline.face import BLENDSHAPE_NAMES, FaceAnalyzer, FaceSettings, analyze_faces
from streamline.face.landmarker import Landmarker
from streamline.types import VideoFrame

cv2 = pytest.importorskip("cv2")

MS = 1_000_000


@pytest.fixture(scope="module")
def grid_observations(grid_frames):
    """Default settings (15 fps) over the whole bundled clip."""
    with FaceAnalyzer(FaceSettings(landmarks=True)) as analyzer:
        observations = [analyzer.analyze(frame) for frame in grid_frames]
        stats = analyzer.stats
    return observations, stats


def test_bundled_clip_has_a_face_in_every_analysed_frame(grid_observations, grid_frames) -> None:
    observations, stats = grid_observations
    analysed = [o for o in observations if o is not None]
    assert stats.frames == 75 and stats.analysed == len(analysed) == 45  # 3 s at 15 fps, from 25 fps
    assert sum(o.present for o in analysed) >= 0.95 * len(analysed)
    for obs in analysed:
        if not obs.present:
            continue
        assert obs.image_size == (360, 288)
        x0, y0, x1, y1 = obs.box
        assert 0 <= x0 < x1 <= 360 and 0 <= y0 < y1 <= 288
        assert 80 < x1 - x0 < 200 and 100 < y1 - y0 < 220  # the GRID face is ~110 x 135 px
        assert obs.blendshapes.shape == (52,) and obs.blendshapes.dtype == np.float32
        assert np.all((obs.blendshapes >= 0) & (obs.blendshapes <= 1))
        assert obs.landmarks.shape == (478, 3) and obs.landmarks.dtype == np.float32
        assert abs(obs.head_pose_deg[0]) < 15  # frontal speaker
        assert obs.quality > 0.7
        assert obs.track_id == analysed[0].track_id and not obs.track_switched
        assert obs.num_faces == 1 and obs.expression is None
    # The landmark extent is the box.
    obs = analysed[0]
    assert obs.box == pytest.approx(
        (obs.landmarks[:, 0].min(), obs.landmarks[:, 1].min(), obs.landmarks[:, 0].max(), obs.landmarks[:, 1].max()),
        abs=1e-3,
    )


def test_rate_keeps_a_15_fps_cadence_by_timestamp(grid_observations) -> None:
    observations, _ = grid_observations
    times_ms = [o.pts_ns // MS for o in observations if o is not None]
    gaps = np.diff(times_ms)
    assert set(gaps) <= {40, 80}  # 25 fps source: 3 frames in every 5
    assert all(times_ms[i] == 200 * (i // 3) + (0, 80, 160)[i % 3] for i in range(len(times_ms)))


def test_blendshape_names_match_mediapipe_output(monkeypatch, face_image) -> None:
    results = []
    original = Landmarker.detect

    def detect(self, image, timestamp_ms):
        results.append(original(self, image, timestamp_ms))
        return results[-1]

    monkeypatch.setattr(Landmarker, "detect", detect)
    with FaceAnalyzer(FaceSettings(fps=None)) as analyzer:
        obs = analyzer.analyze(VideoFrame(0, face_image))
    categories = results[0].face_blendshapes[0]
    assert tuple(c.category_name for c in categories) == BLENDSHAPE_NAMES
    for c in categories:
        assert obs.blendshape(c.category_name) == pytest.approx(c.score, abs=1e-6)
    assert set(obs.blendshape_dict()) == set(BLENDSHAPE_NAMES)
    with pytest.raises(KeyError, match="BLENDSHAPE_NAMES"):
        obs.blendshape("smile")


def _testsrc_clip(tmp_path, encode_clip):
    with av.open("testsrc=size=320x240:rate=25:duration=3", format="lavfi") as pattern:
        images = [frame.to_ndarray(format="rgb24") for frame in pattern.decode(video=0)]
    return encode_clip(tmp_path / "testsrc.mp4", images, fmt="mp4", codec="mpeg4")


def test_no_face_clip_gives_present_false_at_the_same_cadence(tmp_path, encode_clip, read_frames, run_operator) -> None:
    clip = _testsrc_clip(tmp_path, encode_clip)
    frames = read_frames(clip)
    assert len(frames) == 75
    operator = analyze_faces(FaceSettings(fps=15))
    observations = run_operator(frames, operator)
    assert len(observations) == 45
    assert [o.pts_ns // MS for o in observations] == [200 * (i // 3) + (0, 80, 160)[i % 3] for i in range(45)]
    for obs in observations:
        assert not obs.present
        assert np.isnan(obs.blendshapes).all() and all(math.isnan(v) for v in obs.head_pose_deg)
        assert obs.box is None and obs.landmarks is None and obs.track_id is None
        assert obs.quality == 0.0 and obs.num_faces == 0 and obs.image_size == (320, 240)
        assert obs.blendshape_dict() == {}
        line = obs.to_json_dict()
        assert line["present"] is False and line["blendshapes"] is None and line["head_pose_deg"] is None
    assert operator.stats.without_face == 45


def _padded_odd_width(image: np.ndarray, width: int) -> np.ndarray:
    resized = cv2.resize(image, (width, image.shape[0]))
    buffer = np.zeros((image.shape[0], width + 13, 3), np.uint8)  # rows padded, like PyAV's
    buffer[:, :width] = resized
    return buffer[:, :width]


def test_awkward_images_all_find_the_face(every_frame_analyzer, face_image) -> None:
    gray = cv2.cvtColor(face_image, cv2.COLOR_RGB2GRAY)
    rgba = cv2.cvtColor(face_image, cv2.COLOR_RGB2RGBA)
    rgba[:, :, 3] = 0  # a transparent layer must not hide the face
    variants = {
        "gray (H, W)": gray,
        "gray (H, W, 1)": gray[:, :, None],
        "RGBA": rgba,
        "odd width 359, padded rows": _padded_odd_width(face_image, 359),
        "odd width 357, padded rows": _padded_odd_width(face_image, 357),
        "float in [0, 1]": face_image.astype(np.float32) / 255.0,
        "BGR view with negative strides": face_image[:, :, ::-1][:, :, ::-1],
    }
    every_frame_analyzer.reset()
    for i, (label, image) in enumerate(variants.items()):
        obs = every_frame_analyzer.analyze(VideoFrame(i * 40 * MS, image))
        assert obs.present, label
        assert obs.image_size == (image.shape[1], image.shape[0]), label
        assert abs(obs.head_pose_deg[0]) < 15, label


def test_resolution_changes_mid_stream(every_frame_analyzer, grid_frames) -> None:
    every_frame_analyzer.reset()
    sizes = [(360, 288), (720, 576), (357, 285), (1280, 720), (360, 288)]
    observations = []
    t = 0
    for width, height in sizes:
        for frame in grid_frames[:5]:
            image = cv2.resize(frame.image, (width, height))
            observations.append(every_frame_analyzer.analyze(VideoFrame(t, image)))
            t += 40 * MS
    assert all(o.present for o in observations)
    assert [o.image_size for o in observations[::5]] == sizes
    # The box follows the scale of the picture.
    small, big = observations[0].box, observations[5].box
    assert (big[2] - big[0]) / (small[2] - small[0]) == pytest.approx(2.0, rel=0.1)
    # Tracking works on image-relative boxes: one face, one track, through every size.
    assert len({o.track_id for o in observations}) == 1
    assert not any(o.track_switched for o in observations)


@pytest.mark.parametrize(
    ("name", "pix_fmt", "size"),
    [("gray.mkv", "gray", (359, 287)), ("rgba.mkv", "bgra", (361, 288)), ("yuv444.mkv", "yuv444p", (357, 289))],
)
def test_pyav_encoded_odd_clips_through_the_source(tmp_path, encode_clip, read_frames, grid_frames, name, pix_fmt, size) -> None:
    clip = encode_clip(tmp_path / name, [f.image for f in grid_frames[:15]], size=size, pix_fmt=pix_fmt)
    frames = read_frames(clip)
    assert frames[0].image.shape == (size[1], size[0], 3)
    with FaceAnalyzer(FaceSettings(fps=None)) as analyzer:
        observations = [analyzer.analyze(f) for f in frames]
    assert sum(o.present for o in observations) >= 14


def test_resolution_change_inside_one_file(tmp_path, encode_clip, read_frames, grid_frames) -> None:
    """Two MPEG-TS segments of different sizes, concatenated byte for byte."""
    images = [f.image for f in grid_frames[:15]]
    first = encode_clip(tmp_path / "a.ts", images, fmt="mpegts", codec="mpeg2video")
    second = encode_clip(tmp_path / "b.ts", images, size=(640, 480), fmt="mpegts", codec="mpeg2video")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    frames = read_frames(joined)
    shapes = {f.image.shape for f in frames}
    assert shapes == {(288, 360, 3), (480, 640, 3)}
    with FaceAnalyzer(FaceSettings(fps=None)) as analyzer:
        observations = [analyzer.analyze(f) for f in frames]
    assert sum(o.present for o in observations) >= len(frames) - 1
    assert {o.image_size for o in observations} == {(360, 288), (640, 480)}


def test_rotated_video_is_analysed_upright(tmp_path, read_frames, grid_frames) -> None:
    """A phone-style clip: pictures stored sideways with a 90-degree display
    rotation in the container. The source turns them upright; the face is found
    with its head upright (small roll), not lying at 90 degrees."""
    sideways = [np.ascontiguousarray(np.rot90(f.image, k=-1)) for f in grid_frames[:10]]  # (360, 288)
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 288, 360, "yuv420p"
        stream.set_display_rotation(90)  # degrees counter-clockwise, as phones write it
        for i, image in enumerate(sideways):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    frames = read_frames(path)
    assert frames[0].image.shape == (288, 360, 3)  # upright, as stored before turning
    with FaceAnalyzer(FaceSettings(fps=None)) as analyzer:
        observations = [analyzer.analyze(f) for f in frames]
    assert all(o.present for o in observations)
    assert all(abs(o.head_pose_deg[2]) < 15 for o in observations)


def test_bad_frames_and_settings_raise_typed_errors(every_frame_analyzer) -> None:
    with pytest.raises(MediaError, match="video frame at 1.000 s"):
        every_frame_analyzer.analyze(VideoFrame(10**9, np.zeros((4, 4, 2), np.uint8)))
    with pytest.raises(TimestampError, match="pts_ns"):
        every_frame_analyzer.analyze(VideoFrame(1.5, np.zeros((4, 4, 3), np.uint8)))  # type: ignore[arg-type]
    for bad in (dict(fps=0), dict(fps=float("nan")), dict(num_faces=0), dict(queue_size=0), dict(switch_ratio=0.5)):
        with pytest.raises(ConfigError, match="FaceSettings"):
            FaceSettings(**bad)


def test_closed_analyzer_raises_closed_error(face_image) -> None:
    analyzer = FaceAnalyzer(FaceSettings(fps=None))
    analyzer.close()
    analyzer.close()  # idempotent
    with pytest.raises(ClosedError):
        analyzer.analyze(VideoFrame(0, face_image))


def test_model_override_folder_and_missing_model(tmp_path, monkeypatch, face_image) -> None:
    from streamline.errors import ModelNotFoundError
    from streamline.models import resolve_model

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "face_landmarker.task").write_bytes(resolve_model("face_landmarker").read_bytes())
    with FaceAnalyzer(FaceSettings(fps=None, model_dir=folder)) as analyzer:
        assert analyzer.analyze(VideoFrame(0, face_image)).present
    # A model folder the user names must hold the model: no silent fallback.
    with pytest.raises(ModelNotFoundError, match="face_landmarker.task"):
        FaceAnalyzer(FaceSettings(model_dir=tmp_path / "empty"))
    # The environment variable is honoured (a file path here).
    monkeypatch.setenv("STREAMLINE_FACE_LANDMARKER", str(folder / "face_landmarker.task"))
    with FaceAnalyzer(FaceSettings(fps=None)) as analyzer:
        assert analyzer.model_path == folder / "face_landmarker.task"
    garbage = tmp_path / "bad" / "face_landmarker.task"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="cannot load"):
        FaceAnalyzer(FaceSettings(model_dir=garbage))
