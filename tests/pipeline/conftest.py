"""Fixtures of the pipeline tests: the models loaded once, the bundled clip analysed once.

``grid_run`` runs the whole pipeline over the bundled GRID clip ("bin blue at f two
now", 3 s) with all four consumers attached at once (Observable, blocking iterator,
async iterator on its own event loop, callbacks) and keeps what each received,
the threads alive before and after, and the metrics.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline_media import thread_names

sys.path.insert(0, str(Path(__file__).parent))  # pipeline_media

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def models():
    """Whisper tiny.en, the text encoder and the fusion model, loaded once for the session."""
    from streamline.pipeline import PipelineModels

    with PipelineModels.load() as loaded:
        yield loaded


@pytest.fixture(scope="session")
def made_media(tmp_path_factory, bundled_clip):
    """Files made from the bundled clip: audio-only WAV, video-only MKV, the clip 6 times in a row."""
    from pipeline_media import audio_only_wav, repeated_clip, video_only_clip

    folder = tmp_path_factory.mktemp("pipeline_media")
    return {
        "audio_only": audio_only_wav(bundled_clip, folder),
        "video_only": video_only_clip(bundled_clip, folder),
        "long": repeated_clip(bundled_clip, folder, times=6),
    }


@dataclass
class GridRun:
    """What one run over the bundled clip delivered to each consumer."""

    observable: list = field(default_factory=list)
    iterator: list = field(default_factory=list)
    async_iterator: list = field(default_factory=list)
    callbacks: list = field(default_factory=list)
    events: list = field(default_factory=list)
    completed: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    threads_before: set = field(default_factory=set)
    threads_after: set = field(default_factory=set)
    analyzers_closed: list = field(default_factory=list)
    info: Any = None
    wall_s: float = 0.0


@pytest.fixture(scope="session")
def grid_run(models, bundled_clip) -> GridRun:
    from streamline.pipeline import Pipeline

    run = GridRun()
    run.threads_before = thread_names()
    started = time.perf_counter()
    pipeline = Pipeline.from_file(bundled_clip, models=models)
    run.info = pipeline.info
    # 1. the Observable
    pipeline.estimates.subscribe(run.observable.append, run.errors.append, lambda: run.completed.append("rx"))
    pipeline.events.subscribe(run.events.append)
    # 2. callbacks
    pipeline.subscribe(run.callbacks.append, on_error=run.errors.append,
                       on_completed=lambda: run.completed.append("callbacks"))
    # 3. the async iterator, consumed on an event loop of its own
    ait = pipeline.aiter_estimates(start=False)

    async def consume() -> None:
        async for est in ait:
            run.async_iterator.append(est)

    loop_thread = threading.Thread(target=lambda: asyncio.run(consume()), name="test-async-consumer")
    loop_thread.start()
    # 4. the blocking iterator (starts the pipeline)
    with pipeline:
        for est in pipeline:
            run.iterator.append(est)
        loop_thread.join(timeout=60)
        run.metrics = pipeline.metrics()
    run.wall_s = time.perf_counter() - started
    run.analyzers_closed = [a.closed for a in pipeline.face_analyzers]
    time.sleep(0.1)
    run.threads_after = thread_names()
    return run
