"""numba kernels of the synchronizer (private) and their validating wrappers.

Every kernel works on int64 nanosecond arrays that are already sorted
(non-decreasing) and on float32 value rows, and never raises: the public
wrappers below check dtypes, shapes, order and ranges in Python first and raise
:class:`~streamline.errors.TimestampError` or :class:`~streamline.errors.ConfigError`
naming the argument (the stumpy pattern: private ``@njit`` kernels, public checked
wrappers). The :class:`~streamline.sync.Synchronizer` validates items once at
ingress and then calls the unchecked kernels directly.

Semantics (the same as ``docs/sync.md`` and ``tests/sync/naive.py``), for a
window ``[a, a + length)``:

* points: the items with ``a <= t < a + length``; the *carry-in* is the last item
  before ``a`` (used by resampling and coverage). A point covers
  ``[t, t + max_age)``; coverage is the measure of the union of the covers inside
  the window.
* grid: ``G`` points ``g_i = a + (i * length) // G`` for ``i in range(G)``.

  - hold: the last item with ``t <= g`` (items at equal times: the last pushed),
    valid when ``g - t <= max_age``;
  - nearest: the nearer of that item and the first later item inside the window
    (ties go to the earlier one), valid when ``|t - g| <= max_age``;
  - linear: the hold mask; where a later item ``q`` inside the window also lies
    within ``max_age`` of ``g``, the value is interpolated between ``p`` and ``q``
    in float64 (``v_p + (g - t_p) / (t_q - t_p) * (v_q - v_p)``), then stored as float32.
* intervals ``[s, e)`` overlap the window when ``s < a + length`` and ``e > a``;
  a zero-length interval ``[s, s)`` belongs to the window containing ``s`` with
  overlap 0 and covers nothing. A grid point takes the value of the covering
  interval (``s <= g < e``) with the latest start (ties: the last pushed).

Invalid grid points hold 0.0; read them through the mask.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numba import njit

from ..errors import ConfigError, TimestampError

MODE_HOLD = 0
MODE_NEAREST = 1
MODE_LINEAR = 2
MODES = {"hold": MODE_HOLD, "nearest": MODE_NEAREST, "linear": MODE_LINEAR}

#: Largest magnitude accepted for a time, a length or an age (about 73 years in ns):
#: sums of two such values never overflow int64 inside the kernels.
TIME_LIMIT_NS = 2**61
#: The "unbounded" maximum age.
INFINITE_AGE_NS = 2**61


# --------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def _ranges(times, win_starts, length):  # pragma: no cover - compiled
    """lo[k], hi[k]: the items with win_starts[k] <= t < win_starts[k] + length (two pointers)."""
    n = times.shape[0]
    K = win_starts.shape[0]
    lo = np.empty(K, np.int64)
    hi = np.empty(K, np.int64)
    i = 0
    j = 0
    for k in range(K):
        a = win_starts[k]
        b = a + length
        while i < n and times[i] < a:
            i += 1
        if j < i:
            j = i
        while j < n and times[j] < b:
            j += 1
        lo[k] = i
        hi[k] = j
    return lo, hi


@njit(cache=True, nogil=True)
def _resample_points(times, values, first, hi, a, length, grid_n, max_age, mode, out, mask):  # pragma: no cover
    """Resample the items first..hi-1 (first may be the carry-in) onto one window's grid."""
    d = values.shape[1]
    p = -1
    j = first
    for gi in range(grid_n):
        g = a + (gi * length) // grid_n
        while j < hi and times[j] <= g:
            p = j
            j += 1
        q = -1
        if j < hi:
            q = j
            while q + 1 < hi and times[q + 1] == times[q]:
                q += 1
        if mode == 0:  # hold
            if p >= 0 and g - times[p] <= max_age:
                for c in range(d):
                    out[gi, c] = values[p, c]
                mask[gi] = True
        elif mode == 1:  # nearest
            best = p
            if q >= 0 and (best < 0 or times[q] - g < g - times[p]):
                best = q
            if best >= 0:
                dist = times[best] - g
                if dist < 0:
                    dist = -dist
                if dist <= max_age:
                    for c in range(d):
                        out[gi, c] = values[best, c]
                    mask[gi] = True
        else:  # linear
            if p >= 0 and g - times[p] <= max_age:
                if q >= 0 and times[q] - g <= max_age:
                    frac = (g - times[p]) / (times[q] - times[p])
                    for c in range(d):
                        vp = np.float64(values[p, c])
                        vq = np.float64(values[q, c])
                        out[gi, c] = vp + frac * (vq - vp)
                else:
                    for c in range(d):
                        out[gi, c] = values[p, c]
                mask[gi] = True


