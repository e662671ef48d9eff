"""The live demo: camera and microphone in, estimates shown as they come.

Two views of one :class:`LiveState` (updated from the pipeline's events on the
thread that consumes them):

* :class:`WindowView`: the video in an OpenCV window with an overlay (face box,
  the top emotions as bars, valence/arousal, the live transcript, latency and
  frame rate). OpenCV (``cv2``, installed with mediapipe) is imported lazily.
* :class:`TerminalView`: a live text view (redrawn in place on a terminal; one
  line per estimate when the output is not a terminal, e.g. in logs and tests).

:func:`run_webcam` drives either from :meth:`Pipeline.from_devices` or
:meth:`Pipeline.from_synthetic`; ``streamline webcam`` and
``examples/webcam_demo.py`` call it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from ..errors import ConfigError
from ..fusion.types import CLASSES
from ..types import Word

__all__ = ["LiveState", "TerminalView", "WindowView", "render_overlay", "run_webcam", "display_available"]

log = logging.getLogger(__name__)


@dataclass
class LiveState:
    """What the views show, updated by :meth:`update` from pipeline events.

    Attributes:
        estimate: the latest EmotionEstimate, or None.
        face: the latest FaceObservation, or None.
        committed: the last committed words (up to 40).
        partial: the current partial (uncommitted) words.
        latency_ms: for the latest estimate: session time at delivery minus the window end.
        estimates: estimates received.
    """

    estimate: Any = None
    face: Any = None
    committed: deque = field(default_factory=lambda: deque(maxlen=40))
    partial: list = field(default_factory=list)
    latency_ms: float | None = None
    estimates: int = 0

    def update(self, item: Any, now_ns: int | None = None) -> bool:
        """Fold one pipeline event in; True when it was an estimate."""
        if isinstance(item, Word):
            if item.committed:
                self.committed.append(item.text.strip())
                self.partial = [w for w in self.partial if w.start_ns > item.end_ns]
            else:
                if not self.partial or item.start_ns <= self.partial[0].start_ns:
                    self.partial = []
                self.partial.append(item)
            return False
        if hasattr(item, "probs") and hasattr(item, "running_probs"):
            self.estimate = item
            self.estimates += 1
            # A last, partial window flushed when the inputs end lies partly in the
            # future: it has no latency to show.
            if now_ns is not None and now_ns >= item.end_ns:
                self.latency_ms = (now_ns - item.end_ns) / 1e6
            else:
                self.latency_ms = None
            return True
        if hasattr(item, "present") and hasattr(item, "blendshapes"):
            self.face = item
        return False

    def transcript(self, max_chars: int = 80) -> tuple[str, str]:
        """(committed tail, partial words) of the live transcript."""
        committed = " ".join(self.committed)
        partial = " ".join(w.text.strip() for w in self.partial)
        room = max(max_chars - len(partial) - 1, 10)
        if len(committed) > room:
            committed = "..." + committed[-(room - 3):]
        return committed, partial

    def top(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` most probable classes of the running estimate (none before any
        window with data: its uniform probabilities are not a finding)."""
        if self.estimate is None or self.estimate.running_label is None:
            return []
        probs = np.asarray(self.estimate.running_probs)
        order = np.argsort(-probs)[:n]
        return [(CLASSES[int(i)], float(probs[int(i)])) for i in order]


