"""Collect what a source delivers, for assertions."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from streamline.sources import MediaSource, open_media


@dataclass
class Collected:
    frames: list[Any] = field(default_factory=list)
    chunks: list[Any] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    info: Any = None

    @property
    def audio_samples(self) -> int:
        return sum(c.num_samples for c in self.chunks)


def drain(source: MediaSource, timeout_s: float = 60.0) -> Collected:
    """Subscribe to every stream of ``source``, wait for all to end, close it."""
    out = Collected(info=source.info)
    ended = threading.Semaphore(0)
    streams = [(kind, obs, sink) for kind, obs, sink in
               (("video", source.video, out.frames), ("audio", source.audio, out.chunks)) if obs is not None]
    with source:
        for kind, obs, sink in streams:
            obs.subscribe(
                on_next=sink.append,
                on_error=lambda e, kind=kind: (out.errors.__setitem__(kind, e), ended.release()),
                on_completed=ended.release,
            )
        for _ in streams:
            assert ended.acquire(timeout=timeout_s), f"{source!r} did not finish within {timeout_s} s"
        out.stats = {k: v.as_dict() for k, v in source.stats.items()}
    return out


def collect(path: Any, **kwargs: Any) -> Collected:
    return drain(open_media(path, **kwargs))
