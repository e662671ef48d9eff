"""The HTML report: one self-contained file (inline SVG and CSS, a few lines of inline JS, no network).

:class:`ReportBuilder` collects what the pipeline delivers (estimates, committed
words, speech segments, face observations) and :meth:`ReportBuilder.write` renders:

* a summary: dominant emotions (share of windows per label and mean probabilities),
  per-modality coverage (share of estimates with face / voice / text, face presence
  in the analysed frames, speech time), absent modalities, processing speed
  (real-time factor, elapsed and model-loading time, latency when live);
* a timeline (SVG): stacked class probabilities per window, valence and arousal,
  face presence, speech segments and the words;
* the transcript per utterance with its dominant emotion;
* the data itself as JSON in ``<script type="application/json" id="streamline-data">``,
  so the report can be read back by a program.

The page renders without JavaScript; the inline script only adds a read-out of the
values under the mouse.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..fusion.types import CLASSES
from ..types import SpeechSegment, Word
from .sinks import CueSplitter, dominant_emotion

__all__ = ["ReportBuilder", "CLASS_COLORS"]

#: One colour per class (colour-blind-friendly Okabe-Ito palette plus grey for neutral).
CLASS_COLORS: dict[str, str] = {
    "neutral": "#9e9e9e",
    "happy": "#e69f00",
    "sad": "#0072b2",
    "angry": "#d55e00",
    "fearful": "#cc79a7",
    "disgust": "#009e73",
    "surprised": "#f0e442",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.sub{color:#666;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:200px}
.card h3{font-size:13px;color:#555;margin:0 0 6px;font-weight:600}
.big{font-size:22px;font-weight:600}
.note{background:#fff4e5;border:1px solid #f0c36d;border-radius:6px;padding:6px 10px;margin:8px 0;font-size:13px}
table{border-collapse:collapse;font-size:13px;background:#fff}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
.bar{display:inline-block;height:10px;border-radius:2px;vertical-align:middle}
.scroll{overflow-x:auto;background:#fff;border:1px solid #ddd;border-radius:8px;padding:6px}
svg text{font-family:system-ui,sans-serif}
#readout{font-size:12px;color:#333;min-height:18px;margin:4px 0}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
"""

_JS = """
(function(){
 var d=JSON.parse(document.getElementById('streamline-data').textContent);
 var svg=document.getElementById('timeline'); var out=document.getElementById('readout');
 if(!svg||!out||!d.estimates.length) return;
 var x0=+svg.dataset.x0, pps=+svg.dataset.pps;
 svg.addEventListener('mousemove',function(ev){
  var r=svg.getBoundingClientRect(); var sx=svg.viewBox.baseVal.width/r.width;
  var t=((ev.clientX-r.left)*sx-x0)/pps; var best=null;
  d.estimates.forEach(function(e){ if(e.start_s<=t&&t<e.end_s){ if(!best||e.end_s<best.end_s) best=e; } });
  if(!best){out.textContent='t = '+t.toFixed(2)+' s'; return;}
  var ps=Object.keys(best.probs).map(function(k){return k+' '+(100*best.probs[k]).toFixed(0)+'%';}).join(', ');
  out.textContent='t = '+t.toFixed(2)+' s, window ['+best.start_s.toFixed(2)+', '+best.end_s.toFixed(2)+') '+
   (best.label||'no data')+' ('+ps+'), valence '+best.valence.toFixed(2)+', arousal '+best.arousal.toFixed(2)+
   ', modalities '+(best.modalities.join('+')||'none');
 });
})();
"""


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _columns(ests: list[dict[str, Any]], duration_s: float) -> list[tuple[float, float]]:
    """The time span (seconds) of each estimate's column in the timeline, in ``ests``' order.

    Each estimate is drawn one hop wide, centred on its window's centre; the first
    reaches back to its window's start and the last on to its end, so the columns
    cover the media from the first window to the last. The last windows of a file
    reach past its end (a 3 s clip's last 2 s window is [2.5, 4.5)): the columns
    from the last one that starts inside the media on are squeezed into what is
    left of it, so every estimate is drawn and none past ``duration_s``.
    """
    if not ests:
        return []
    steps = np.diff([e["start_s"] for e in ests])
    hop = float(np.median(steps[steps > 0])) if np.any(steps > 0) else ests[0]["end_s"] - ests[0]["start_s"]
    cols = []
    for i, e in enumerate(ests):
        centre = (e["start_s"] + e["end_s"]) / 2
        c0 = max(e["start_s"] if i == 0 else centre - hop / 2, 0.0)
        cols.append((c0, max(e["end_s"] if i == len(ests) - 1 else centre + hop / 2, c0)))
    end = max(c1 for _, c1 in cols)
    if end <= duration_s:
        return cols
    pivot = max((c0 for c0, _ in cols if c0 < duration_s), default=0.0)
    scale = (duration_s - pivot) / (end - pivot)

    def squeeze(t: float) -> float:
        return t if t <= pivot else pivot + (t - pivot) * scale

    return [(squeeze(c0), squeeze(c1)) for c0, c1 in cols]