def display_available() -> bool:
    """True when a window can probably be shown (a display on Linux; assumed elsewhere)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class TerminalView:
    """Live text view. On a terminal it redraws a small block in place; otherwise it
    prints one line per estimate (``t=... label p ... | transcript``).

    Args:
        stream: where to write (default: standard output).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lines = 0

    def show(self, state: LiveState) -> None:
        est = state.estimate
        if est is None:
            return
        top = state.top(3)
        committed, partial = state.transcript()
        latency = f"{state.latency_ms:.0f} ms" if state.latency_ms is not None else "-"
        face = "-" if state.face is None else ("face" if state.face.present else "no face")
        mods = "+".join(est.modalities) or "none"
        if not self.tty:
            tops = " ".join(f"{c}={p:.2f}" for c, p in top)
            if est.running_label is None:  # no window with data yet: nothing to show but that
                what = f"{'no data':<9}  valence=- arousal=-"
            else:
                what = (f"{est.running_label:<9} {tops} valence={est.running_valence:+.2f} "
                        f"arousal={est.running_arousal:+.2f}")
            self.stream.write(f"t={est.end_s:7.2f}s {what} [{mods}] {face} latency={latency} | "
                              f"{committed} {partial}\n")
            self.stream.flush()
            return
        lines = [f"streamline live  t={est.end_s:7.1f} s   latency {latency}   {face}   modalities {mods}"]
        for c, p in top:
            bar = "#" * int(round(p * 30))
            lines.append(f"  {c:<9} {bar:<30} {p * 100:3.0f}%")
        if top:
            lines.append(f"  valence {est.running_valence:+.2f}   arousal {est.running_arousal:+.2f}")
        else:
            lines.append("  no data yet (no face, voice or words in any window so far)")
        lines.append(f"  > {committed} \x1b[2m{partial}\x1b[0m")
        out = ""
        if self._lines:
            out += f"\x1b[{self._lines}F"
        out += "".join("\x1b[2K" + line + "\n" for line in lines)
        self.stream.write(out)
        self.stream.flush()
        self._lines = len(lines)


