"""Pipeline metrics: per-stage latency percentiles, queues, real-time factor, word lag.

:class:`LatencyRecorder` keeps the last ``capacity`` samples of one quantity
(thread-safe) and reports ``p50``/``p95``/``max`` in milliseconds;
:class:`ReadyTracker` remembers, per synchronizer window, when each input stream
had delivered everything up to the window's end, which is what splits an
estimate's latency into "waiting for the fast streams" and "waiting for words".
:func:`format_metrics` renders :meth:`Pipeline.metrics` for ``--stats``.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np

__all__ = ["LatencyRecorder", "ReadyTracker", "format_metrics"]


class LatencyRecorder:
    """Samples of one duration (seconds in, milliseconds out), the last ``capacity`` kept.

    Args:
        capacity: samples kept for the percentiles (the count and max cover all).
    """

    def __init__(self, capacity: int = 20_000) -> None:
        self._samples: deque[float] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.count = 0
        self.max_s = 0.0
        self.total_s = 0.0

    def add(self, seconds: float) -> None:
        """Record one duration, seconds."""
        with self._lock:
            self._samples.append(seconds)
            self.count += 1
            self.total_s += seconds
            if seconds > self.max_s:
                self.max_s = seconds

    def percentile_ms(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) in ms over the kept samples, or None if none."""
        with self._lock:
            samples = list(self._samples)
        if not samples:
            return None
        return float(np.percentile(samples, q)) * 1000.0

    def as_dict(self) -> dict[str, Any]:
        """``count``, ``p50_ms``, ``p95_ms``, ``max_ms``, ``mean_ms`` (None without samples)."""
        p50, p95 = self.percentile_ms(50), self.percentile_ms(95)
        with self._lock:
            count, max_s, total_s = self.count, self.max_s, self.total_s
        return {
            "count": count,
            "p50_ms": None if p50 is None else round(p50, 2),
            "p95_ms": None if p95 is None else round(p95, 2),
            "max_ms": round(max_s * 1000.0, 2) if count else None,
            "mean_ms": round(total_s / count * 1000.0, 2) if count else None,
        }


class ReadyTracker:
    """When each stream first reached each window end (session clock, int ns).

    The pipeline calls :meth:`advance` with every item time (or watermark) that goes
    into the synchronizer and :meth:`end` when a stream completes; :meth:`ready_ns`
    tells, for window ``k``, the clock time at which the stream had delivered
    everything before the window's end (None if it has not yet).

    Args:
        start_ns, hop_ns, length_ns: the window grid.
        clock: session clock (int ns).
        streams: the stream names.
    """

    def __init__(self, start_ns: int, hop_ns: int, length_ns: int, clock: Any, streams: tuple[str, ...]) -> None:
        self._start_ns, self._hop_ns, self._length_ns = start_ns, hop_ns, length_ns
        self._clock = clock
        self._lock = threading.Lock()
        # per stream: the next window index not yet reached, and the times of the reached ones
        self._next: dict[str, int] = {s: 0 for s in streams}
        self._times: dict[str, dict[int, int]] = {s: {} for s in streams}
        self._ended: dict[str, int | None] = {s: None for s in streams}

    def _end_of(self, k: int) -> int:
        return self._start_ns + k * self._hop_ns + self._length_ns

    def advance(self, stream: str, t_ns: int) -> None:
        """The stream's time reached ``t_ns`` (an item's time, or a watermark)."""
        now = self._clock()
        with self._lock:
            k = self._next[stream]
            times = self._times[stream]
            while self._end_of(k) <= t_ns:
                times[k] = now
                k += 1
            self._next[stream] = k

    def end(self, stream: str) -> None:
        """The stream completed: it is ready for every later window."""
        now = self._clock()
        with self._lock:
            if self._ended[stream] is None:
                self._ended[stream] = now

    def ready_ns(self, stream: str, k: int) -> int | None:
        """When ``stream`` was ready for window ``k`` (and forgets older windows)."""
        with self._lock:
            times = self._times[stream]
            t = times.get(k)
            if t is None:
                t = self._ended[stream]
            for old in [i for i in times if i < k - 8]:
                del times[old]
            return t


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}{unit}" if abs(v) >= 10 else f"{v:.2f}{unit}"
    return f"{v}{unit}"


def format_metrics(m: dict[str, Any]) -> str:
    """A human-readable multi-line summary of :meth:`Pipeline.metrics` (for ``--stats``)."""
    lines = []
    loading = f" after {_fmt(m['load_s'], ' s')} of model loading" if m.get("load_s") is not None else ""
    lines.append(
        f"elapsed {_fmt(m.get('elapsed_s'), ' s')}{loading}, media {_fmt(m.get('media_s'), ' s')}, "
        f"real-time factor {_fmt(m.get('rtf'))} (loading excluded; {m.get('mode')}); "
        f"{m.get('estimates', 0)} estimates, {m.get('words', 0)} words"
    )
    lat = m.get("estimate_latency") or {}
    if lat.get("total", {}).get("count"):
        t, x, w = lat["total"], lat["excluding_words"], lat["waiting_for_words"]
        lines.append(
            f"estimate latency (emission - window end): p50 {_fmt(t['p50_ms'], ' ms')}, p95 {_fmt(t['p95_ms'], ' ms')}; "
            f"excluding the wait for words p50 {_fmt(x['p50_ms'], ' ms')}, p95 {_fmt(x['p95_ms'], ' ms')}; "
            f"waiting for words p95 {_fmt(w['p95_ms'], ' ms')}"
        )
    lag = m.get("word_lag") or {}
    if lag:
        lines.append(
            f"committed-word lag (audio time): p50 {_fmt(lag.get('p50_s'), ' s')}, p95 {_fmt(lag.get('p95_s'), ' s')}, "
            f"max {_fmt(lag.get('max_s'), ' s')}"
        )
    stages = m.get("stages") or {}
    if stages:
        lines.append("stage                 items    p50 ms    p95 ms    max ms")
        for name, s in stages.items():
            lines.append(f"  {name:<18} {s.get('count', 0):>7} {_fmt(s.get('p50_ms')):>9} {_fmt(s.get('p95_ms')):>9} "
                         f"{_fmt(s.get('max_ms')):>9}")
    queues = m.get("queues") or {}
    if queues:
        lines.append("queue                 depth  max depth  delivered  dropped  blocked s")
        for name, q in queues.items():
            lines.append(f"  {name:<18} {q.get('depth', 0):>7} {q.get('max_depth', 0):>10} {q.get('delivered', 0):>10} "
                         f"{q.get('dropped', 0):>8} {_fmt(q.get('blocked_s')):>10}")
    sync = m.get("sync") or {}
    if sync:
        lines.append(f"windows {sync.get('windows')}, incomplete {sync.get('incomplete_windows')}, "
                     f"late items {sync.get('late')}")
    cov = m.get("modality_coverage") or {}
    if cov:
        lines.append("modality coverage (share of estimates): " +
                     ", ".join(f"{k} {v * 100:.0f}%" for k, v in cov.items()))
    return "\n".join(lines)
