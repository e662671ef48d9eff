"""``streamline analyze``: outputs, exit codes, Ctrl-C, one-modality files, unreadable input.

The full run and the interrupted run are separate processes (a real SIGINT, a real
console script environment); the quick cases call ``streamline.cli.main`` in-process.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from streamline.cli import main
from streamline.fusion import CLASSES

REPO = Path(__file__).resolve().parents[2]
ESTIMATE_KEYS = {"type", "start_s", "end_s", "probs", "valence", "arousal", "confidence", "modalities", "contributions"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamline.cli", *args]


def _interrupt_after_first_estimate(cmd: list[str], out: Path, *, wait_s: float) -> tuple[int, str]:
    """Run ``cmd``, send it SIGINT once ``out`` holds an estimate; returns (exit code, stderr)."""
    # A suite started in the background ('make test &') runs with SIGINT ignored, and a child
    # inherits that; give the child the default disposition, as a terminal would.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and '"type":"estimate"' in out.read_text():
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_analyze_writes_estimates_words_transcript_and_report(bundled_clip, tmp_path):
    out = tmp_path / "out"
    started = time.perf_counter()
    proc = subprocess.run(
        _cli("analyze", str(bundled_clip), "--out", str(out / "estimates.jsonl"), "--vtt", str(out / "transcript.vtt"),
             "--report", str(out / "report.html"), "--stats"),
        capture_output=True, text=True, timeout=300, env=_env(), cwd=REPO)
    wall = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    records = _lines(out / "estimates.jsonl")
    estimates = [r for r in records if r["type"] == "estimate"]
    words = [r for r in records if r["type"] == "word"]
    assert len(estimates) == 6 and words
    assert [e["start_s"] for e in estimates] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    for e in estimates:
        assert ESTIMATE_KEYS <= set(e)
        assert list(e["probs"]) == list(CLASSES)
        assert sum(e["probs"].values()) == pytest.approx(1.0, abs=2e-3)
    assert sum("face" in e["modalities"] for e in estimates) >= 5
    vtt = (out / "transcript.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n") and " --> " in vtt
    assert any(f"[{c} " in vtt for c in CLASSES)                      # the dominant emotion of the cue
    page = (out / "report.html").read_text()
    data = _report_data(page)
    assert len(data["estimates"]) == 6 and data["words"] and data["summary"]["face_frames"] >= 40
    assert page.count("<g><title>[") == 6                      # the timeline draws every window, the last too
    assert data["metrics"]["rtf"] > 0
    assert "real-time factor" in proc.stderr and "stage" in proc.stderr    # --stats
    assert "Traceback" not in proc.stderr
    print(f"analyze on the bundled clip: {wall:.1f} s wall")


def _report_data(page: str) -> dict:
    class P(HTMLParser):
        text, on = "", False

        def handle_starttag(self, tag, attrs):
            self.on = ("id", "streamline-data") in attrs

        def handle_data(self, data):
            if self.on:
                self.text += data

        def handle_endtag(self, tag):
            self.on = False

    p = P()
    p.feed(page)
    return json.loads(p.text)


def test_ctrl_c_keeps_what_was_computed(bundled_clip, tmp_path):
    from pipeline_media import repeated_clip

    # 60 s: the run goes on well after the first estimate (about 5 s in, of 18 s)
    clip = repeated_clip(bundled_clip, tmp_path, times=20)
    out = tmp_path / "estimates.jsonl"
    report = tmp_path / "report.html"
    returncode, stderr = _interrupt_after_first_estimate(
        _cli("analyze", str(clip), "--out", str(out), "--report", str(report)), out, wait_s=240)
    assert returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    records = _lines(out)                                   # every line is complete JSON
    estimates = [r for r in records if r["type"] == "estimate"]
    assert estimates and estimates[-1]["end_s"] < 60.0      # it stopped before the end of the 60 s file
    assert [e["start_s"] for e in estimates] == [k * 0.5 for k in range(len(estimates))]
    data = _report_data(report.read_text())
    assert data["interrupted"] is True and len(data["estimates"]) >= len(estimates)


def test_csv_output_and_a_subset_of_modalities(bundled_clip, tmp_path, capsys):
    out = tmp_path / "estimates.csv"
    assert main(["analyze", str(bundled_clip), "--out", str(out), "--modalities", "voice"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and all(r["modalities"] == "voice" for r in rows[:4])
    assert all(float(r["contribution_voice"]) == pytest.approx(1.0) for r in rows[:4])
    # the last window holds only the clip's closing silence: no voice, so no label either
    assert rows[-1]["modalities"] == "" and rows[-1]["label"] == ""


def test_jsonl_to_stdout_without_out(bundled_clip, capsys):
    assert main(["analyze", str(bundled_clip), "--modalities", "face,voice", "--hop", "1.0"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["start_s"] for x in lines] == [0.0, 1.0, 2.0]
    assert all(set(x["modalities"]) <= {"face", "voice"} for x in lines)


def test_audio_only_file_says_the_face_is_absent(made_media, tmp_path, capsys):
    out = tmp_path / "e.jsonl"
    assert main(["analyze", str(made_media["audio_only"]), "--out", str(out), "--report", str(tmp_path / "r.html")]) == 0
    err = capsys.readouterr().err
    assert "note: face modality absent: the input has no video stream" in err
    estimates = [r for r in _lines(out) if r["type"] == "estimate"]
    assert len(estimates) == 6 and all("face" not in e["modalities"] for e in estimates)
    assert "face modality absent" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("make", ["missing", "garbage", "text", "empty"])
def test_unreadable_input_is_one_line_and_exit_1(tmp_path, capsys, make):
    path = tmp_path / f"{make}.mp4"
    if make == "garbage":
        path.write_bytes(os.urandom(4096))
    elif make == "text":
        path.write_text("this is not a video\n" * 50)
    elif make == "empty":
        path.write_bytes(b"")
    assert main(["analyze", str(path), "--out", str(tmp_path / "x.jsonl")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("streamline analyze: error: ") and path.name in err[0]


def test_bad_options_are_refused(bundled_clip, tmp_path, capsys):
    assert main(["analyze", str(bundled_clip), "--out", str(tmp_path / "x.txt")]) == 1
    assert "x.txt" in capsys.readouterr().err
    assert main(["analyze", str(bundled_clip), "--modalities", "smell"]) == 1
    assert "unknown modality smell" in capsys.readouterr().err
    assert main(["analyze", str(bundled_clip), "--window", "2.1"]) == 1
    assert "--window 2.1" in capsys.readouterr().err
    # 0.5 s suits the voice hops but not the face's 15 Hz grid: the message says how to do without
    assert main(["analyze", str(bundled_clip), "--window", "0.5"]) == 1
    assert "leave the face out with --modalities voice,text" in capsys.readouterr().err


def test_media_too_short_for_any_window_says_so(tmp_path, capsys):
    """Never a silent empty result: 50 ms of audio gives no estimate and a note saying why."""
    import wave

    path = tmp_path / "blip.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.random.default_rng(0).standard_normal(800) * 3000).astype(np.int16).tobytes())
    assert main(["analyze", str(path), "--modalities", "voice", "--no-progress", "--out", str(tmp_path / "e.jsonl")]) == 0
    assert "no estimates" in capsys.readouterr().err


def test_webcam_ctrl_c_exits_130_with_complete_output(tmp_path):
    """The live demo's usual ending, Ctrl-C, follows the CLI convention (130) and keeps its output."""
    out = tmp_path / "live.jsonl"
    returncode, stderr = _interrupt_after_first_estimate(
        _cli("webcam", "--headless", "--synthetic", "--modalities", "face,voice", "--out", str(out)), out, wait_s=180)
    assert returncode == 130, stderr
    assert "Traceback" not in stderr
    assert any(r["type"] == "estimate" for r in _lines(out))  # every line complete JSON


def test_option_errors_name_the_option(bundled_clip, capsys):
    """Settings errors come back under the option's name, before any model loads."""
    assert main(["analyze", str(bundled_clip), "--hop", "3"]) == 1
    assert "--hop (3.0) must not exceed --window (2.0)" in capsys.readouterr().err
    assert main(["webcam", "--headless", "--synthetic", "--duration", "nan"]) == 1
    assert "--duration must be a positive number of seconds" in capsys.readouterr().err
