"""Decode a file onto the session timeline and print what arrives.

    python examples/read_file.py examples/media/grid_bbaf2n.mpg
"""

import sys
import threading

from streamline import open_media

path = sys.argv[1] if len(sys.argv) > 1 else "examples/media/grid_bbaf2n.mpg"
ended = threading.Semaphore(0)
errors: list[Exception] = []


def failed(exc: Exception) -> None:
    """A decoding error, or a callback that raised (printing into a closed pipe), ends its stream here."""
    errors.append(exc)
    ended.release()


with open_media(path, fps=5) as source:
    print(source.info)
    source.video.subscribe(
        lambda f: print(f"video {f.pts_ns / 1e9:7.3f} s  {f.width}x{f.height}"),
        on_error=failed,
        on_completed=ended.release,
    )
    source.audio.subscribe(
        lambda c: print(f"audio {c.pts_ns / 1e9:7.3f} s  {c.num_samples} samples") if c.num_samples else None,
        on_error=failed,
        on_completed=ended.release,
    )
    ended.acquire()
    ended.acquire()
if errors:
    raise SystemExit(f"read_file: {errors[0]}")
print({kind: stats.as_dict() for kind, stats in source.stats.items()})
