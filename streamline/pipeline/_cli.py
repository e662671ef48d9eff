"""``streamline analyze`` and ``streamline webcam``.

``streamline analyze INPUT [--out estimates.jsonl|.csv] [--vtt transcript.vtt]
[--report report.html] [--realtime] [--stats] [--modalities face,voice,text]``

Exit codes (see :mod:`streamline.cli`): 0 success; 1 unreadable input or another
streamline error (one line on stderr); 2 usage; 130 interrupted (Ctrl-C), with
every output file written up to that point (JSON lines and CSV are flushed after
each record, the WebVTT after each cue, the report is written on the way out).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import time
from typing import Any, TextIO

from .._quiet import quietly

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``analyze`` and ``webcam`` subcommands."""
    p = subparsers.add_parser(
        "analyze",
        help="running emotion estimates, transcript and an HTML report for a media file",
        description=(
            "Run the whole pipeline (face, voice, speech recognition and text, synchronizer, fusion) on a "
            "file: one estimate per hop (default every 0.5 s over 2 s windows). Outputs are written as "
            "results come and flushed, so an interrupted run (Ctrl-C, exit code 130) keeps what it "
            "computed. Without --out, JSON lines go to standard output."
        ),
    )
    p.add_argument("input", help="an audio, video or audio-video file")
    p.add_argument("--out", "-o", help="estimates (and words) as JSON lines (.jsonl) or estimates as CSV (.csv)")
    p.add_argument("--vtt", help="the transcript as WebVTT, one cue per utterance with its dominant emotion")
    p.add_argument("--report", help="a self-contained HTML report (timeline plot and summary)")
    p.add_argument("--realtime", action="store_true",
                   help="replay paced like a live device (live policies; estimate latency is measured)")
    p.add_argument("--stats", action="store_true", help="print the pipeline metrics to stderr at the end")
    p.add_argument("--modalities", default="face,voice,text",
                   help="comma-separated subset of face,voice,text (default: all)")
    p.add_argument("--window", type=float, default=2.0, help="window length in seconds (default 2.0)")
    p.add_argument("--hop", type=float, default=0.5, help="hop between estimates in seconds (default 0.5)")
    p.add_argument("--face-fps", type=float, default=15.0, help="video frames analysed per second (default 15)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.set_defaults(func=quietly(_analyze))

    w = subparsers.add_parser(
        "webcam",
        help="live emotion estimates from the camera and microphone (window overlay or terminal view)",
        description=(
            "Camera and microphone in; the video in a window with an overlay (face box, top emotions, "
            "live transcript, latency), or a live terminal view with --headless. --synthetic uses a "
            "generated test pattern and tone instead of devices (no camera needed); a tone is not speech "
            "and the pattern holds no face, so its windows say 'no data': it shows the live path, not "
            "emotions. --replay FILE plays a recording at its own pace instead (a face and speech to "
            "watch without a camera). Stop with q / Esc in the window, or Ctrl-C."
        ),
    )
    w.add_argument("--headless", action="store_true", help="terminal view instead of a window")
    w.add_argument("--synthetic", action="store_true", help="synthetic devices (lavfi test pattern and tone)")
    w.add_argument("--replay", metavar="FILE", help="play a media file in real time instead of the devices")
    w.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    w.add_argument("--camera", default=None, help="camera device (platform default)")
    w.add_argument("--microphone", default=None, help="microphone device (platform default)")
    w.add_argument("--modalities", default="face,voice,text", help="comma-separated subset of face,voice,text")
    w.add_argument("--text-budget", type=float, default=None,
                   help="seconds a window may wait for committed words (default: the pipeline's, 2.0)")
    w.add_argument("--out", "-o", help="also write the estimates and words as JSON lines")
    w.add_argument("--stats", action="store_true", help="print the pipeline metrics to stderr at the end")
    w.set_defaults(func=quietly(_webcam))


class Progress:
    """A one-line progress bar with ETA on stderr (only when it is a terminal)."""

    def __init__(self, total_s: float | None, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total_s = total_s if total_s and total_s > 0 else None
        self.enabled = enabled
        self.stream = stream
        self._t0 = time.monotonic()
        self._last = 0.0
        self._width = 0

    def restart(self) -> None:
        """Measure elapsed time (and the ETA) from now."""
        self._t0 = time.monotonic()

    def update(self, done_s: float, extra: str = "", *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        elapsed = now - self._t0
        if self.total_s:
            frac = min(max(done_s / self.total_s, 0.0), 1.0)
            filled = int(frac * 24)
            eta = "--"
            if frac > 0.02:
                eta = f"{elapsed * (1 - frac) / frac:4.0f} s"
            line = (f"[{'#' * filled}{'.' * (24 - filled)}] {frac * 100:3.0f}% {done_s:6.1f}/{self.total_s:.1f} s "
                    f"ETA {eta}  {extra}")
        else:
            line = f"{done_s:7.1f} s analysed, {elapsed:5.0f} s elapsed  {extra}"
        stream = self.stream or sys.stderr
        pad = max(self._width - len(line), 0)
        stream.write("\r" + line + " " * pad)
        stream.flush()
        self._width = len(line)

    def finish(self) -> None:
        if self.enabled and self._width:
            stream = self.stream or sys.stderr
            stream.write("\r" + " " * self._width + "\r")
            stream.flush()
            self._width = 0


def _settings(args: argparse.Namespace) -> Any:
    import dataclasses

    from ..errors import ConfigError
    from .settings import PipelineSettings

    settings = PipelineSettings(modalities=args.modalities)
    changes: dict[str, Any] = {}
    if getattr(args, "window", None) is not None:
        changes["length_s"] = args.window
    if getattr(args, "hop", None) is not None:
        changes["hop_s"] = args.hop
    if getattr(args, "face_fps", None) is not None:
        if not args.face_fps > 0:
            raise ConfigError(f"--face-fps must be > 0, got {args.face_fps}")
        changes["face"] = dataclasses.replace(settings.face, fps=args.face_fps)
    if getattr(args, "text_budget", None) is not None:
        changes["live_text_budget_s"] = args.text_budget
    try:
        return dataclasses.replace(settings, **changes) if changes else settings
    except ConfigError as exc:  # name the option, not the settings field
        msg = str(exc).replace(" (PipelineSettings.voice.hop_s)", "")
        for field, option in (("length_s", "--window"), ("hop_s", "--hop")):
            msg = msg.replace(f"PipelineSettings.{field}=", f"{option} ").replace(f"PipelineSettings.{field}", option)
            msg = msg.replace(f"{field} (", f"{option} (")
        if "face modality" in msg:  # e.g. a WAV file: the face is selected by default, not by the input
            msg += ", or leave the face out with --modalities voice,text"
        raise ConfigError(msg.replace("PipelineSettings: ", "")) from None


def _analyze(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from .pipeline import Pipeline
    from .report import ReportBuilder
    from .sinks import JsonlWriter, VttWriter, open_estimate_writer

    settings = _settings(args)
    if args.out and args.report and os.path.abspath(args.out) == os.path.abspath(args.report):
        raise ConfigError("--out and --report name the same file")
    return _run_analyze(args, settings, Pipeline, ReportBuilder, JsonlWriter, VttWriter, open_estimate_writer)


def _run_analyze(args, settings, Pipeline, ReportBuilder, JsonlWriter, VttWriter, open_estimate_writer) -> int:  # noqa: ANN001
    from .metrics import format_metrics

    pipeline = Pipeline.from_file(args.input, settings, realtime=args.realtime)  # unreadable input fails here
    writers: list[Any] = []
    report = ReportBuilder(args.input, info=pipeline.info) if args.report else None
    cmd = "streamline analyze"
    notes = [f"{cmd}: note: {n}" for n in pipeline.info.notes() if "not selected" not in n]

    def say_notes() -> None:  # once something was computed (a failed run has only its error line)
        while notes:
            progress.finish()
            print(notes.pop(0), file=sys.stderr)

    interrupted = False
    failed = False
    progress = Progress(pipeline.info.duration_s,
                        enabled=sys.stderr.isatty() and not args.no_progress and bool(args.out or not sys.stdout.isatty()))
    try:
        if args.out:
            writers.append(open_estimate_writer(args.out))
        else:
            writers.append(JsonlWriter(sys.stdout))
        if args.vtt:
            writers.append(VttWriter(args.vtt))
        events = pipeline.iter_events(start=False)
        progress.update(0.0, "loading models", force=True)
        pipeline.start()
        progress.restart()  # the ETA counts from the start of the analysis, not of model loading
        done_s = 0.0
        n_est = n_with_data = 0
        while True:
            try:
                item = events.get(0.2)
            except StopIteration:
                if pipeline.error is None:
                    if n_est == 0:  # never a silent empty result
                        notes.append(f"{cmd}: note: no estimates: no window of {args.input} held data of the selected "
                                     "modalities (the media may be too short: a voice hop needs 0.1 s of audio)")
                    elif n_with_data == 0:
                        notes.append(f"{cmd}: note: none of the {n_est} windows held data: no face was found, "
                                     "no one spoke and no words were recognised (labels are empty)")
                    say_notes()
                break
            if item is not None:
                say_notes()
                for writer in writers:
                    writer.write(item)
                if report is not None:
                    report.add(item)
                if hasattr(item, "probs"):
                    n_est += 1
                    n_with_data += bool(item.modalities)
                    done_s = max(done_s, item.end_s if pipeline.info.duration_s is None
                                 else min(item.end_s, pipeline.info.duration_s))
            progress.update(done_s, f"{n_est} estimates")
    except KeyboardInterrupt:
        interrupted = True
        raise
    except BaseException:
        failed = True
        raise
    finally:
        previous = _ignore_sigint()
        try:
            progress.finish()
            pipeline.close()
            for writer in writers:
                try:
                    writer.close()
                except Exception:  # noqa: BLE001 - keep closing the others
                    logging.getLogger(__name__).exception("closing an output failed")
            metrics = pipeline.metrics()
            if report is not None and not (failed and not report.estimates):
                report.write(args.report, metrics=metrics, interrupted=interrupted)
            if args.stats:
                print(format_metrics(metrics), file=sys.stderr)
        finally:
            _restore_sigint(previous)
    return 0


def _ignore_sigint() -> Any:
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        return None


def _restore_sigint(previous: Any) -> None:
    if previous is not None:
        try:
            signal.signal(signal.SIGINT, previous)
        except ValueError:
            pass


def _webcam(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, DeviceError
    from .live_view import run_webcam

    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise ConfigError(f"--duration must be a positive number of seconds, got {args.duration}")
    settings = _settings(args)
    if args.replay is not None and (args.synthetic or args.camera or args.microphone):
        raise ConfigError("--replay plays a file instead of the devices: leave out --synthetic, --camera and --microphone")
    try:
        return run_webcam(settings, headless=args.headless, synthetic=args.synthetic, replay=args.replay,
                          duration_s=args.duration, camera=args.camera, microphone=args.microphone, out=args.out,
                          stats=args.stats)
    except DeviceError as exc:
        if args.synthetic or args.replay is not None:
            raise
        raise DeviceError(f"{exc} (no camera or microphone here? --synthetic runs on test sources, "
                          "--replay FILE on a recording)") from None
