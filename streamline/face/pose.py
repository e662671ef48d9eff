"""Head pose (yaw, pitch, roll) from MediaPipe's facial transformation matrix.

MediaPipe's face geometry module (``face_geometry``, "metric 3D space") returns,
per face, a 4x4 matrix that maps the canonical face model into the camera
frame. The canonical face looks straight at the camera when the rotation part
is the identity. The camera frame is OpenGL-style: ``+x`` to the right of the
image, ``+y`` up, ``+z`` out of the screen towards the viewer (the face sits at
negative z). Source: MediaPipe ``face_geometry`` documentation and
``geometry_pipeline_calculator.cc`` (the "metric space" of the canonical model).

streamline's convention (checked on real clips in ``tests/face``, see
docs/face.md):

* **yaw**: rotation about the camera's vertical axis. Positive when the nose
  points towards the **right of the image** (the person turns to *their* left
  in an unmirrored camera image).
* **pitch**: rotation about the camera's horizontal axis. Positive when the
  nose points **up** (chin raised).
* **roll**: rotation about the viewing axis. Positive when the face is turned
  **counter-clockwise in the image as displayed** (the top of the head moves
  towards the left of the image).

All three are 0 for a face looking straight into the camera. They come from
the decomposition ``R = Ry(yaw) @ Rx(-pitch) @ Rz(roll)`` of the rotation
(intrinsic yaw, then pitch, then roll, the usual order for heads); each is in
degrees, yaw and roll in (-180, 180], pitch in [-90, 90].
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["head_pose_from_matrix", "rotation_from_head_pose"]


def head_pose_from_matrix(matrix: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch and roll in degrees from a facial transformation matrix.

    Args:
        matrix: (4, 4) or (3, 3) float array; only the upper-left 3x3 block is used.
            Any uniform scale in it is removed first (the nearest rotation is
            taken with an SVD, so a slightly non-orthogonal matrix is fine).

    Returns:
        ``(yaw_deg, pitch_deg, roll_deg)`` in the convention of this module's docstring.

    Raises:
        ValueError: the matrix is not at least 3x3 or holds non-finite values.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 3 or m.shape[1] < 3:
        raise ValueError(f"facial transformation matrix must be 3x3 or 4x4, got shape {m.shape}")
    rot = m[:3, :3]
    if not np.all(np.isfinite(rot)):
        raise ValueError("facial transformation matrix holds non-finite values")
    u, _, vt = np.linalg.svd(rot)
    rot = u @ vt
    if np.linalg.det(rot) < 0:  # a reflection: flip the smallest axis to get a rotation
        u[:, -1] = -u[:, -1]
        rot = u @ vt
    # R = Ry(a) Rx(b) Rz(c):  R[1,2] = -sin b;  R[0,2] = sin a cos b, R[2,2] = cos a cos b;
    # R[1,0] = cos b sin c, R[1,1] = cos b cos c.
    b = math.asin(max(-1.0, min(1.0, -rot[1, 2])))
    a = math.atan2(rot[0, 2], rot[2, 2])
    c = math.atan2(rot[1, 0], rot[1, 1])
    yaw = math.degrees(a)
    pitch = -math.degrees(b)  # a positive rotation about +x tips the nose down
    roll = math.degrees(c)
    return (yaw + 0.0, pitch + 0.0, roll + 0.0)


def rotation_from_head_pose(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """The (3, 3) rotation for a head pose; the inverse of :func:`head_pose_from_matrix`.

    Useful to build test matrices and to draw pose axes.
    """
    a, b, c = math.radians(yaw_deg), -math.radians(pitch_deg), math.radians(roll_deg)
    ry = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(b), -math.sin(b)], [0.0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0.0], [math.sin(c), math.cos(c), 0.0], [0.0, 0.0, 1.0]])
    return ry @ rx @ rz
