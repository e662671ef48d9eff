"""Decode speed of the file source: real-time factor and per-frame cost.

    python benchmarks/sources_bench.py

Decodes the bundled GRID clip and, when ../shared/data is present, the 60 s
talking-head clip, through open_media (video to RGB, audio to 16 kHz mono) with
the items consumed by a no-op subscriber. Prints figures; the last line is one
JSON object.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from streamline.sources import open_media, probe

REPO = Path(__file__).resolve().parent.parent
CLIPS = [REPO / "examples/media/grid_bbaf2n.mpg",
         REPO.parent / "shared/data/talking_head/edtalk/pose_source2.mp4"]


def decode(path: Path) -> tuple[float, int, int]:
    frames = samples = 0
    ended = threading.Semaphore(0)

    def on_frame(_):
        nonlocal frames
        frames += 1

    def on_chunk(chunk):
        nonlocal samples
        samples += chunk.num_samples

    started = time.perf_counter()
    with open_media(path) as source:
        source.video.subscribe(on_frame, on_completed=ended.release)
        source.audio.subscribe(on_chunk, on_completed=ended.release)
        ended.acquire()
        ended.acquire()
    return time.perf_counter() - started, frames, samples


def main() -> int:
    results = {}
    for path in CLIPS:
        if not path.exists():
            print(f"skip {path.name}: not found", file=sys.stderr)
            continue
        duration_s = probe(path).duration_s or 0.0
        decode(path)  # warm the page cache and FFmpeg
        runs = [decode(path) for _ in range(3)]
        elapsed = min(r[0] for r in runs)
        _, frames, samples = runs[0]
        key = path.stem
        results[f"{key}_rtf"] = round(elapsed / duration_s, 5)
        results[f"{key}_ms_per_frame"] = round(elapsed * 1000 / max(frames, 1), 3)
        print(f"{path.name}: {duration_s:.1f} s of media, {frames} frames, {samples} samples "
              f"decoded in {elapsed:.3f} s (real-time factor {elapsed / duration_s:.4f}, "
              f"{elapsed * 1000 / max(frames, 1):.2f} ms per frame incl. audio)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
