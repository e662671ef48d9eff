"""``streamline faces FILE``: JSON lines out, a one-line reason on bad input."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from streamline.cli import main
from streamline.face import BLENDSHAPE_NAMES, EXPRESSION_CLASSES


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_with_expression(tmp_path, bundled_clip) -> None:
    out = tmp_path / "faces.jsonl"
    assert main(["faces", str(bundled_clip), "--out", str(out), "--expression"]) == 0
    lines = _lines(out)
    assert len(lines) == 45  # 3 s at the default 15 fps
    times = [line["t_s"] for line in lines]
    assert times == sorted(times) and times[0] == 0.0 and times[-1] == pytest.approx(2.96)
    for line in lines:
        assert line["present"] is True
        assert list(line["blendshapes"]) == list(BLENDSHAPE_NAMES)
        assert all(0.0 <= v <= 1.0 for v in line["blendshapes"].values())
        yaw, pitch, roll = line["head_pose_deg"]
        assert abs(yaw) < 15
        assert len(line["box"]) == 4 and line["track_id"] == lines[0]["track_id"]
        assert set(line["expression"]) == set(EXPRESSION_CLASSES)
        assert sum(line["expression"].values()) == pytest.approx(1.0, abs=1e-3)
        assert "landmarks" not in line


def test_stdout_landmarks_and_rate(capsys, bundled_clip) -> None:
    assert main(["faces", str(bundled_clip), "--fps", "5", "--landmarks"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 15
    assert [round(line["t_s"], 2) for line in lines] == [round(0.2 * i, 2) for i in range(15)]
    assert np.array(lines[0]["landmarks"]).shape == (478, 3)
    assert "expression" not in lines[0]


def test_clip_without_a_face(tmp_path, encode_clip) -> None:
    blank = [np.full((120, 160, 3), 90, np.uint8)] * 25
    clip = encode_clip(tmp_path / "blank.mkv", blank)
    out = tmp_path / "faces.jsonl"
    assert main(["faces", str(clip), "--out", str(out), "--fps", "0"]) == 0
    lines = _lines(out)
    assert len(lines) == 25
    assert all(line["present"] is False and line["blendshapes"] is None and line["head_pose_deg"] is None for line in lines)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("streamline faces: error: ")
    return err[0]


def test_unreadable_input_exits_1_with_one_line(tmp_path, capsys) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    assert main(["faces", str(text)]) == 1
    assert str(text) in _one_line_error(capsys)
    assert main(["faces", str(tmp_path / "missing.mp4")]) == 1
    assert "no such file" in _one_line_error(capsys)


def test_audio_only_input_exits_1(tmp_path, capsys) -> None:
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) * 0.1) * 3000).astype("<i2").tobytes())
    assert main(["faces", str(path)]) == 1
    assert "video" in _one_line_error(capsys)


def test_unwritable_output_exits_1(tmp_path, capsys, bundled_clip) -> None:
    assert main(["faces", str(bundled_clip), "--out", str(tmp_path / "no" / "such" / "dir.jsonl")]) == 1
    assert "--out" in _one_line_error(capsys)
