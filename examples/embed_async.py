"""Embed streamline in asyncio: ``async for estimate in pipeline.aiter_estimates()``.

    python examples/embed_async.py [examples/media/grid_bbaf2n.mpg]

The async iterator is fed from the pipeline's delivery thread through
``loop.call_soon_threadsafe``: the event loop never blocks on the pipeline.
Loading the models takes seconds, so ``start()`` runs in a worker thread here.
"""

import asyncio
import sys
from pathlib import Path

from streamline.pipeline import Pipeline


async def main(path: str) -> None:
    with Pipeline.from_file(path) as pipeline:
        estimates = pipeline.aiter_estimates(start=False)   # listen first ...
        await asyncio.to_thread(pipeline.start)              # ... then load the models and start, off the loop
        async for est in estimates:
            label = est.label or "no data"  # None: the window held no face, voice or words
            print(f"{est.start_s:5.1f}-{est.end_s:4.1f} s  {label:<9} confidence {est.confidence:.2f}")
            await asyncio.sleep(0)                           # the loop stays free for other tasks


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "media" / "grid_bbaf2n.mpg")))