@njit(cache=True, nogil=True)
def _points_batch(times, values, win_starts, length, max_age, grid_n, mode):  # pragma: no cover
    """Assemble K windows of one point stream: item ranges, covered ns, grid values and mask."""
    lo, hi = _ranges(times, win_starts, length)
    K = win_starts.shape[0]
    d = values.shape[1]
    covered = np.zeros(K, np.int64)
    grid = np.zeros((K, grid_n, d), np.float32)
    mask = np.zeros((K, grid_n), np.bool_)
    for k in range(K):
        a = win_starts[k]
        b = a + length
        first = lo[k] - 1 if lo[k] > 0 else lo[k]
        cur = a
        cov = 0
        for i in range(first, hi[k]):
            s = times[i]
            e = s + max_age
            if s < cur:
                s = cur
            if e > b:
                e = b
            if e > s:
                cov += e - s
                cur = e
        covered[k] = cov
        if grid_n > 0:
            _resample_points(times, values, first, hi[k], a, length, grid_n, max_age, mode, grid[k], mask[k])
    return lo, hi, covered, grid, mask


@njit(cache=True, nogil=True)
def _intervals_batch(starts, ends, values, win_starts, length, grid_n):  # pragma: no cover
    """Assemble K windows of one interval stream (intervals sorted by start).

    Returns CSR-style selections: window k holds idx[offsets[k]:offsets[k+1]]
    (increasing, so sorted by start then arrival) with their overlap in ns;
    plus covered ns, grid values and mask per window.
    """
    n = starts.shape[0]
    K = win_starts.shape[0]
    d = values.shape[1]
    maxlen = 0
    for i in range(n):
        span = ends[i] - starts[i]
        if span > maxlen:
            maxlen = span
    # pass 1: each window's candidate range [lbs[k], ubs[k]) and its count
    offsets = np.zeros(K + 1, np.int64)
    lbs = np.empty(K, np.int64)
    ubs = np.empty(K, np.int64)
    lb = 0
    ub = 0
    for k in range(K):
        a = win_starts[k]
        b = a + length
        while lb < n and starts[lb] < a - maxlen:
            lb += 1
        if ub < lb:
            ub = lb
        while ub < n and starts[ub] < b:
            ub += 1
        lbs[k] = lb
        ubs[k] = ub
        c = 0
        for i in range(lb, ub):
            s = starts[i]
            e = ends[i]
            if (e > s and e > a) or (e == s and s >= a):
                c += 1
        offsets[k + 1] = offsets[k] + c
    total = offsets[K]
    idx = np.empty(total, np.int64)
    overlap = np.empty(total, np.int64)
    covered = np.zeros(K, np.int64)
    grid = np.zeros((K, grid_n, d), np.float32)
    mask = np.zeros((K, grid_n), np.bool_)
    # pass 2: fill, coverage, grid
    for k in range(K):
        a = win_starts[k]
        b = a + length
        lb = lbs[k]
        ub = ubs[k]
        w = offsets[k]
        cur = a
        cov = 0
        for i in range(lb, ub):
            s = starts[i]
            e = ends[i]
            if (e > s and e > a) or (e == s and s >= a):
                idx[w] = i
                lo_c = s if s > a else a
                hi_c = e if e < b else b
                overlap[w] = hi_c - lo_c if hi_c > lo_c else 0
                w += 1
                if lo_c < cur:
                    lo_c = cur
                if hi_c > lo_c:
                    cov += hi_c - lo_c
                    cur = hi_c
        covered[k] = cov
        if grid_n > 0:
            first = offsets[k]
            last = offsets[k + 1]
            m = first
            for gi in range(grid_n):
                g = a + (gi * length) // grid_n
                while m < last and starts[idx[m]] <= g:
                    m += 1
                r = m - 1
                while r >= first:
                    i = idx[r]
                    if ends[i] > g and ends[i] > starts[i]:
                        break
                    r -= 1
                if r >= first:
                    i = idx[r]
                    for c in range(d):
                        grid[k, gi, c] = values[i, c]
                    mask[k, gi] = True
    return offsets, idx, overlap, covered, grid, mask


