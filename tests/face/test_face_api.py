"""The public surface of streamline.face: curated, and light to import."""

from __future__ import annotations

import subprocess
import sys

import streamline.face as face


def test_all_is_complete_and_importable() -> None:
    public = {name for name in dir(face) if not name.startswith("_")}
    modules = {"analyzer", "expression", "image", "landmarker", "operator", "pose", "tracking", "annotations"}
    assert set(face.__all__) == public - modules
    for name in face.__all__:
        assert getattr(face, name) is not None


def test_importing_the_package_does_not_import_mediapipe() -> None:
    code = "import sys, streamline.face; print(sorted(m for m in ('mediapipe', 'cv2', 'ai_edge_litert') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
