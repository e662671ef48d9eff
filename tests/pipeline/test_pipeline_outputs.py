"""The writers (JSON lines, CSV, WebVTT), the HTML report and the metrics helpers, without models.

The items are the real value types (EmotionEstimate, Word, SpeechSegment) built by hand
with known numbers, so every expected output is worked out here.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from streamline.errors import ConfigError
from streamline.fusion import CLASSES, EmotionEstimate
from streamline.pipeline import CsvEstimateWriter, JsonlWriter, ReportBuilder, VttWriter, open_estimate_writer
from streamline.pipeline._stages import TextSpans
from streamline.pipeline.metrics import LatencyRecorder, ReadyTracker, format_metrics
from streamline.pipeline.sinks import dominant_emotion, format_vtt_time
from streamline.sync import Watermark
from streamline.types import SpeechSegment, Word

S = 1_000_000_000
MS = 1_000_000


def est(start_s: float, label: str, p: float = 0.7, modalities=("face", "voice")) -> EmotionEstimate:
    probs = np.full(7, (1 - p) / 6, np.float32)
    probs[CLASSES.index(label)] = p
    return EmotionEstimate(
        start_ns=int(start_s * S), end_ns=int((start_s + 2) * S), probs=probs, valence=0.25, arousal=-0.5,
        confidence=p, modalities=tuple(modalities),
        contributions={m: 1 / len(modalities) for m in modalities}, running_probs=probs,
        running_valence=0.2, running_arousal=-0.4)


def word(text: str, start_s: float, end_s: float, uid: int, committed: bool = True) -> Word:
    return Word(text=text, start_ns=int(start_s * S), end_ns=int(end_s * S), probability=0.9,
                committed=committed, utterance_id=uid, language="en")


def test_jsonl_lines_are_flushed_one_by_one(tmp_path):
    path = tmp_path / "sub" / "out.jsonl"
    writer = JsonlWriter(path)
    writer.write(est(0.0, "happy"))
    first = path.read_text().splitlines()                     # readable before close: flushed
    assert len(first) == 1
    writer.write(word("hello", 0.5, 0.9, 0))
    writer.write(word("partial", 1.0, 1.2, 0, committed=False))  # partial words are not written
    writer.write(SpeechSegment(400 * MS, 1200 * MS, 0.93))
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [x["type"] for x in lines] == ["estimate", "word", "segment"]
    e = lines[0]
    for key in ("start_s", "end_s", "probs", "valence", "arousal", "confidence", "modalities", "contributions"):
        assert key in e
    assert e["start_s"] == 0.0 and e["end_s"] == 2.0 and e["label"] == "happy"
    assert list(e["probs"]) == list(CLASSES) and sum(e["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert e["modalities"] == ["face", "voice"] and e["contributions"] == {"face": 0.5, "voice": 0.5}
    assert lines[1] == {"type": "word", "text": "hello", "start_s": 0.5, "end_s": 0.9, "probability": 0.9,
                        "committed": True, "utterance_id": 0, "language": "en",
                        "start_ns": 500_000_000, "end_ns": 900_000_000}
    assert lines[2] == {"type": "segment", "start_s": 0.4, "end_s": 1.2, "probability": 0.93,
                        "start_ns": 400_000_000, "end_ns": 1_200_000_000}


def test_csv_has_one_row_per_estimate(tmp_path):
    path = tmp_path / "out.csv"
    with CsvEstimateWriter(path) as writer:
        writer.write(est(0.0, "sad", modalities=("voice",)))
        writer.write(word("ignored", 0, 1, 0))
        writer.write(est(0.5, "angry"))
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 2
    assert rows[0]["label"] == "sad" and rows[0]["modalities"] == "voice"
    assert rows[0]["contribution_voice"] == "1.0" and rows[0]["contribution_face"] == ""
    assert float(rows[1]["p_angry"]) == pytest.approx(0.7) and rows[1]["start_s"] == "0.5"


def test_the_output_format_follows_the_extension(tmp_path):
    assert isinstance(open_estimate_writer(tmp_path / "a.jsonl"), JsonlWriter)
    assert isinstance(open_estimate_writer(tmp_path / "a.CSV"), CsvEstimateWriter)
    with pytest.raises(ConfigError, match="a.txt.*.jsonl or .csv"):
        open_estimate_writer(tmp_path / "a.txt")
    with pytest.raises(ConfigError, match="cannot write"):
        open_estimate_writer(tmp_path / "a.jsonl" / "b.jsonl")  # a.jsonl is a file, not a folder


def test_vtt_times():
    assert format_vtt_time(0) == "00:00:00.000"
    assert format_vtt_time(3_723_456 * MS) == "01:02:03.456"
    assert format_vtt_time(-5) == "00:00:00.000"


def test_dominant_emotion_weights_by_overlap():
    # [0, 2) happy 0.7 overlaps [1.5, 2.5) by 0.5 s; [0.5, 2.5) sad 0.6 by 1.0 s
    ests = [est(0.0, "happy", 0.7), est(0.5, "sad", 0.6)]
    label, p = dominant_emotion(ests, int(1.5 * S), int(2.5 * S))
    # sad: (0.5 * 0.05 + 1.0 * 0.6) / 1.5 = 0.4167; happy: (0.5 * 0.7 + 1.0 * 0.0667) / 1.5 = 0.2778
    assert label == "sad" and p == pytest.approx((0.5 * 0.05 + 0.6) / 1.5, abs=1e-5)
    assert dominant_emotion(ests, 10 * S, 11 * S) is None
    assert dominant_emotion([est(0.0, "happy", modalities=())], 0, S) is None  # no data, no vote


def test_vtt_cue_per_utterance_once_its_estimates_have_come(tmp_path):
    path = tmp_path / "t.vtt"
    vtt = VttWriter(path)
    vtt.write(word("bin", 1.0, 1.2, 0))
    vtt.write(word("blue", 1.2, 1.5, 0))
    vtt.write(SpeechSegment(800 * MS, 1800 * MS, 0.9))  # utterance 0 is over ...
    assert path.read_text() == "WEBVTT\n\n"               # ... but its estimates have not come yet
    vtt.write(est(0.0, "happy"))                          # [0, 2) overlaps it; [0.5, 2.5) ... may still come
    assert path.read_text() == "WEBVTT\n\n"
    vtt.write(est(1.5, "happy"))                          # starts at the cue's end: all overlapping are in
    assert "bin blue" in path.read_text()
    vtt.write(word("again", 3.0, 3.4, 1))
    vtt.close()                                           # the open utterance is written at close
    text = path.read_text()
    assert text.startswith("WEBVTT\n\n")
    cues = text.strip().split("\n\n")[1:]
    assert cues[0] == "1\n00:00:01.000 --> 00:00:01.500\nbin blue\n[happy 70%]"
    assert cues[1] == "2\n00:00:03.000 --> 00:00:03.400\nagain\n[happy 70%]"  # [1.5, 3.5) overlaps it


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.data_json = ""
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        self._in_data = tag == "script" and ("id", "streamline-data") in attrs

    def handle_endtag(self, tag):
        self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data_json += data


def test_report_is_self_contained_html_with_the_data(tmp_path):
    rb = ReportBuilder("clip.mp4")
    for k in range(4):
        rb.add(est(k * 0.5, "happy" if k < 3 else "sad"))
    rb.add(word("hello", 0.6, 0.9, 0))
    rb.add(word("</script><b>x", 1.0, 1.3, 0))           # text that must not break the page
    rb.add(SpeechSegment(500 * MS, 1500 * MS, 0.9))
    from streamline.face import FaceObservation

    for k in range(30):
        rb.add(FaceObservation(pts_ns=k * S // 15, present=k < 20, blendshapes=np.zeros(52, np.float32),
                               head_pose_deg=(0.0, 0.0, 0.0), box=None, landmarks=None, quality=1.0, track_id=None,
                               track_switched=False, num_faces=int(k < 20), expression=None,
                               expression_pts_ns=None, image_size=(64, 48)))
    out = rb.write(tmp_path / "r" / "report.html", metrics={"rtf": 0.31, "elapsed_s": 1.0, "media_s": 3.2,
                                                             "mode": "file"}, interrupted=True)
    page = out.read_text()
    parser = _Collect()
    parser.feed(page)
    assert {"html", "svg", "rect", "polyline", "table"} <= set(parser.tags)
    # nothing is fetched from anywhere: no src/href attributes, no stylesheet links
    assert not [a for a in parser.attrs if a[0] in ("src", "href")]
    assert "<link" not in page and "@import" not in page
    data = json.loads(parser.data_json)
    assert [e["label"] for e in data["estimates"]] == ["happy", "happy", "happy", "sad"]
    assert data["summary"]["dominant"][0] == "happy"
    assert data["summary"]["label_shares"]["happy"] == pytest.approx(0.75)
    assert data["summary"]["face_present_share"] == pytest.approx(20 / 30)
    assert data["summary"]["modality_coverage"] == {"face": 1.0, "voice": 1.0, "text": 0.0}
    assert data["words"][1]["text"] == "</script><b>x" and data["interrupted"] is True
    assert "0.31" in page and "interrupted" in page
    assert "<b>x" not in page.replace("\\/", "/").split('id="streamline-data"')[0]  # escaped in the visible part


def test_latency_recorder_percentiles():
    rec = LatencyRecorder()
    assert rec.as_dict()["p50_ms"] is None
    for v in range(1, 101):
        rec.add(v / 1000)
    d = rec.as_dict()
    assert d["count"] == 100 and d["p50_ms"] == pytest.approx(50.5) and d["p95_ms"] == pytest.approx(95.05)
    assert d["max_ms"] == 100.0


def test_ready_tracker_records_when_each_window_end_was_reached():
    now = [0]
    rt = ReadyTracker(0, S // 2, 2 * S, lambda: now[0], ("face", "voice"))
    now[0] = 10
    rt.advance("face", int(1.9 * S))      # window 0 ends at 2.0 s: not yet
    assert rt.ready_ns("face", 0) is None
    now[0] = 20
    rt.advance("face", int(2.6 * S))      # passes the ends of windows 0 (2.0) and 1 (2.5)
    assert rt.ready_ns("face", 0) == 20 and rt.ready_ns("face", 1) == 20 and rt.ready_ns("face", 2) is None
    now[0] = 30
    rt.end("voice")
    assert rt.ready_ns("voice", 7) == 30


def test_text_spans_are_in_order_and_never_late():
    from streamline.features import TEXT_EMBEDDING_DIM, TextFeatures

    def tf(start_s, end_s, uid):
        return TextFeatures(start_ns=int(start_s * S), end_ns=int(end_s * S), utterance_id=uid, text="x",
                            embedding=np.zeros(TEXT_EMBEDDING_DIM, np.float32), valence=0.0, num_words=1)

    spans = TextSpans()
    a = spans.span(tf(1.0, 1.4, 0))           # first word of utterance 0
    b = spans.span(tf(1.0, 1.9, 0))           # the utterance grew: the new part only
    assert (a.start_ns, a.end_ns) == (1 * S, int(1.4 * S))
    assert (b.start_ns, b.end_ns) == (int(1.4 * S), int(1.9 * S))
    assert spans.watermark(int(1.5 * S)) == Watermark(int(1.5 * S))
    assert spans.watermark(int(1.2 * S)) is None          # watermarks never go back
    c = spans.span(tf(1.3, 1.7, 1))           # a word placed before the watermark: clamped to it
    assert c.start_ns == int(1.5 * S) and c.end_ns == int(1.7 * S)


def test_format_metrics_mentions_the_figures():
    text = format_metrics({"elapsed_s": 2.0, "media_s": 4.0, "rtf": 0.5, "mode": "file", "estimates": 5, "words": 3,
                           "stages": {"face": {"count": 10, "p50_ms": 12.0, "p95_ms": 30.0, "max_ms": 40.0}},
                           "queues": {"face": {"depth": 0, "max_depth": 3, "delivered": 10, "dropped": 0,
                                               "blocked_s": 0.0}},
                           "word_lag": {"p50_s": 0.4, "p95_s": 0.8, "max_s": 0.9},
                           "sync": {"windows": 5, "incomplete_windows": 0, "late": 0},
                           "modality_coverage": {"face": 1.0}})
    assert re.search(r"real-time factor 0\.50", text) and "face" in text and "p95 0.80 s" in text
    assert "model loading" not in text
    assert "after 6.00 s of model loading" in format_metrics({"elapsed_s": 2.0, "load_s": 6.0, "rtf": 0.5})


def test_long_utterances_are_split_into_readable_cues():
    from streamline.pipeline.sinks import CueSplitter

    # one 12-word utterance over 9 s: "a." ends a sentence at 2.0 s; a 1 s pause before "p"
    words = [word("w0", 0.0, 0.5, 0), word("w1", 0.6, 1.2, 0), word("a.", 1.3, 2.0, 0),   # sentence end, 2 s
             word("b", 2.1, 2.5, 0), word("c", 2.6, 3.0, 0),
             word("p", 4.0, 4.4, 0),                                                       # after a 1 s pause
             *[word(f"x{i}", 4.5 + i * 0.5, 4.9 + i * 0.5, 0) for i in range(6)],          # runs to 7.4 s
             word("next", 9.0, 9.3, 1)]                                                    # another utterance
    cues = CueSplitter.split(words, max_cue_s=3.0)
    assert [[w.text for w in c] for c in cues] == [
        ["w0", "w1", "a."], ["b", "c"], ["p", "x0", "x1", "x2", "x3", "x4"], ["x5"], ["next"]]
    assert all(c[-1].end_ns - c[0].start_ns <= 3 * S for c in cues)


def test_vtt_writes_a_long_utterance_cue_by_cue(tmp_path):
    path = tmp_path / "long.vtt"
    vtt = VttWriter(path)
    for i in range(20):  # 20 words, one utterance, no segment end yet
        vtt.write(word(f"w{i}" + ("." if i == 9 else ""), i * 0.5, i * 0.5 + 0.4, 0))
    vtt.write(est(3.0, "happy"))            # overlaps the first sentence (0-4.9 s): more may come
    assert "w0 w1" not in path.read_text()
    vtt.write(est(5.0, "happy"))            # starts after it: the first sentence can go out
    written = path.read_text()
    assert "w0 w1" in written and "w10" not in written
    vtt.close()
    assert path.read_text().count(" --> ") == 2


def test_report_timeline_columns_cover_the_first_window_to_the_last():
    """The class-probability columns start at the first window's start and end at the last window's end."""
    from streamline.pipeline.report import CLASS_COLORS

    rb = ReportBuilder("clip.mp4")
    for k in range(4):  # windows [0, 2), [0.5, 2.5), [1, 3), [1.5, 3.5)
        rb.add(est(k * 0.5, "happy"))
    svg = rb._timeline_svg(3.5)
    x0, pps = (float(v) for v in re.search(r'data-x0="([\d.]+)" data-pps="([\d.]+)"', svg).groups())
    colours = "|".join(re.escape(c) for c in CLASS_COLORS.values())
    spans = [(float(a), float(a) + float(w)) for a, w in
             re.findall(rf'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="[\d.]+" fill="(?:{colours})"', svg)]
    assert spans
    assert min(a for a, _ in spans) == pytest.approx(x0, abs=0.05)              # 0 s
    assert max(b for _, b in spans) == pytest.approx(x0 + 3.5 * pps, abs=0.05)  # 3.5 s


def test_report_timeline_draws_every_window_when_the_last_reach_past_the_end():
    """The bundled 3 s clip gives 6 windows of 2 s; the last, [2.5, 4.5), is centred past the end
    (3.5 s): it is drawn too, squeezed with the one before into what is left of the media."""
    from streamline.pipeline.report import CLASS_COLORS

    rb = ReportBuilder("clip.mp4")
    for k in range(6):
        rb.add(est(k * 0.5, "happy" if k < 5 else "sad"))
    svg = rb._timeline_svg(3.0)
    x0, pps = (float(v) for v in re.search(r'data-x0="([\d.]+)" data-pps="([\d.]+)"', svg).groups())
    groups = re.findall(r"<g><title>(.*?)</title>(.*?)</g>", svg)
    assert [t.split(":")[0] for t, _ in groups] == [f"[{k * 0.5:.2f}, {k * 0.5 + 2:.2f}) s" for k in range(6)]
    assert "sad" in groups[-1][0]
    colours = "|".join(re.escape(c) for c in CLASS_COLORS.values())
    column = rf'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="[\d.]+" fill="(?:{colours})"'
    spans = [[(float(a), float(a) + float(w)) for a, w in re.findall(column, body)] for _, body in groups]
    assert all(spans)                                                          # every window has its column
    lefts = [s[0][0] for s in spans]
    assert lefts == sorted(lefts) and len(set(lefts)) == 6                     # in order, none on another
    assert max(b for s in spans for _, b in s) == pytest.approx(x0 + 3.0 * pps, abs=0.05)  # not past 3 s
    valence = re.search(r'<polyline points="([^"]+)" fill="none" stroke="#1b7837"', svg).group(1)
    xs = [float(p.split(",")[0]) for p in valence.split()]
    assert len(xs) == 6 and max(xs) <= x0 + 3.0 * pps + 0.05


def test_a_window_without_data_has_no_label_anywhere(tmp_path):
    """The fusion model's estimate of an empty window is uniform: not "neutral", no label at all,
    and the running estimate has none until a window with data has come."""
    from streamline.fusion import EmotionRecognizer, WindowInputs
    from streamline.fusion.extract import VOICE_FEATURE_DIM
    from streamline.pipeline.live_view import LiveState, TerminalView

    voice = np.random.default_rng(0).normal(size=(4, VOICE_FEATURE_DIM)).astype(np.float32)
    with EmotionRecognizer() as rec:
        empty, spoken, silent = rec.estimate_many(
            [WindowInputs(), WindowInputs(voice=voice, voice_mask=np.ones(4, bool)), WindowInputs()],
            [(0, 2 * S), (S // 2, int(2.5 * S)), (S, 3 * S)])
    assert empty.modalities == () and np.allclose(empty.probs, 1 / 7)
    assert empty.label is None and empty.running_label is None and not empty.running_has_data
    assert spoken.label == CLASSES[int(np.argmax(spoken.probs))] and spoken.running_label == spoken.label
    assert silent.label is None and silent.running_label == spoken.label   # the running estimate carries on
    d = empty.as_dict()
    assert d["label"] is None and d["running"]["label"] is None
    with JsonlWriter(tmp_path / "e.jsonl") as writer, CsvEstimateWriter(tmp_path / "e.csv") as table:
        for e in (empty, spoken, silent):
            writer.write(e)
            table.write(e)
    lines = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [x["label"] for x in lines] == [None, spoken.label, None]          # JSON null
    assert [x["running"]["label"] for x in lines] == [None, spoken.label, spoken.label]
    rows = list(csv.DictReader((tmp_path / "e.csv").open()))
    assert [r["label"] for r in rows] == ["", spoken.label, ""]
    assert [r["running_label"] for r in rows] == ["", spoken.label, spoken.label]
    rb = ReportBuilder("clip.mp4")
    for e in (empty, spoken, silent):
        rb.add(e)
    assert rb.summary()["estimates_with_data"] == 1
    assert rb.summary()["label_shares"]["neutral"] == (1.0 if spoken.label == "neutral" else 0.0)
    titles = re.findall(r"<g><title>(.*?)</title>", rb._timeline_svg(3.0))
    assert titles[0].startswith("[0.00, 2.00) s: no data neutral 14%, happy 14%")   # the label, then the probs
    out = io.StringIO()
    state = LiveState()
    state.update(empty)
    assert state.top(3) == []
    TerminalView(out).show(state)
    assert out.getvalue().startswith("t=   2.00s no data ") and "neutral=" not in out.getvalue()
