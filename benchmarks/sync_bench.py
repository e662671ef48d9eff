"""Benchmark of the synchronizer (issue 3). Run: ``python benchmarks/sync_bench.py``.

Figures (the last line printed is one JSON object with all of them):

* ``events_per_s``: kernel throughput: one hour of a 100 Hz, 8-value feature
  stream (360,000 events) assembled into 2 s / 0.5 s windows (item ranges,
  coverage, 50 Hz linear grid) by the numba kernel through its checked wrapper.
* ``speedup_vs_numpy``: the same work done by a vectorized numpy implementation
  (searchsorted for ranges and grid, prefix sums for coverage), same events.
* ``speedup_vs_naive``: against the plain-Python reference of tests/sync/naive.py,
  run on the first 20 s of the same events (it scans every event per grid point,
  so it is measured on a short stretch and compared per event).
* ``window_p99_us``: time of the ``poll()`` that assembles one window of 3 streams
  x 2 s (30 fps face features of 52 values with a 15 Hz grid, 100 Hz voice
  features of 8 values with a 50 Hz linear grid, words as intervals), items pushed
  as objects; 99th percentile over ~2,000 windows.
* ``hop_overhead_us_median``: per-item cost through the reactive operator
  (``Subject.on_next`` -> window out, window assembly included), median over
  batches of 300 items, minus the cost of the same ``on_next`` into a no-op subscriber.
* ``rss_growth_mb``: resident memory growth between minute 10 and minute 60 of a
  one-hour live-like session (3 streams pushed as arrays each second, polled).
* ``sync_events_per_s``: events per second through the whole Synchronizer
  (push_array + poll + window objects) in that session.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from streamline.sync import StreamSpec, Synchronizer, WindowSpec, synchronize, warmup  # noqa: E402
from streamline.sync import _kernels as K  # noqa: E402

S = 1_000_000_000
MS = 1_000_000
LENGTH, HOP = 2 * S, S // 2


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def best_of(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# --------------------------------------------------------------------------- numpy baseline


def numpy_points(times, values, win_starts, *, length_ns, max_age_ns, grid_n):
    """Vectorized numpy: ranges, coverage (prefix sums of disjoint pieces), linear grid."""
    n = times.shape[0]
    lo = np.searchsorted(times, win_starts, "left")
    hi = np.searchsorted(times, win_starts + length_ns, "left")
    # coverage: point i covers [t_i, min(t_i + age, t_{i+1})): disjoint, sorted pieces
    nxt = np.empty(n, np.int64)
    nxt[:-1] = times[1:]
    nxt[-1] = np.iinfo(np.int64).max // 4
    piece_end = np.minimum(times + max_age_ns, nxt)
    pieces = piece_end - times
    prefix = np.concatenate([[0], np.cumsum(pieces)])
    first = np.maximum(lo - 1, 0)
    a, b = win_starts, win_starts + length_ns
    inner_lo = np.minimum(lo, hi)
    inner_hi = np.maximum(hi - 1, inner_lo)
    covered = prefix[inner_hi] - prefix[inner_lo]
    last = np.clip(hi - 1, 0, n - 1)
    has_last = hi > lo
    covered += np.where(has_last, np.clip(np.minimum(piece_end[last], b) - np.maximum(times[last], a), 0, None), 0)
    has_carry = lo > 0
    covered += np.where(has_carry, np.clip(np.minimum(piece_end[first], b) - a, 0, None), 0)
    # grid, linear with the hold mask
    offsets = (np.arange(grid_n, dtype=np.int64) * length_ns) // grid_n
    g = (win_starts[:, None] + offsets[None, :]).ravel()
    p = np.searchsorted(times, g, "right") - 1
    q = p + 1
    valid = (p >= 0) & (g - times[np.maximum(p, 0)] <= max_age_ns)
    qwin = np.repeat(b, grid_n)
    q_ok = (q < n) & (times[np.minimum(q, n - 1)] < qwin) & (times[np.minimum(q, n - 1)] - g <= max_age_ns)
    pc, qc = np.maximum(p, 0), np.minimum(q, n - 1)
    tp, tq = times[pc], times[qc]
    frac = np.where(q_ok, (g - tp) / np.where(q_ok, tq - tp, 1), 0.0)
    vp = values[pc].astype(np.float64)
    vq = values[qc].astype(np.float64)
    grid = (vp + frac[:, None] * (vq - vp)).astype(np.float32)
    grid[~valid] = 0
    K_ = win_starts.shape[0]
    return lo, hi, covered, grid.reshape(K_, grid_n, -1), valid.reshape(K_, grid_n)


# --------------------------------------------------------------------------- figures


def kernel_throughput() -> dict:
    rng = np.random.default_rng(0)
    seconds = 3600
    times = np.arange(0, seconds * S, 10 * MS, dtype=np.int64)
    values = rng.random((times.size, 8), dtype=np.float32)
    starts = np.arange(0, seconds * S - LENGTH + 1, HOP, dtype=np.int64)
    kw = dict(length_ns=LENGTH, max_age_ns=30 * MS, grid_n=100)
    numba_out = K.assemble_points(times, values, starts, mode="linear", **kw)
    numpy_out = numpy_points(times, values, starts, **kw)
    for a, b in zip(numba_out, numpy_out):  # the baseline computes the same thing
        np.testing.assert_array_equal(a, b)
    t_numba = best_of(lambda: K.assemble_points(times, values, starts, mode="linear", **kw))
    t_numpy = best_of(lambda: numpy_points(times, values, starts, **kw), repeat=3)

    from tests.sync.naive import naive_points

    short = 20 * S
    st, sv = times[times < short], values[times < short]
    ss = starts[starts + LENGTH <= short]
    naive_out = naive_points(st, sv, ss, mode="linear", **kw)
    fast_out = K.assemble_points(st, sv, ss, mode="linear", **kw)
    for a, b in zip(naive_out, fast_out):
        np.testing.assert_array_equal(a, b)
    t_naive = best_of(lambda: naive_points(st, sv, ss, mode="linear", **kw), repeat=1)
    eps = times.size / t_numba
    return {
        "events": int(times.size),
        "windows": int(starts.size),
        "events_per_s": eps,
        "numpy_events_per_s": times.size / t_numpy,
        "naive_events_per_s": st.size / t_naive,
        "speedup_vs_numpy": t_numpy / t_numba,
        "speedup_vs_naive": eps / (st.size / t_naive),
    }


class Frame:
    __slots__ = ("pts_ns", "features")

    def __init__(self, pts_ns: int, features: np.ndarray) -> None:
        self.pts_ns = pts_ns
        self.features = features


class WordItem:
    __slots__ = ("start_ns", "end_ns", "valence")

    def __init__(self, start_ns: int, end_ns: int, valence: float) -> None:
        self.start_ns, self.end_ns, self.valence = start_ns, end_ns, valence


def fusion_specs() -> list[StreamSpec]:
    return [
        StreamSpec("face", value_fn=lambda f: f.features, dim=52, grid_hz=15, max_age_s=0.1),
        StreamSpec("voice", value_fn=lambda f: f.features, dim=8, grid_hz=50, resample="linear", max_age_s=0.03),
        StreamSpec("words", value_fn=lambda w: (w.valence,), dim=1),
    ]


def hop_items(hop_index: int, rng) -> dict[str, list]:
    base = hop_index * HOP
    face = [Frame(base + (k * HOP) // 15, rng.random(52, dtype=np.float32)) for k in range(15)]
    voice = [Frame(base + k * 10 * MS, rng.random(8, dtype=np.float32)) for k in range(50)]
    words = [WordItem(base + 100 * MS, base + 400 * MS, 0.5)]
    return {"face": face, "voice": voice, "words": words}


def window_latency() -> dict:
    rng = np.random.default_rng(1)
    sync = Synchronizer(WindowSpec(2.0, 0.5), fusion_specs())
    hops = [hop_items(h, rng) for h in range(2200)]
    samples = []
    for h, items in enumerate(hops):
        for name in ("face", "voice", "words"):
            for it in items[name]:
                sync.push(name, it)
        t0 = time.perf_counter_ns()
        windows = sync.poll()
        dt = time.perf_counter_ns() - t0
        if h >= 100 and len(windows) == 1:
            samples.append(dt / 1000)
    arr = np.array(samples)
    return {"window_p50_us": float(np.percentile(arr, 50)), "window_p99_us": float(np.percentile(arr, 99)),
            "window_samples": int(arr.size)}


def hop_overhead() -> dict:
    from reactivex.subject import Subject

    rng = np.random.default_rng(2)
    subjects = {name: Subject() for name in ("face", "voice", "words")}
    synced = synchronize(subjects, length_s=2.0, hop_s=0.5, streams=fusion_specs())
    out = []
    synced.windows.subscribe(out.append)
    hops = [hop_items(h, rng) for h in range(1200)]
    order = []
    for items in hops:  # interleave as live: by time
        merged = [(it.pts_ns if hasattr(it, "pts_ns") else it.start_ns, name, it)
                  for name in items for it in items[name]]
        order += sorted(merged, key=lambda x: x[0])
    per_item = []
    batch = 300
    for i in range(0, len(order) - batch + 1, batch):
        chunk = order[i:i + batch]
        t0 = time.perf_counter_ns()
        for _, name, it in chunk:
            subjects[name].on_next(it)
        per_item.append((time.perf_counter_ns() - t0) / batch / 1000)
    # the bare cost of Subject.on_next into a no-op subscriber
    bare = Subject()
    bare.subscribe(lambda x: None)
    t0 = time.perf_counter_ns()
    for _, _, it in order[:30000]:
        bare.on_next(it)
    base = (time.perf_counter_ns() - t0) / min(30000, len(order)) / 1000
    med = float(np.median(per_item[5:]))
    return {"hop_overhead_us_median": med - base, "hop_total_us_median": med, "subject_on_next_us": base,
            "operator_windows": len(out)}


def long_session(seconds: int = 3600) -> dict:
    rng = np.random.default_rng(3)
    sync = Synchronizer(WindowSpec(2.0, 0.5), [
        StreamSpec("face", grid_hz=15, max_age_s=0.1, keep_items=False),
        StreamSpec("voice", grid_hz=50, resample="linear", max_age_s=0.03, keep_items=False),
        StreamSpec("words", keep_items=False),
    ])
    face_t = (np.arange(30) * S) // 30
    voice_t = np.arange(100) * 10 * MS
    face_v = rng.random((30, 52), dtype=np.float32)
    voice_v = rng.random((100, 8), dtype=np.float32)
    word_v = rng.random((2, 1), dtype=np.float32)
    rss = {}
    events = 0
    windows = 0
    t0 = time.perf_counter()
    for sec in range(seconds):
        base = sec * S
        sync.push_array("face", base + face_t, face_v)
        sync.push_array("voice", base + voice_t, voice_v)
        starts = base + np.array([100, 600], np.int64) * MS
        sync.push_array("words", starts, word_v, end_ns=starts + 350 * MS)
        events += 132
        windows += len(sync.poll())
        if sec in (600, seconds - 1):
            gc.collect()
            rss[sec] = rss_mb()
    elapsed = time.perf_counter() - t0
    stats = sync.stats
    return {
        "rss_growth_mb": rss[seconds - 1] - rss[600],
        "rss_mb": rss[seconds - 1],
        "sync_events_per_s": events / elapsed,
        "session_windows": windows,
        "session_s": seconds,
        "max_buffered": {k: v.max_buffered for k, v in stats.streams.items()},
    }


def main() -> None:
    t0 = time.perf_counter()
    warmup()
    warm_s = time.perf_counter() - t0
    print(f"warm-up (compile or cache load): {warm_s:.2f} s", flush=True)
    figures: dict = {"warmup_s": warm_s, "cpu_count": os.cpu_count(),
                     "numba_jit": os.environ.get("NUMBA_DISABLE_JIT", "0") != "1"}
    k = kernel_throughput()
    print(f"kernel: {k['events_per_s']:,.0f} events/s ({k['events']} events, {k['windows']} windows); "
          f"numpy {k['numpy_events_per_s']:,.0f}/s (x{k['speedup_vs_numpy']:.1f}); "
          f"naive {k['naive_events_per_s']:,.0f}/s (x{k['speedup_vs_naive']:,.0f})", flush=True)
    figures.update(k)
    w = window_latency()
    print(f"one window, 3 streams x 2 s: p50 {w['window_p50_us']:.1f} us, p99 {w['window_p99_us']:.1f} us", flush=True)
    figures.update(w)
    h = hop_overhead()
    print(f"reactive operator: {h['hop_overhead_us_median']:.2f} us per item over Subject.on_next "
          f"({h['hop_total_us_median']:.2f} us total)", flush=True)
    figures.update(h)
    s = long_session()
    print(f"1-hour session: RSS growth {s['rss_growth_mb']:.2f} MB (RSS {s['rss_mb']:.0f} MB), "
          f"{s['sync_events_per_s']:,.0f} events/s through the Synchronizer", flush=True)
    figures.update(s)
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