@njit(cache=True, nogil=True)
def _is_sorted(times):  # pragma: no cover - compiled
    for i in range(1, times.shape[0]):
        if times[i] < times[i - 1]:
            return i
    return -1


# --------------------------------------------------------------------------- warm-up

_warm_lock = threading.Lock()
_warm = False


def warmup() -> None:
    """Compile (or load from numba's on-disk cache) every kernel for the dtypes used.

    Called when a :class:`~streamline.sync.Synchronizer` is built; cheap after the
    first call in a process (a flag check). With numba's cache warm the first
    call takes tens of milliseconds; a cold cache compiles for a few seconds, at
    start-up rather than on the first live window.
    """
    global _warm
    if _warm:
        return
    with _warm_lock:
        if _warm:
            return
        t = np.array([0, 5, 10], np.int64)
        e = np.array([3, 8, 12], np.int64)
        v = np.zeros((3, 2), np.float32)
        w = np.array([0], np.int64)
        _is_sorted(t)
        _ranges(t, w, np.int64(10))
        for mode in (MODE_HOLD, MODE_NEAREST, MODE_LINEAR):
            _points_batch(t, v, w, np.int64(10), np.int64(4), np.int64(4), np.int64(mode))
        _intervals_batch(t, e, v, w, np.int64(10), np.int64(4))
        _warm = True


# --------------------------------------------------------------------------- checked wrappers


