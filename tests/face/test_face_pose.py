"""Head pose: the decomposition, and its signs checked on real faces.

Convention (streamline.face.pose): yaw > 0 nose towards the image's right,
pitch > 0 nose up, roll > 0 face turned counter-clockwise in the displayed image.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamline.face import FaceSettings, head_pose_from_matrix
from streamline.face.pose import rotation_from_head_pose
from streamline.types import VideoFrame

cv2 = pytest.importorskip("cv2")


@settings(max_examples=200, deadline=None)
@given(
    yaw=st.floats(-89, 89),
    pitch=st.floats(-80, 80),
    roll=st.floats(-179, 179),
    scale=st.floats(0.2, 5.0),
)
def test_decomposition_inverts_composition(yaw: float, pitch: float, roll: float, scale: float) -> None:
    matrix = np.eye(4)
    matrix[:3, :3] = scale * rotation_from_head_pose(yaw, pitch, roll)
    matrix[:3, 3] = (1.0, -4.0, -40.0)
    got = head_pose_from_matrix(matrix)
    assert got == pytest.approx((yaw, pitch, roll), abs=1e-6)


def test_elementary_rotations_have_the_documented_signs() -> None:
    # A rotation about the camera's +y axis (up) turns the face's forward axis (+z,
    # towards the viewer) towards +x, the right of the image: positive yaw.
    a = math.radians(10)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    assert head_pose_from_matrix(ry) == pytest.approx((10, 0, 0), abs=1e-9)
    # About +x: forward (0, 0, 1) -> (0, -sin, cos), the nose goes down: negative pitch.
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    assert head_pose_from_matrix(rx) == pytest.approx((0, -10, 0), abs=1e-9)
    # About +z (towards the viewer): counter-clockwise as the viewer sees it: positive roll.
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    assert head_pose_from_matrix(rz) == pytest.approx((0, 0, 10), abs=1e-9)


def test_bad_matrices_raise() -> None:
    with pytest.raises(ValueError, match="shape"):
        head_pose_from_matrix(np.eye(2))
    bad = np.eye(4)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        head_pose_from_matrix(bad)


def _pose(analyzer, image: np.ndarray) -> tuple[float, float, float]:
    analyzer.reset()
    observation = analyzer.process(VideoFrame(0, np.ascontiguousarray(image)))
    assert observation.present
    return observation.head_pose_deg


def test_frontal_face_mirror_and_in_plane_rotation(every_frame_analyzer, face_image: np.ndarray) -> None:
    """On the GRID speaker (frontal): small angles; a mirror flips yaw and roll; rotating
    the picture counter-clockwise by 20 degrees adds about 20 degrees of roll."""
    yaw, pitch, roll = _pose(every_frame_analyzer, face_image)
    assert abs(yaw) < 10 and abs(pitch) < 10 and abs(roll) < 10
    m_yaw, m_pitch, m_roll = _pose(every_frame_analyzer, face_image[:, ::-1])
    assert m_yaw == pytest.approx(-yaw, abs=2.0)
    assert m_roll == pytest.approx(-roll, abs=2.0)
    assert m_pitch == pytest.approx(pitch, abs=2.0)
    height, width = face_image.shape[:2]
    for angle in (-20.0, 20.0):
        turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)  # angle > 0: counter-clockwise
        rotated = cv2.warpAffine(face_image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
        r_roll = _pose(every_frame_analyzer, rotated)[2]
        assert r_roll - roll == pytest.approx(angle, abs=5.0)


def test_pose_signs_agree_with_landmark_geometry_on_a_moving_head(shared_data, read_frames) -> None:
    """pose_source2.mp4: a talking head turning and nodding. Yaw follows the nose's
    horizontal offset from the eyes, roll the tilt of the eye line, pitch (inversely)
    the nose's drop below the eyes."""
    from streamline.face import FaceAnalyzer

    frames = read_frames(shared_data / "talking_head" / "edtalk" / "pose_source2.mp4", fps=5)[:150]
    rows = []
    with FaceAnalyzer(FaceSettings(fps=None, landmarks=True)) as analyzer:
        for frame in frames:
            obs = analyzer.analyze(frame)
            if obs is None or not obs.present:
                continue
            lm = obs.landmarks
            # 33 / 263: outer eye corners (image left / right); 1: nose tip; 13, 14: lips.
            eyes = (lm[33] + lm[263]) / 2
            mouth = (lm[13] + lm[14]) / 2
            eye_dist = np.linalg.norm(lm[263, :2] - lm[33, :2])
            nose_dx = (lm[1, 0] - eyes[0]) / eye_dist
            nose_dy = (lm[1, 1] - eyes[1]) / np.linalg.norm(mouth[:2] - eyes[:2])
            tilt = math.degrees(math.atan2(-(lm[263, 1] - lm[33, 1]), lm[263, 0] - lm[33, 0]))
            rows.append((*obs.head_pose_deg, nose_dx, nose_dy, tilt))
    data = np.array(rows)
    assert len(data) >= 140
    assert np.ptp(data[:, 0]) > 10, "the clip should turn the head by more than 10 degrees"
    assert np.corrcoef(data[:, 0], data[:, 3])[0, 1] > 0.8
    assert np.corrcoef(data[:, 1], data[:, 4])[0, 1] < -0.5
    assert np.corrcoef(data[:, 2], data[:, 5])[0, 1] > 0.8
