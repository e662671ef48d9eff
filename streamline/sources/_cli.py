"""``streamline probe`` and ``streamline ingest``."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``probe`` and ``ingest`` subcommands."""
    probe_parser = subparsers.add_parser("probe", help="list a media file's streams",
                                         description="List the audio and video streams of a media file.")
    probe_parser.add_argument("file", help="the media file")
    probe_parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    probe_parser.set_defaults(func=_probe)

    ingest_parser = subparsers.add_parser(
        "ingest", help="decode a file onto the session timeline and report what came out",
        description="Decode a file's video and audio the way every pipeline does (upright RGB frames, "
                    "16 kHz mono audio, one timeline) and report counts, timing repairs and speed.")
    ingest_parser.add_argument("file", help="the media file")
    ingest_parser.add_argument("--fps", type=float, default=None, help="subsample video to this rate")
    ingest_parser.add_argument("--realtime", action="store_true", help="pace like a live device")
    ingest_parser.add_argument("--json", action="store_true", help="print one JSON object")
    ingest_parser.set_defaults(func=_ingest)


def _fmt(value: float | None, unit: str = "", digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _probe(args: argparse.Namespace) -> int:
    from .media import probe

    info = probe(args.file)
    if args.json:
        streams = []
        for s in info.streams:
            entry: dict[str, Any] = {k: v for k, v in asdict(s).items() if v is not None}
            if s.kind == "video":
                entry.pop("sample_rate_hz", None)
                entry.pop("channels", None)
            else:
                for key in ("fps", "width", "height", "rotation_deg"):
                    entry.pop(key, None)
            entry.setdefault("start_s", None)
            entry.setdefault("duration_s", None)
            streams.append(entry)
        print(json.dumps({
            "path": info.path,
            "format": info.format_name,
            "duration_s": info.duration_s,
            "origin_offset_s": info.origin_offset_ns / 1e9,
            "streams": streams,
        }))
        return 0
    print(f"{info.path}: {info.format_name}, duration {_fmt(info.duration_s, ' s')}, "
          f"timeline origin at {info.origin_offset_ns / 1e9:.3f} s")
    for s in info.streams:
        head = f"  #{s.index} {s.kind:5s} {s.codec:10s} start {_fmt(s.start_s, ' s')}  duration {_fmt(s.duration_s, ' s')}"
        if s.kind == "video":
            print(f"{head}  {s.width}x{s.height} @ {_fmt(s.fps, ' fps', 2)}  rotation {s.rotation_deg} deg")
        else:
            print(f"{head}  {s.sample_rate_hz} Hz  {s.channels} ch")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from ..timeline import NS_PER_S
    from .media import open_media

    started = time.perf_counter()
    failures: list[BaseException] = []
    last_ns: dict[str, int] = {}
    with open_media(args.file, fps=args.fps, realtime=args.realtime) as source:
        pending = [obs for obs in (source.video, source.audio) if obs is not None]
        remaining = threading.Semaphore(0)
        for kind, obs in (("video", source.video), ("audio", source.audio)):
            if obs is None:
                continue

            def on_next(item: Any, kind: str = kind) -> None:
                last_ns[kind] = getattr(item, "end_ns", item.pts_ns)

            obs.subscribe(on_next=on_next, on_error=lambda e: (failures.append(e), remaining.release()),
                          on_completed=remaining.release)
        for _ in pending:
            remaining.acquire()
        stats = {kind: s.as_dict() for kind, s in source.stats.items()}
    if failures:
        raise failures[0]
    elapsed = time.perf_counter() - started
    media_s = max(last_ns.values(), default=0) / NS_PER_S
    report = {"file": args.file, "media_s": media_s, "elapsed_s": round(elapsed, 4),
              "rtf": round(elapsed / media_s, 4) if media_s else None, "streams": stats}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.file}: {media_s:.3f} s of media decoded in {elapsed:.3f} s "
          f"(real-time factor {report['rtf']})")
    for kind, s in stats.items():
        ts = s["timestamps"]
        what = f"{s['items']} frames" if kind == "video" else f"{s['items']} chunks, {s['samples']} samples"
        print(f"  {kind}: {what}; bad packets {s['bad_packets']}; skipped {s['skipped']}; "
              f"timestamps synthesized {ts['synthesized']}, repaired "
              f"{ts['duplicates'] + ts['backwards'] + ts['resets'] + ts['jumps']}")
    sys.stdout.flush()
    return 0