class ReportBuilder:
    """Collect a run's results and render the HTML report.

    Args:
        label: the input's name (shown as the title).
        info: the pipeline's :class:`~streamline.pipeline.PipelineInfo` (absent modalities), or None.
    """

    def __init__(self, label: str, *, info: Any = None) -> None:
        self.label = label
        self.info = info
        self.estimates: list[dict[str, Any]] = []
        self._estimate_objs: list[Any] = []
        self.words: list[Word] = []
        self.segments: list[tuple[float, float]] = []
        self.face_samples: list[tuple[float, bool]] = []

    def add(self, item: Any) -> None:
        """Record one pipeline result (estimates, committed words, segments, face observations)."""
        if isinstance(item, Word):
            if item.committed:
                self.words.append(item)
        elif isinstance(item, SpeechSegment):
            self.segments.append((item.start_ns / 1e9, item.end_ns / 1e9))
        elif hasattr(item, "probs") and hasattr(item, "as_dict"):
            self.estimates.append(item.as_dict())
            self._estimate_objs.append(item)
        elif hasattr(item, "present") and hasattr(item, "pts_ns"):
            self.face_samples.append((item.pts_ns / 1e9, bool(item.present)))

    # -- summary -----------------------------------------------------------------------------

    def summary(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        """The numbers the report's summary shows, as plain data."""
        with_data = [e for e in self.estimates if e["modalities"]]
        labels = [e["label"] for e in with_data]
        shares = {c: labels.count(c) / len(labels) for c in CLASSES} if labels else {c: 0.0 for c in CLASSES}
        mean_probs = {c: float(np.mean([e["probs"][c] for e in with_data])) if with_data else 0.0 for c in CLASSES}
        n = len(self.estimates)
        coverage = {m: (sum(1 for e in self.estimates if m in e["modalities"]) / n if n else 0.0)
                    for m in ("face", "voice", "text")}
        faces = len(self.face_samples)
        face_present = sum(1 for _, p in self.face_samples if p) / faces if faces else None
        speech_s = sum(b - a for a, b in self.segments)
        # the span of the data: the media's duration when known, else what the results cover
        extent = [b for _, b in self.segments] + [w.end_ns / 1e9 for w in self.words[-1:]]
        extent += [t for t, _ in self.face_samples[-1:]]
        extent += [(e["start_s"] + e["end_s"]) / 2 for e in self.estimates[-1:]]
        if metrics and metrics.get("media_s"):
            extent.append(float(metrics["media_s"]))
        duration = max(extent + [0.0])
        if self.info is not None and getattr(self.info, "duration_s", None):
            duration = float(self.info.duration_s)
        ranked = sorted(CLASSES, key=lambda c: (-shares[c], -mean_probs[c]))
        return {
            "estimates": n,
            "estimates_with_data": len(with_data),
            "dominant": [c for c in ranked if shares[c] > 0][:3],
            "label_shares": shares,
            "mean_probs": mean_probs,
            "mean_valence": float(np.mean([e["valence"] for e in with_data])) if with_data else None,
            "mean_arousal": float(np.mean([e["arousal"] for e in with_data])) if with_data else None,
            "modality_coverage": coverage,
            "face_frames": faces,
            "face_present_share": face_present,
            "speech_s": round(speech_s, 3),
            "words": len(self.words),
            "duration_s": round(duration, 3),
            "metrics": metrics or {},
        }

    def utterances(self) -> list[dict[str, Any]]:
        """The transcript by utterance (long ones split as in the WebVTT), with the dominant emotion of each."""
        out = []
        for ws in CueSplitter.split(self.words):
            uid = ws[0].utterance_id
            dom = dominant_emotion(self._estimate_objs, ws[0].start_ns, ws[-1].end_ns)
            out.append({"utterance_id": uid, "start_s": round(ws[0].start_ns / 1e9, 3),
                        "end_s": round(ws[-1].end_ns / 1e9, 3), "text": " ".join(w.text.strip() for w in ws),
                        "emotion": dom[0] if dom else None, "probability": round(dom[1], 3) if dom else None})
        return out

    # -- rendering ---------------------------------------------------------------------------

    def _timeline_svg(self, duration_s: float) -> str:
        duration_s = max(duration_s, 0.5)
        left, right = 70, 20
        pps = max(1100.0 / duration_s, 60.0)
        width = int(left + right + duration_s * pps)
        rows = {"probs": (10, 150), "va": (185, 90), "face": (300, 18), "speech": (335, 18), "words": (358, 66)}
        height = 450

        def x(t: float) -> float:
            return left + t * pps

        parts: list[str] = [
            f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" data-x0="{left}" data-pps="{pps:.4f}" role="img" '
            f'aria-label="timeline of emotion estimates">'
        ]
        # grid and time axis
        step = next(s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if s * pps >= 60)
        t = 0.0
        while t <= duration_s + 1e-9:
            parts.append(f'<line x1="{x(t):.1f}" y1="8" x2="{x(t):.1f}" y2="{height - 22}" stroke="#eee"/>')
            parts.append(f'<text x="{x(t):.1f}" y="{height - 8}" font-size="11" text-anchor="middle" fill="#555">'
                         f'{t:g} s</text>')
            t += step
        labels = (("probs", "class prob."), ("va", "valence /\narousal"), ("face", "face"),
                  ("speech", "speech"), ("words", "words"))
        for key, name in labels:
            y0, h = rows[key]
            for i, line in enumerate(name.split("\n")):
                parts.append(f'<text x="4" y="{y0 + 14 + 13 * i}" font-size="12" fill="#333">{_esc(line)}</text>')
        # stacked class probabilities, one column per hop
        y0, h = rows["probs"]
        parts.append(f'<rect x="{left}" y="{y0}" width="{duration_s * pps:.1f}" height="{h}" fill="#f4f4f4"/>')
        ests = sorted(self.estimates, key=lambda e: e["start_s"])
        columns = _columns(ests, duration_s)
        for e, (c0, c1) in zip(ests, columns):
            w = max((c1 - c0) * pps, 1.0)
            acc = 0.0
            title = _esc(f"[{e['start_s']:.2f}, {e['end_s']:.2f}) s: {e['label'] or 'no data'} "
                         + ", ".join(f"{c} {e['probs'][c] * 100:.0f}%" for c in CLASSES)
                         + f"; modalities {'+'.join(e['modalities']) or 'none'}")
            parts.append(f"<g><title>{title}</title>")
            if not e["modalities"]:  # no data: its uniform probabilities are not a finding
                parts.append(f'<rect x="{x(c0):.2f}" y="{y0}" width="{w:.2f}" height="{h}" fill="#f4f4f4"/></g>')
                continue
            for c in CLASSES:
                p = float(e["probs"][c])
                if p <= 0:
                    continue
                parts.append(f'<rect x="{x(c0):.2f}" y="{y0 + h * (1 - acc - p):.2f}" width="{w:.2f}" '
                             f'height="{h * p:.2f}" fill="{CLASS_COLORS[c]}"/>')
                acc += p
            parts.append("</g>")
        # valence and arousal, [-1, 1]
        y0, h = rows["va"]
        mid = y0 + h / 2
        parts.append(f'<rect x="{left}" y="{y0}" width="{duration_s * pps:.1f}" height="{h}" fill="#f8f8f8"/>')
        parts.append(f'<line x1="{left}" y1="{mid}" x2="{x(duration_s):.1f}" y2="{mid}" stroke="#bbb" '
                     f'stroke-dasharray="3,3"/>')
        parts.append(f'<text x="{left + 3}" y="{y0 + 9}" font-size="9" fill="#777">+1</text>')
        parts.append(f'<text x="{left + 3}" y="{y0 + h - 2}" font-size="9" fill="#777">-1</text>')
        for key, colour in (("valence", "#1b7837"), ("arousal", "#762a83")):
            # at the window's centre, kept inside the estimate's column (the last windows reach past the end)
            pts = [(x(min(max((e["start_s"] + e["end_s"]) / 2, c0), c1)), mid - float(e[key]) * h / 2)
                   for e, (c0, c1) in zip(ests, columns) if e["modalities"]]
            if pts:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
                for px, py in pts:
                    parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2" fill="{colour}"/>')
        # face presence: runs of analysed frames
        y0, h = rows["face"]
        parts.append(f'<rect x="{left}" y="{y0}" width="{duration_s * pps:.1f}" height="{h}" fill="#eee"/>')
        samples = sorted(self.face_samples)
        if samples:
            gaps = np.diff([t for t, _ in samples])
            period = float(np.median(gaps)) if len(gaps) else 1 / 15
            for i, (t0, present) in enumerate(samples):
                t1 = samples[i + 1][0] if i + 1 < len(samples) else t0 + period
                t1 = min(t1, t0 + 3 * period)
                colour = "#2e7d32" if present else "#c62828"
                parts.append(f'<rect x="{x(t0):.2f}" y="{y0}" width="{max((t1 - t0) * pps, 0.5):.2f}" '
                             f'height="{h}" fill="{colour}" opacity="0.8"/>')
        else:
            parts.append(f'<text x="{left + 6}" y="{y0 + 13}" font-size="11" fill="#777">no video analysed</text>')
        # speech segments
        y0, h = rows["speech"]
        parts.append(f'<rect x="{left}" y="{y0}" width="{duration_s * pps:.1f}" height="{h}" fill="#eee"/>')
        for a, b in self.segments:
            parts.append(f'<rect x="{x(a):.2f}" y="{y0}" width="{max((b - a) * pps, 1):.2f}" height="{h}" '
                         f'fill="#1565c0" opacity="0.75"><title>speech {a:.2f}-{b:.2f} s</title></rect>')
        # words, on four staggered rows
        y0, h = rows["words"]
        for i, w in enumerate(self.words):
            t0, t1 = w.start_ns / 1e9, w.end_ns / 1e9
            yy = y0 + 13 + (i % 4) * 15
            parts.append(f'<line x1="{x(t0):.1f}" y1="{y0}" x2="{x(t0):.1f}" y2="{yy - 10}" stroke="#90a4ae"/>')
            parts.append(f'<text x="{x(t0):.1f}" y="{yy}" font-size="11" fill="#263238">'
                         f'<title>{_esc(w.text)} {t0:.2f}-{t1:.2f} s</title>{_esc(w.text.strip())}</text>')
        parts.append("</svg>")
        return "".join(parts)

    def html(self, *, metrics: dict[str, Any] | None = None, interrupted: bool = False,
             notes: list[str] | None = None) -> str:
        """The report as one HTML string."""
        s = self.summary(metrics)
        m = s["metrics"]
        notes = list(notes or [])
        if self.info is not None:
            for line in self.info.notes():
                if line not in notes and "not selected" not in line:
                    notes.append(line)
        if interrupted:
            notes.insert(0, "The run was interrupted: this report covers what was computed until then.")
        title = f"streamline report: {os.path.basename(self.label) or self.label}"
        out: list[str] = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                          '<meta name="viewport" content="width=device-width, initial-scale=1">',
                          f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"]
        out.append(f"<h1>{_esc(title)}</h1>")
        when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        out.append(f'<div class="sub">{_esc(self.label)} &middot; {s["duration_s"]:.1f} s analysed &middot; '
                   f'{_esc(m.get("mode", ""))} &middot; generated {when} by streamline</div>')
        for line in notes:
            out.append(f'<div class="note">{_esc(line)}</div>')
        # summary cards
        out.append("<h2>Summary</h2><div class=\"cards\">")
        dom = s["dominant"]
        dom_html = ", ".join(f'<span style="color:{CLASS_COLORS[c]}">&#9632;</span> {_esc(c)} '
                             f'{s["label_shares"][c] * 100:.0f}%' for c in dom) or "no estimate with data"
        out.append(f'<div class="card"><h3>Dominant emotions (share of windows)</h3><div class="big">'
                   f'{_esc(dom[0]) if dom else "-"}</div><div>{dom_html}</div></div>')
        bars = "".join(
            f'<div>{_esc(c):<9} <span class="bar" style="width:{max(s["mean_probs"][c] * 160, 1):.0f}px;'
            f'background:{CLASS_COLORS[c]}"></span> {s["mean_probs"][c] * 100:.0f}%</div>' for c in CLASSES)
        if not s["estimates_with_data"]:
            bars = "<div>no estimate with data</div>"
        out.append(f'<div class="card"><h3>Mean class probabilities</h3>{bars}</div>')
        cov = s["modality_coverage"]
        cov_html = "".join(f"<div>{_esc(k)}: {v * 100:.0f}% of windows</div>" for k, v in cov.items())
        if s["face_present_share"] is not None:
            cov_html += f'<div>face found in {s["face_present_share"] * 100:.0f}% of {s["face_frames"]} analysed frames</div>'
        cov_html += f'<div>speech: {s["speech_s"]:.1f} s, {s["words"]} words</div>'
        out.append(f'<div class="card"><h3>Per-modality coverage</h3>{cov_html}</div>')
        va = ""
        if s["mean_valence"] is not None:
            va = f'<div>mean valence {s["mean_valence"]:+.2f}, arousal {s["mean_arousal"]:+.2f}</div>'
        speed = []
        if m.get("rtf") is not None:
            speed.append(f'<div class="big">{m["rtf"]:.2f}&times; real time</div>')
        if m.get("elapsed_s") is not None:
            speed.append(f'<div>{m["elapsed_s"]:.1f} s for {m.get("media_s", 0):.1f} s of media'
                         + (f', models loaded in {m["load_s"]:.1f} s' if m.get("load_s") else "") + "</div>")
        lat = (m.get("estimate_latency") or {}).get("excluding_words") if m.get("estimate_latency") else None
        if lat and lat.get("count"):
            speed.append(f'<div>estimate latency p50 {lat["p50_ms"]:.0f} ms, p95 {lat["p95_ms"]:.0f} ms '
                         f'(excluding the wait for words)</div>')
        lag = m.get("word_lag") or {}
        if lag and self.words:  # without words the lag percentiles are a placeholder 0
            speed.append(f'<div>committed words lag p50 {lag.get("p50_s", 0):.2f} s, p95 {lag.get("p95_s", 0):.2f} s</div>')
        out.append(f'<div class="card"><h3>Processing speed</h3>{"".join(speed) or "-"}'
                   f'<div>{s["estimates"]} estimates</div>{va}</div>')
        out.append("</div>")
        # timeline
        out.append("<h2>Timeline</h2>")
        legend = "".join(f'<span><span style="color:{CLASS_COLORS[c]}">&#9632;</span> {_esc(c)}</span>' for c in CLASSES)
        legend += ('<span><span style="color:#1b7837">&#9644;</span> valence</span>'
                   '<span><span style="color:#762a83">&#9644;</span> arousal</span>'
                   '<span><span style="color:#2e7d32">&#9632;</span> face present</span>'
                   '<span><span style="color:#c62828">&#9632;</span> no face</span>'
                   '<span><span style="color:#1565c0">&#9632;</span> speech</span>')
        out.append(f'<div class="legend">{legend}</div><div id="readout"></div>')
        out.append(f'<div class="scroll">{self._timeline_svg(s["duration_s"])}</div>')
        # transcript
        utts = self.utterances()
        out.append("<h2>Transcript</h2>")
        if utts:
            out.append("<table><tr><th>time</th><th>text</th><th>dominant emotion</th></tr>")
            for u in utts:
                emo = f'{_esc(u["emotion"])} {u["probability"] * 100:.0f}%' if u["emotion"] else "-"
                out.append(f'<tr><td>{u["start_s"]:.2f}&ndash;{u["end_s"]:.2f} s</td><td>{_esc(u["text"])}</td>'
                           f"<td>{emo}</td></tr>")
            out.append("</table>")
        else:
            out.append("<p>No words were recognised.</p>")
        if m:
            out.append("<h2>Metrics</h2><details><summary>pipeline metrics (JSON)</summary><pre>"
                       f"{_esc(json.dumps(m, indent=1))}</pre></details>")
        data = {
            "input": self.label,
            "summary": {k: v for k, v in s.items() if k != "metrics"},
            "estimates": self.estimates,
            "words": [{"text": w.text, "start_s": round(w.start_ns / 1e9, 3), "end_s": round(w.end_ns / 1e9, 3),
                       "utterance_id": w.utterance_id} for w in self.words],
            "segments": [{"start_s": round(a, 3), "end_s": round(b, 3)} for a, b in self.segments],
            "face": [[round(t, 3), p] for t, p in self.face_samples],
            "utterances": utts,
            "notes": notes,
            "interrupted": interrupted,
            "metrics": m,
        }
        payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
        out.append(f'<script type="application/json" id="streamline-data">{payload}</script>')
        out.append(f"<script>{_JS}</script></body></html>")
        return "\n".join(out)

    def write(self, path: str | os.PathLike[str], *, metrics: dict[str, Any] | None = None,
              interrupted: bool = False, notes: list[str] | None = None) -> Path:
        """Write the report (atomically: a temporary file renamed into place).

        Raises:
            ConfigError: the file cannot be written.
        """
        target = Path(path)
        text = self.html(metrics=metrics, interrupted=interrupted, notes=notes)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)
        except OSError as exc:
            raise ConfigError(f"--report {os.fspath(path)}: cannot write there ({exc.strerror or exc})") from exc
        return target
