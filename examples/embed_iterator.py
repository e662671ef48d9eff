"""Embed streamline with a blocking iterator: ``for estimate in pipeline``.

    python examples/embed_iterator.py [examples/media/grid_bbaf2n.mpg]

Iterating starts the pipeline and blocks until the next estimate; the loop ends
when the input ends (or raises the pipeline's error). ``pipeline.iter_events()``
gives words, speech segments and face observations too, and its ``get(timeout_s)``
suits polling loops (a UI tick, a progress bar).
"""

import sys
from pathlib import Path

from streamline.pipeline import Pipeline, PipelineSettings

path = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "media" / "grid_bbaf2n.mpg"

settings = PipelineSettings(length_s=2.0, hop_s=0.5)  # the defaults, spelled out
with Pipeline.from_file(path, settings) as pipeline:
    for est in pipeline:
        if est.label is None:  # no face, voice or words in the window: no finding
            print(f"{est.end_s:5.1f} s  no data  (running: {est.running_label or '-'})")
            continue
        top = sorted(zip(est.probs, ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")),
                     reverse=True)[:2]
        print(f"{est.end_s:5.1f} s  " + ", ".join(f"{name} {p:.0%}" for p, name in top)
              + f"  (running: {est.running_label})")
    print(pipeline.metrics()["rtf"], "x real time")