def check_times(times_ns: Any, name: str) -> np.ndarray:
    """Validate a 1-D array of int ns times (any order) and return it as int64.

    Raises:
        TimestampError: not 1-D, NaN or infinite, float or otherwise non-integer
            values, or a magnitude of 2**61 ns (73 years) or more.
    """
    arr = np.asarray(times_ns)
    if arr.ndim != 1:
        raise TimestampError(f"{name} must be a 1-D array of int nanoseconds, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise TimestampError(f"{name} contains NaN or infinite times")
        raise TimestampError(
            f"{name} must hold integer nanoseconds, got {arr.dtype}; convert with "
            "streamline.timeline.seconds_to_ns or np.round(x).astype(np.int64)"
        )
    if arr.dtype.kind not in "iu" or arr.dtype == np.uint64:
        raise TimestampError(f"{name} must hold integer nanoseconds, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if (arr.min() <= -TIME_LIMIT_NS or arr.max() >= TIME_LIMIT_NS):
        raise TimestampError(f"{name} holds a time beyond +-2**61 ns (73 years); times are session ns")
    return arr


def check_sorted(times: np.ndarray, name: str) -> None:
    """Raise TimestampError naming the first position where ``times`` decreases."""
    bad = int(_is_sorted(times))
    if bad >= 0:
        raise TimestampError(
            f"{name} must be non-decreasing: element {bad} ({int(times[bad])} ns) is before "
            f"element {bad - 1} ({int(times[bad - 1])} ns)"
        )


def check_values(values: Any, n: int, name: str) -> np.ndarray:
    """Validate value rows: (n, d) finite-or-not float-like, returned as C-contiguous float32.

    Raises:
        ConfigError: wrong shape or a non-numeric dtype.
    """
    if values is None:
        return np.zeros((n, 0), np.float32)
    arr = np.asarray(values)
    if arr.ndim == 1 and n == arr.shape[0]:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ConfigError(f"{name} must have shape (n, d) with n={n}, got {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise ConfigError(f"{name} must be numeric, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_windows(win_starts_ns: Any, length_ns: int) -> tuple[np.ndarray, int]:
    starts = check_times(win_starts_ns, "win_starts_ns")
    check_sorted(starts, "win_starts_ns")
    length = int(length_ns)
    if length <= 0 or length >= TIME_LIMIT_NS:
        raise ConfigError(f"length_ns must be in (0, 2**61), got {length_ns}")
    return starts, length


def _check_grid(grid_n: int, length: int) -> int:
    grid_n = int(grid_n)
    if grid_n < 0:
        raise ConfigError(f"grid_n must be >= 0, got {grid_n}")
    if grid_n * length >= 2**62:
        raise ConfigError(f"grid_n x length_ns too large ({grid_n} x {length})")
    return grid_n


def window_ranges(times_ns: Any, win_starts_ns: Any, length_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Index ranges of sorted point times inside windows ``[s, s + length_ns)``.

    Args:
        times_ns: (n,) int ns, non-decreasing.
        win_starts_ns: (K,) int ns window starts, non-decreasing.
        length_ns: window length, int ns > 0.

    Returns:
        ``(lo, hi)``, two (K,) int64 arrays: window k holds ``times_ns[lo[k]:hi[k]]``.

    Raises:
        TimestampError: times not integer, NaN, or decreasing.
        ConfigError: ``length_ns <= 0``.
    """
    times = check_times(times_ns, "times_ns")
    check_sorted(times, "times_ns")
    starts, length = _check_windows(win_starts_ns, length_ns)
    return _ranges(times, starts, np.int64(length))


def assemble_points(
    times_ns: Any,
    values: Any,
    win_starts_ns: Any,
    *,
    length_ns: int,
    max_age_ns: int,
    grid_n: int = 0,
    mode: str = "hold",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Assemble windows over one stream of points (the synchronizer's hot path).

    Args:
        times_ns: (n,) int ns point times, non-decreasing.
        values: (n, d) float values, or None (d = 0).
        win_starts_ns: (K,) window starts, int ns, non-decreasing.
        length_ns: window length, int ns > 0.
        max_age_ns: how long a point stays valid (coverage and grid), int ns >= 0.
        grid_n: grid points per window (0: no grid).
        mode: ``"hold"``, ``"nearest"`` or ``"linear"``.

    Returns:
        ``(lo, hi, covered_ns, grid, mask)``: (K,) int64 item ranges, (K,) int64
        covered nanoseconds, (K, grid_n, d) float32 grid values and (K, grid_n) bool mask.

    Raises:
        TimestampError: times not integer, NaN, or decreasing.
        ConfigError: bad length, age, grid size, mode or value shape.
    """
    times = check_times(times_ns, "times_ns")
    check_sorted(times, "times_ns")
    vals = check_values(values, times.shape[0], "values")
    starts, length = _check_windows(win_starts_ns, length_ns)
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    max_age = int(max_age_ns)
    if max_age < 0 or max_age > INFINITE_AGE_NS:
        raise ConfigError(f"max_age_ns must be in [0, 2**61], got {max_age_ns}")
    grid = _check_grid(grid_n, length)
    return _points_batch(
        times, vals, starts, np.int64(length), np.int64(max_age), np.int64(grid), np.int64(MODES[mode])
    )


def assemble_intervals(
    start_ns: Any,
    end_ns: Any,
    values: Any,
    win_starts_ns: Any,
    *,
    length_ns: int,
    grid_n: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Assemble windows over one stream of intervals ``[start, end)``.

    Args:
        start_ns: (n,) int ns interval starts, non-decreasing.
        end_ns: (n,) int ns interval ends, ``end >= start``.
        values: (n, d) float values, or None.
        win_starts_ns: (K,) window starts, int ns, non-decreasing.
        length_ns: window length, int ns > 0.
        grid_n: grid points per window (0: no grid).

    Returns:
        ``(offsets, idx, overlap_ns, covered_ns, grid, mask)``: window k holds the
        intervals ``idx[offsets[k]:offsets[k+1]]`` with ``overlap_ns`` over the same
        slice; (K,) covered ns; (K, grid_n, d) float32 grid; (K, grid_n) bool mask.

    Raises:
        TimestampError: times not integer, NaN, starts decreasing, or an end before its start.
        ConfigError: bad length, grid size or value shape.
    """
    starts = check_times(start_ns, "start_ns")
    ends = check_times(end_ns, "end_ns")
    if ends.shape != starts.shape:
        raise TimestampError(f"end_ns has shape {ends.shape}, start_ns {starts.shape}")
    check_sorted(starts, "start_ns")
    if starts.size and np.any(ends < starts):
        bad = int(np.argmax(ends < starts))
        raise TimestampError(f"interval {bad} ends ({int(ends[bad])} ns) before it starts ({int(starts[bad])} ns)")
    vals = check_values(values, starts.shape[0], "values")
    wins, length = _check_windows(win_starts_ns, length_ns)
    grid = _check_grid(grid_n, length)
    return _intervals_batch(starts, ends, vals, wins, np.int64(length), np.int64(grid))
