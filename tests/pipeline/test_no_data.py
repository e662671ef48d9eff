"""Windows without data, end to end: silence, then speech, through every output.

The input is made here with PyAV: 2.5 s of digital silence, then the bundled GRID clip's
audio ("bin blue at f two now"). The silent windows must carry no label anywhere (JSON
null, an empty CSV cell, no class colours in the report), the running estimate none
until the speech came, and the speech a label, a WebVTT cue and a coloured column.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from media_gen import wav
from streamline.pipeline import CsvEstimateWriter, JsonlWriter, Pipeline, ReportBuilder, VttWriter
from streamline.sources import read_audio
from streamline.types import Word

S = 1_000_000_000
SILENCE_S = 2.5


def _silence_then_speech(clip: Path, folder: Path) -> Path:
    audio = read_audio(clip).samples
    x = np.concatenate([np.zeros(int(SILENCE_S * 16_000), np.float32), audio])
    return wav(folder, "silence_then_speech.wav", np.clip(x, -1, 1)[None], 16_000)


@pytest.fixture(scope="module")
def run(models, bundled_clip, tmp_path_factory):
    folder = tmp_path_factory.mktemp("no_data")
    path = _silence_then_speech(bundled_clip, folder)
    report = ReportBuilder(str(path))
    estimates = []
    with Pipeline.from_file(path, models=models) as pipeline, JsonlWriter(folder / "out.jsonl") as jsonl, \
            CsvEstimateWriter(folder / "out.csv") as table, VttWriter(folder / "out.vtt") as vtt:
        for item in pipeline.iter_events():
            for sink in (jsonl, table, vtt, report):
                (sink.add if sink is report else sink.write)(item)
            if hasattr(item, "probs"):
                estimates.append(item)
    return folder, estimates, report


def test_silent_windows_have_no_label_and_speech_windows_do(run) -> None:
    _, estimates, _ = run
    # GRID's speaker starts about 1 s into the clip: windows ending by 3.5 s hold only silence
    silent = [e for e in estimates if e.end_ns <= int((SILENCE_S + 1.0) * S)]
    assert len(silent) >= 3
    assert all(e.modalities == () and e.label is None and e.running_label is None for e in silent)
    assert all(np.allclose(e.probs, 1 / 7) for e in silent)
    spoken = [e for e in estimates if "voice" in e.modalities]
    assert spoken and all(e.label is not None and e.running_label is not None for e in spoken)
    first = estimates.index(next(e for e in estimates if e.modalities))
    assert all(e.running_label is not None for e in estimates[first:])  # the running estimate carries on


def test_every_output_leaves_the_silent_windows_unlabelled(run) -> None:
    folder, estimates, report = run
    lines = [json.loads(x) for x in (folder / "out.jsonl").read_text().splitlines()]
    est_lines = [x for x in lines if x["type"] == "estimate"]
    assert len(est_lines) == len(estimates)
    for line, e in zip(est_lines, estimates):
        assert line["label"] == e.label and line["running"]["label"] == e.running_label
        assert (line["label"] is None) == (not line["modalities"])
    rows = list(csv.DictReader((folder / "out.csv").open()))
    assert [r["label"] or None for r in rows] == [e.label for e in estimates]
    assert [r["running_label"] or None for r in rows] == [e.running_label for e in estimates]
    vtt = (folder / "out.vtt").read_text()
    cues = re.findall(r"\d+\n(\S+) --> (\S+)\n(.*)\n\[(\w+) (\d+)%\]\n", vtt)
    assert cues and all(t.startswith("00:00:0") for t, *_ in cues)
    assert cues[0][0] >= "00:00:03"  # the words lie after the silence
    summary = report.summary()
    assert 0 < summary["estimates_with_data"] < summary["estimates"] == len(estimates)
    svg = report._timeline_svg(summary["duration_s"])
    groups = re.findall(r"<g><title>(.*?)</title>(.*?)</g>", svg)
    assert len(groups) == len(estimates)
    for (title, body), e in zip(sorted(groups, key=lambda g: float(g[0][1:].split(",")[0])), estimates):
        fills = set(re.findall(r'fill="(#[0-9a-f]{6})"', body))
        if e.label is None:  # one plain grey column, not a uniform stack of class colours
            assert "no data" in title and fills == {"#f4f4f4"}
        else:
            assert title.split(": ")[1].startswith(e.label) and len(fills) >= 2


def test_report_of_a_run_without_any_data_says_so(run, tmp_path) -> None:
    _, estimates, _ = run
    report = ReportBuilder("silence.wav")
    for e in estimates:
        if not e.modalities:
            report.add(e)
    text = report.html(metrics={"word_lag": {"p50_s": 0.0, "p95_s": 0.0, "max_s": 0.0}, "media_s": 2.0})
    assert text.count("no estimate with data") == 2  # dominant emotions and mean probabilities
    assert "words lag" not in text  # no words: no lag figures


def test_the_vtt_writer_keeps_a_bounded_list_over_a_long_run_without_words(run) -> None:
    """Three hours of windows without words (one every 0.5 s), then a word: the writer keeps
    only the estimates a cue to come may overlap, and still labels the cue."""
    _, estimates, _ = run
    empty = next(e for e in estimates if not e.modalities)
    spoken = next(e for e in estimates if "voice" in e.modalities)
    out = io.StringIO()
    writer = VttWriter(out)
    n = 3 * 3600 * 2
    for k in range(n):
        writer.write(dataclasses.replace(empty, start_ns=k * S // 2, end_ns=k * S // 2 + 2 * S))
        assert len(writer._estimates) <= 2 * 600 + 256
    t = n * S // 2
    writer.write(dataclasses.replace(spoken, start_ns=t - S, end_ns=t + S))
    writer.write(Word(text="hello", start_ns=t - S // 2, end_ns=t, probability=0.9, committed=True,
                      utterance_id=0, language="en"))
    writer.write(dataclasses.replace(empty, start_ns=t, end_ns=t + 2 * S))
    writer.close()
    assert out.getvalue().endswith(f"hello\n[{spoken.label} {spoken.probs.max() * 100:.0f}%]\n\n")


def test_analyze_says_when_no_window_held_data(tmp_path, capsys) -> None:
    """A silent recording is analysed (one estimate per window, none labelled) and the command
    says so, rather than leaving an all-empty file to be puzzled over."""
    from streamline.cli import main

    path = wav(tmp_path, "silence.wav", np.zeros((1, 3 * 16_000), np.float32), 16_000)
    assert main(["analyze", str(path), "--out", str(tmp_path / "e.jsonl"), "--stats"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    estimates = [r for r in rows if r["type"] == "estimate"]
    assert estimates and all(r["label"] is None and r["modalities"] == [] for r in estimates)
    err = capsys.readouterr().err
    assert f"none of the {len(estimates)} windows held data" in err
    assert "committed-word lag" not in err  # no words: no lag figures, rather than 0 s