def render_overlay(frame: Any, state: LiveState, *, fps: float | None = None) -> np.ndarray:
    """The video frame with the demo's overlay, as a BGR (H, W, 3) uint8 image (OpenCV's order).

    Draws the face box (green), a panel with the running estimate's top three
    emotions as bars, valence and arousal, latency and frame rate (top left), and
    the live transcript (bottom band: committed words in white, partial ones in grey).

    Raises:
        MissingExtraError: OpenCV is not installed (it comes with the ``face`` extra).
    """
    from .._optional import require

    cv2 = require("cv2", "face")
    img = cv2.cvtColor(np.asarray(frame.image), cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    face = state.face
    if face is not None and face.present and face.box is not None:
        x0, y0, x1, y1 = (int(v) for v in face.box)
        cv2.rectangle(img, (x0, y0), (x1, y1), (80, 220, 80), 2)
    panel_w = min(320, max(w // 2, 230), w)
    overlay = img.copy()
    cv2.rectangle(overlay, (0, 0), (panel_w, 130), (0, 0, 0), -1)
    img = cv2.addWeighted(overlay, 0.55, img, 0.45, 0)
    for i, (c, p) in enumerate(state.top(3)):
        y = 24 + i * 26
        cv2.putText(img, c, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.rectangle(img, (95, y - 12), (95 + int(p * (panel_w - 145)), y), (0, 200, 255), -1)
        cv2.putText(img, f"{p * 100:.0f}%", (panel_w - 45, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
    est = state.estimate
    if est is not None:
        va = "no data yet" if est.running_label is None else \
            f"V {est.running_valence:+.2f}  A {est.running_arousal:+.2f}"
        cv2.putText(img, va, (8, 102), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (220, 220, 220), 1, cv2.LINE_AA)
    latency = f"{state.latency_ms:.0f} ms" if state.latency_ms is not None else "-"
    rate = f"  {fps:.0f} fps" if fps is not None else ""
    cv2.putText(img, f"latency {latency}{rate}", (8, 122), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (200, 200, 200), 1, cv2.LINE_AA)
    committed, partial = state.transcript(max_chars=max(w // 9, 20))
    band = img.copy()
    cv2.rectangle(band, (0, h - 34), (w, h), (0, 0, 0), -1)
    img = cv2.addWeighted(band, 0.6, img, 0.4, 0)
    cv2.putText(img, committed, (8, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    if partial:
        (tw, _), _ = cv2.getTextSize(committed + " ", cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
        cv2.putText(img, partial, (8 + tw, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (160, 160, 160), 1, cv2.LINE_AA)
    return img


class WindowView:
    """The video with the overlay (:func:`render_overlay`) in an OpenCV window (``q`` or Esc closes it).

    Raises:
        MissingExtraError: OpenCV is not installed (it comes with the ``face`` extra).
    """

    def __init__(self, title: str = "streamline") -> None:
        from .._optional import require

        self.cv2 = require("cv2", "face")
        self.title = title
        self._frames: deque[float] = deque(maxlen=30)
        self.cv2.namedWindow(self.title, self.cv2.WINDOW_NORMAL)

    def show(self, frame: Any, state: LiveState) -> bool:
        """Draw and show one frame; False when the user closed the window (q / Esc)."""
        if frame is not None:
            self._frames.append(time.monotonic())
            span = self._frames[-1] - self._frames[0]
            fps = (len(self._frames) - 1) / span if span > 0 else None
            self.cv2.imshow(self.title, render_overlay(frame, state, fps=fps))
        key = self.cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        try:
            return self.cv2.getWindowProperty(self.title, self.cv2.WND_PROP_VISIBLE) >= 1
        except Exception:  # noqa: BLE001 - some backends do not report it
            return True

    def close(self) -> None:
        try:
            self.cv2.destroyWindow(self.title)
            self.cv2.waitKey(1)
        except Exception:  # noqa: BLE001
            pass


def run_webcam(settings: Any = None, *, headless: bool = False, synthetic: bool = False,
               replay: str | os.PathLike[str] | None = None,
               duration_s: float | None = None, camera: str | None = None, microphone: str | None = None,
               out: str | None = None, stats: bool = False, models: Any = None,
               stream: TextIO | None = None) -> int:
    """Run the live demo until the duration passes, the window is closed, or Ctrl-C.

    Args:
        settings: :class:`PipelineSettings` (defaults when None).
        headless: the terminal view instead of a window (also used when no display exists).
        synthetic: the synthetic devices instead of a camera and microphone (a tone and a
            test pattern: the live path without anything to recognise).
        replay: a media file played at its own pace instead of the devices (a face and
            speech to watch the live view on, without a camera).
        duration_s: stop after this many seconds (None: until stopped).
        camera, microphone: device names (platform defaults when None).
        out: also write the estimates and words as JSON lines to this file.
        stats: print the pipeline metrics to stderr at the end.
        models: shared :class:`PipelineModels`.
        stream: where the terminal view writes (standard output by default).

    Returns:
        The exit code: 0, or 130 when stopped with Ctrl-C (the outputs are complete either way).

    Raises:
        DeviceError: a device cannot be opened.
        ConfigError: both ``synthetic`` and ``replay``.
        MediaNotFoundError, CorruptMediaError, NoMediaStreamsError: ``replay`` cannot be read.
    """
    from .metrics import format_metrics
    from .pipeline import Pipeline
    from .sinks import JsonlWriter

    if synthetic and replay is not None:
        raise ConfigError("run_webcam: choose the synthetic devices or a replayed file, not both")
    if synthetic:
        pipeline = Pipeline.from_synthetic(settings, duration_s=duration_s, models=models)
    elif replay is not None:
        pipeline = Pipeline.from_file(replay, settings, realtime=True, models=models)
    else:
        pipeline = Pipeline.from_devices(settings, camera=camera, microphone=microphone, models=models)
    window = None
    if not headless:
        if display_available():
            window = WindowView()
        else:
            print("streamline webcam: note: no display found; showing the terminal view (--headless)",
                  file=sys.stderr)
    terminal = TerminalView(stream) if window is None else None
    writer = JsonlWriter(out) if out else None
    state = LiveState()
    deadline = None if duration_s is None else time.monotonic() + duration_s + 30.0
    stop_at = None if duration_s is None or synthetic else time.monotonic() + duration_s
    interrupted = False
    try:
        events = pipeline.iter_events()
        while True:
            if stop_at is not None and time.monotonic() >= stop_at:
                break
            if deadline is not None and time.monotonic() >= deadline:
                log.warning("the synthetic run did not end in time; stopping")
                break
            try:
                item = events.get(0.01 if window is not None else 0.1)
                while item is not None:
                    if writer is not None:
                        writer.write(item)
                    if state.update(item, pipeline.now_ns()) and terminal is not None:
                        terminal.show(state)
                    item = events.get(0)
            except StopIteration:
                break
            if window is not None and not window.show(pipeline.latest_frame(), state):
                break
    except KeyboardInterrupt:  # the usual way to end a live session; outputs are closed below
        interrupted = True
    finally:
        pipeline.close()
        if window is not None:
            window.close()
        if writer is not None:
            writer.close()
        if stats:
            print(format_metrics(pipeline.metrics()), file=sys.stderr)
    if pipeline.error is not None:
        raise pipeline.error
    return 130 if interrupted else 0  # the CLI's convention for Ctrl-C
