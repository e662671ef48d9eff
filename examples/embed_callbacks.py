"""Embed streamline with callbacks, handing results to an application's own (UI) thread.

    python examples/embed_callbacks.py [examples/media/grid_bbaf2n.mpg]

Callbacks run on the pipeline's delivery thread, never while the pipeline holds a
lock; a callback that raises is logged and detached (``on_error`` hears of it).
A GUI toolkit wants its widgets touched from its own thread only: post the
results to it (Qt: a signal; Tk: ``root.after``; here: a queue drained by the
main thread, standing in for the UI loop).
"""

import queue
import sys
from pathlib import Path

from streamline.pipeline import Pipeline

path = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "media" / "grid_bbaf2n.mpg"
ui_queue: "queue.Queue[tuple[str, object]]" = queue.Queue()

with Pipeline.from_file(path) as pipeline:
    pipeline.subscribe(
        on_estimate=lambda est: ui_queue.put(("estimate", est)),
        on_word=lambda word: ui_queue.put(("word", word)) if word.committed else None,
        on_error=lambda exc: ui_queue.put(("error", exc)),
        on_completed=lambda: ui_queue.put(("done", None)),
    )
    pipeline.start()
    while True:  # the "UI loop"
        kind, item = ui_queue.get()
        if kind == "done":
            break
        if kind == "error":
            raise SystemExit(f"pipeline failed: {item}")
        if kind == "word":
            print(f"  [{item.text}]")
        else:
            label = item.label or "no data"  # None: the window held no face, voice or words
            print(f"{item.end_s:5.1f} s  {label:<9} valence {item.valence:+.2f} arousal {item.arousal:+.2f}")
