"""Embed streamline as a reactive stream: compose ``pipeline.estimates`` with reactivex operators.

    python examples/embed_observable.py [examples/media/grid_bbaf2n.mpg]

``pipeline.estimates`` is a hot Observable[EmotionEstimate]; ``.words``,
``.segments``, ``.faces`` and ``.events`` are its siblings. Subscribe before
``start()`` to see every result. Items arrive on the pipeline's delivery thread.
"""

import sys
from pathlib import Path

from reactivex import operators as ops

from streamline.pipeline import Pipeline

path = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "media" / "grid_bbaf2n.mpg"

with Pipeline.from_file(path) as pipeline:
    pipeline.estimates.pipe(
        ops.filter(lambda est: est.modalities),                  # skip windows without any data
        ops.map(lambda est: f"{est.start_s:5.1f}-{est.end_s:4.1f} s  {est.label:<9} "
                            f"p={est.confidence:.2f}  valence {est.valence:+.2f}  [{'+'.join(est.modalities)}]"),
    ).subscribe(print)
    pipeline.words.pipe(ops.filter(lambda w: w.committed)).subscribe(
        lambda w: print(f"          word {w.text!r} at {w.start_ns / 1e9:.2f} s"))
    pipeline.start()
    pipeline.wait()
