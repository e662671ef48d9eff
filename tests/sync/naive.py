"""Slow, obviously correct references for the synchronizer (the stumpy pattern).

Everything here follows the written definitions (docs/sync.md) literally, with
plain Python loops over *all* items and no buffers, eviction, pointers or numba:

* :func:`naive_points` / :func:`naive_intervals` mirror the kernel wrappers
  ``assemble_points`` / ``assemble_intervals``;
* :class:`NaiveSync` mirrors :class:`streamline.sync.Synchronizer` (push, watermark,
  end, poll with an optional ``now``), keeping every accepted item forever and
  computing each window from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

HOLD, NEAREST, LINEAR = "hold", "nearest", "linear"


# --------------------------------------------------------------------------- definitions


def union_length(segments: list[tuple[int, int]]) -> int:
    """Measure of the union of half-open segments [s, e)."""
    total = 0
    cur = None
    for s, e in sorted(seg for seg in segments if seg[1] > seg[0]):
        if cur is None or s > cur[1]:
            if cur is not None:
                total += cur[1] - cur[0]
            cur = [s, e]
        else:
            cur[1] = max(cur[1], e)
    if cur is not None:
        total += cur[1] - cur[0]
    return total


def clip(s: int, e: int, a: int, b: int) -> tuple[int, int]:
    return max(s, a), min(e, b)


def point_in(t: int, a: int, b: int) -> bool:
    return a <= t < b


def interval_in(s: int, e: int, a: int, b: int) -> bool:
    if e == s:
        return a <= s < b
    return s < b and e > a


def grid_times(a: int, length: int, grid_n: int) -> list[int]:
    return [a + (i * length) // grid_n for i in range(grid_n)]


def resample_point(points: list[tuple[int, Any]], g: int, b: int, max_age: int, mode: str):
    """points: (t, value) of every accepted item, sorted by (t, arrival). Returns (value, valid)."""
    p = None
    for t, v in points:
        if t <= g:
            p = (t, v)  # the last one with t <= g (later arrivals replace earlier ones)
    later = [(t, v) for t, v in points if g < t < b]
    q = None
    if later:
        t_min = min(t for t, _ in later)
        q = [(t, v) for t, v in later if t == t_min][-1]
    if mode == HOLD:
        if p is not None and g - p[0] <= max_age:
            return p[1], True
        return None, False
    if mode == NEAREST:
        best = p
        if q is not None and (best is None or q[0] - g < g - p[0]):
            best = q
        if best is not None and abs(best[0] - g) <= max_age:
            return best[1], True
        return None, False
    # linear
    if p is None or g - p[0] > max_age:
        return None, False
    if q is not None and q[0] - g <= max_age:
        frac = (g - p[0]) / (q[0] - p[0])
        return [float(vp) + frac * (float(vq) - float(vp)) for vp, vq in zip(p[1], q[1])], True
    return p[1], True


def point_window(points: list[tuple[int, Any]], a: int, b: int, max_age: int, grid_n: int, mode: str, d: int):
    """Return (member indices, covered_ns, grid (G, d), mask (G,)) for one window."""
    members = [i for i, (t, _) in enumerate(points) if point_in(t, a, b)]
    before = [i for i, (t, _) in enumerate(points) if t < a]
    cover_from = ([before[-1]] if before else []) + members
    covered = union_length([clip(points[i][0], points[i][0] + max_age, a, b) for i in cover_from])
    grid = np.zeros((grid_n, d), np.float32)
    mask = np.zeros(grid_n, bool)
    for gi, g in enumerate(grid_times(a, b - a, grid_n)):
        value, ok = resample_point(points, g, b, max_age, mode)
        if ok:
            grid[gi] = np.asarray(value, dtype=np.float64).astype(np.float32)
            mask[gi] = True
    return members, covered, grid, mask


def interval_window(ivs: list[tuple[int, int, Any]], a: int, b: int, grid_n: int, d: int):
    """ivs: (s, e, value) sorted by (s, arrival). Returns (members, overlaps, covered, grid, mask)."""
    members = [i for i, (s, e, _) in enumerate(ivs) if interval_in(s, e, a, b)]
    overlaps = [max(0, min(ivs[i][1], b) - max(ivs[i][0], a)) for i in members]
    covered = union_length([clip(ivs[i][0], ivs[i][1], a, b) for i in members])
    grid = np.zeros((grid_n, d), np.float32)
    mask = np.zeros(grid_n, bool)
    for gi, g in enumerate(grid_times(a, b - a, grid_n)):
        covering = [i for i, (s, e, _) in enumerate(ivs) if s <= g < e]
        if covering:
            best = max(covering, key=lambda i: (ivs[i][0], i))
            grid[gi] = np.asarray(ivs[best][2], dtype=np.float32)
            mask[gi] = True
    return members, overlaps, covered, grid, mask


# --------------------------------------------------------------------------- kernel references


def naive_ranges(times, win_starts, length):
    lo, hi = [], []
    for a in win_starts:
        members = [i for i, t in enumerate(times) if a <= t < a + length]
        first = [i for i, t in enumerate(times) if t >= a]
        lo.append(members[0] if members else (first[0] if first else len(times)))
        hi.append(members[-1] + 1 if members else lo[-1])
    return np.array(lo, np.int64), np.array(hi, np.int64)


def _rows(values, n: int) -> tuple[int, list[tuple]]:
    """(d, one tuple of float32 per item) from an (n, d) or (n,) array or None."""
    if values is None:
        return 0, [()] * n
    arr = np.asarray(values, np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr.shape[1], [tuple(arr[i]) for i in range(n)]


def naive_points(times, values, win_starts, *, length_ns, max_age_ns, grid_n=0, mode=HOLD):
    times = [int(t) for t in times]
    d, vals = _rows(values, len(times))
    points = list(zip(times, vals))
    lo, hi = naive_ranges(times, win_starts, length_ns)
    covered, grids, masks = [], [], []
    for a in win_starts:
        a = int(a)
        _, cov, grid, mask = point_window(points, a, a + length_ns, max_age_ns, grid_n, mode, d)
        covered.append(cov)
        grids.append(grid)
        masks.append(mask)
    K = len(win_starts)
    return (lo, hi, np.array(covered, np.int64), np.array(grids, np.float32).reshape(K, grid_n, d),
            np.array(masks, bool).reshape(K, grid_n))


def naive_intervals(starts, ends, values, win_starts, *, length_ns, grid_n=0):
    d, vals = _rows(values, len(starts))
    ivs = [(int(s), int(e), v) for s, e, v in zip(starts, ends, vals)]
    offsets, idx, overlap, covered, grids, masks = [0], [], [], [], [], []
    for a in win_starts:
        a = int(a)
        members, ov, cov, grid, mask = interval_window(ivs, a, a + length_ns, grid_n, d)
        idx += members
        overlap += ov
        offsets.append(len(idx))
        covered.append(cov)
        grids.append(grid)
        masks.append(mask)
    K = len(win_starts)
    return (np.array(offsets, np.int64), np.array(idx, np.int64), np.array(overlap, np.int64),
            np.array(covered, np.int64), np.array(grids, np.float32).reshape(K, grid_n, d),
            np.array(masks, bool).reshape(K, grid_n))


# --------------------------------------------------------------------------- the synchronizer


@dataclass
class NaiveSlice:
    items: list  # the item objects (or None for array-fed)
    times: list[int]
    ends: list[int] | None
    overlaps: list[int] | None
    values: list | None
    covered_ns: int
    complete: bool
    grid: np.ndarray | None
    mask: np.ndarray | None


@dataclass
class NaiveWindow:
    index: int
    start_ns: int
    end_ns: int
    streams: dict[str, NaiveSlice]


@dataclass
class NaiveLate:
    stream: str
    item: Any
    start_ns: int
    end_ns: int
    reason: str
    missed: list[int]
    included: bool


@dataclass
class _NStream:
    name: str
    interval: bool
    budget: int | None
    max_age: int
    grid_n: int
    mode: str
    d: int
    watermark: int | None = None
    horizon: int | None = None
    ended: bool = False
    accepted: list = field(default_factory=list)  # (s, e, value, obj)


class NaiveSync:
    """Brute-force model of the Synchronizer.

    Args:
        start, hop, length: window geometry in int ns.
        streams: dicts with name, interval (bool), budget (ns or None), max_age (ns),
            grid_n, mode, d (value columns).
    """

    def __init__(self, *, start: int, hop: int, length: int, streams: list[dict]) -> None:
        self.start, self.hop, self.length = start, hop, length
        self.streams = {s["name"]: _NStream(**s) for s in streams}
        self.emitted = 0  # windows 0..emitted-1 are out
        self.late: list[NaiveLate] = []
        self.finished = False

    def win(self, k: int) -> tuple[int, int]:
        a = self.start + k * self.hop
        return a, a + self.length

    def windows_of(self, s: int, e: int) -> list[int]:
        out = []
        k = 0
        while self.win(k)[0] < max(e, s + 1):
            a, b = self.win(k)
            if interval_in(s, e, a, b):
                out.append(k)
            k += 1
        return out

    def push(self, name: str, s: int, e: int, value: Any = None, obj: Any = None) -> None:
        st = self.streams[name]
        st.horizon = max(st.horizon if st.horizon is not None else e, e if e > s else s + 1)
        wins = self.windows_of(s, e)
        if st.watermark is not None and s < st.watermark:
            self.late.append(NaiveLate(name, obj, s, e, "watermark", wins, False))
            return
        st.watermark = s
        if not wins:
            self.late.append(NaiveLate(name, obj, s, e, "before_start", [], False))
            return
        missed = [k for k in wins if k < self.emitted]
        if missed:
            included = len(missed) < len(wins)
            self.late.append(NaiveLate(name, obj, s, e, "emitted", missed, included))
            if not included:
                return
        st.accepted.append((s, e, value, obj))

    def watermark(self, name: str, t: int) -> None:
        st = self.streams[name]
        st.watermark = t if st.watermark is None else max(st.watermark, t)
        st.horizon = t if st.horizon is None else max(st.horizon, t)

    def end(self, name: str) -> None:
        self.streams[name].ended = True

    def _ready(self, k: int, now: int | None) -> bool:
        a, b = self.win(k)
        if all(st.ended for st in self.streams.values()):
            horizons = [st.horizon for st in self.streams.values() if st.horizon is not None]
            return bool(horizons) and a < max(horizons)
        for st in self.streams.values():
            ok = st.ended or (st.watermark is not None and st.watermark >= b)
            ok = ok or (st.budget is not None and now is not None and now >= b + st.budget)
            if not ok:
                return False
        return True

    def poll(self, now: int | None = None) -> list[NaiveWindow]:
        if self.finished:
            return []
        out = []
        while self._ready(self.emitted, now):
            out.append(self._make(self.emitted))
            self.emitted += 1
        if all(st.ended for st in self.streams.values()):
            self.finished = True
        return out

    def _make(self, k: int) -> NaiveWindow:
        a, b = self.win(k)
        slices = {}
        for name, st in self.streams.items():
            complete = st.ended or (st.watermark is not None and st.watermark >= b)
            acc = sorted(range(len(st.accepted)), key=lambda i: (st.accepted[i][0], i))
            rows = [st.accepted[i] for i in acc]
            d = st.d
            if st.interval:
                ivs = [(s, e, v if v is not None else ()) for s, e, v, _ in rows]
                members, overlaps, covered, grid, mask = interval_window(ivs, a, b, st.grid_n, d)
                slices[name] = NaiveSlice(
                    [rows[i][3] for i in members], [rows[i][0] for i in members], [rows[i][1] for i in members],
                    overlaps, [rows[i][2] for i in members] if d else None, covered, complete,
                    grid if st.grid_n else None, mask if st.grid_n else None)
            else:
                points = [(s, v if v is not None else ()) for s, _, v, _ in rows]
                members, covered, grid, mask = point_window(points, a, b, st.max_age, st.grid_n, st.mode, d)
                slices[name] = NaiveSlice(
                    [rows[i][3] for i in members], [rows[i][0] for i in members], None, None,
                    [rows[i][2] for i in members] if d else None, covered, complete,
                    grid if st.grid_n else None, mask if st.grid_n else None)
        return NaiveWindow(k, a, b, slices)
