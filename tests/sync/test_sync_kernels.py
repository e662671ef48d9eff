"""The numba kernels against the naive reference, on hand-picked and random inputs.

Every test here is marked ``jit``: the Makefile runs them again with
``NUMBA_DISABLE_JIT=1`` so that the kernels' Python bodies are exercised too.

Timeline of the hand-picked point case (length 10, hop 5, max_age 3)::

    t:      0    2        7 9 10      15      20
    items:  |    *        * *  *       *
    win 0:  [--------------------)                 items 2, 7, 9
    win 1:            [--------------------)       items 7, 9, 10, 15 (carry-in: 2)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamline.errors import ConfigError, TimestampError
from streamline.sync import _kernels as K

from .helpers import NO_JIT, examples
from .naive import naive_intervals, naive_points, naive_ranges

pytestmark = pytest.mark.jit


def test_points_hand_picked_hold_coverage_and_grid():
    times = np.array([2, 7, 9, 10, 15], np.int64)
    values = np.array([[1], [2], [3], [4], [5]], np.float32)
    lo, hi, cov, grid, mask = K.assemble_points(
        times, values, [0, 5], length_ns=10, max_age_ns=3, grid_n=5, mode="hold"
    )
    assert lo.tolist() == [0, 1] and hi.tolist() == [3, 4]
    # window 0 [0,10): covers [2,5) [7,10) (9's cover merges) -> 3 + 3 = 6
    # window 1 [5,15): carry-in 2 covers [5,5) nothing; [7,10) [10,13) -> 6
    assert cov.tolist() == [6, 6]
    # window 0 grid 0,2,4,6,8: hold -> -, 1, 1, - (age 4 > 3), 2
    assert mask[0].tolist() == [False, True, True, False, True]
    assert grid[0, :, 0].tolist() == [0, 1, 1, 0, 2]
    # window 1 grid 5,7,9,11,13: the carry-in 2 is exactly max_age old at 5 (valid);
    # 7->2; 9->3; 11->4; 13->4 (age 3)
    assert mask[1].all()
    assert grid[1, :, 0].tolist() == [1, 2, 3, 4, 4]


def test_points_nearest_and_linear_by_hand():
    times = np.array([0, 10], np.int64)
    values = np.array([[0.0], [10.0]], np.float32)
    _, _, _, near, nmask = K.assemble_points(times, values, [0], length_ns=20, max_age_ns=10, grid_n=4, mode="nearest")
    # grid 0, 5, 10, 15: tie at 5 goes to the earlier item
    assert near[0, :, 0].tolist() == [0, 0, 10, 10] and nmask[0].all()
    _, _, _, lin, lmask = K.assemble_points(times, values, [0], length_ns=20, max_age_ns=10, grid_n=4, mode="linear")
    assert lin[0, :, 0].tolist() == [0, 5, 10, 10] and lmask[0].all()


def test_equal_times_last_pushed_wins():
    # items at 5, 5, 8, 8 (values 1, 2, 3, 4); window [3, 9), grid 3, 5, 7, max_age 5
    times = np.array([5, 5, 8, 8], np.int64)
    values = np.array([[1], [2], [3], [4]], np.float32)
    run = lambda mode: K.assemble_points(times, values, [3], length_ns=6, max_age_ns=5, grid_n=3, mode=mode)  # noqa: E731
    _, _, _, g, m = run("hold")
    assert m[0].tolist() == [False, True, True] and g[0, :, 0].tolist() == [0, 2, 2]
    _, _, _, g, m = run("nearest")
    assert m[0].all() and g[0, :, 0].tolist() == [2, 2, 4]
    _, _, _, g, m = run("linear")
    assert m[0].tolist() == [False, True, True]
    assert g[0, 1, 0] == 2 and g[0, 2, 0] == np.float32(2.0 + (7 - 5) / (8 - 5) * (4.0 - 2.0))


def test_intervals_hand_picked():
    # a long interval, a zero-length one on a boundary, one ending on a boundary
    starts = np.array([0, 4, 5, 12], np.int64)
    ends = np.array([30, 10, 5, 15], np.int64)
    values = np.array([[1], [2], [3], [4]], np.float32)
    off, idx, ov, cov, grid, mask = K.assemble_intervals(starts, ends, values, [0, 5, 10], length_ns=10, grid_n=2)
    assert idx[off[0]:off[1]].tolist() == [0, 1, 2]       # [0,10): all but 12
    assert ov[off[0]:off[1]].tolist() == [10, 6, 0]
    assert idx[off[1]:off[2]].tolist() == [0, 1, 2, 3]    # [5,15): zero-length at 5 is in
    assert ov[off[1]:off[2]].tolist() == [10, 5, 0, 3]
    assert idx[off[2]:off[3]].tolist() == [0, 3]          # [10,20): [4,10) ends on the boundary
    assert cov.tolist() == [10, 10, 10]
    # grid of window 1 at 5, 10: at 5 the latest start covering is [4,10) (the zero-length
    # covers nothing); at 10 only [0,30) covers ([12,15) starts later)
    assert grid[1, :, 0].tolist() == [2, 1] and mask[1].all()


def test_empty_inputs_give_empty_windows():
    lo, hi, cov, grid, mask = K.assemble_points(np.zeros(0, np.int64), None, [0, 5], length_ns=5, max_age_ns=3, grid_n=2)
    assert lo.tolist() == [0, 0] and cov.tolist() == [0, 0] and not mask.any() and grid.shape == (2, 2, 0)
    off, idx, ov, cov, grid, mask = K.assemble_intervals([], [], None, [0], length_ns=5, grid_n=0)
    assert off.tolist() == [0, 0] and idx.size == 0 and cov.tolist() == [0]


def test_wrappers_raise_clear_errors():
    with pytest.raises(TimestampError, match="NaN"):
        K.window_ranges(np.array([0.0, np.nan]), [0], 5)
    with pytest.raises(TimestampError, match="integer nanoseconds"):
        K.window_ranges(np.array([0.0, 1.0]), [0], 5)
    with pytest.raises(TimestampError, match="non-decreasing: element 2"):
        K.window_ranges(np.array([0, 5, 3]), [0], 5)
    with pytest.raises(TimestampError, match="win_starts_ns must be non-decreasing"):
        K.window_ranges(np.array([0, 5]), [5, 0], 5)
    with pytest.raises(ConfigError, match="length_ns"):
        K.window_ranges(np.array([0, 5]), [0], 0)
    with pytest.raises(ConfigError, match="mode"):
        K.assemble_points([0], None, [0], length_ns=5, max_age_ns=1, mode="cubic")
    with pytest.raises(ConfigError, match="max_age_ns"):
        K.assemble_points([0], None, [0], length_ns=5, max_age_ns=-1)
    with pytest.raises(ConfigError, match=r"shape \(n, d\)"):
        K.assemble_points([0, 1], np.zeros((3, 1)), [0], length_ns=5, max_age_ns=1)
    with pytest.raises(TimestampError, match="ends .* before it starts"):
        K.assemble_intervals([0, 5], [3, 4], None, [0], length_ns=5)
    with pytest.raises(TimestampError, match="2\\*\\*61"):
        K.window_ranges(np.array([2**62]), [0], 5)
    with pytest.raises(TimestampError, match="1-D"):
        K.window_ranges(np.zeros((2, 2), np.int64), [0], 5)


@st.composite
def point_case(draw):
    n = draw(st.integers(0, 25))
    times = sorted(draw(st.lists(st.integers(-10, 60), min_size=n, max_size=n)))
    d = draw(st.integers(0, 2))
    values = np.array(draw(st.lists(st.lists(st.floats(-100, 100, width=32), min_size=d, max_size=d),
                                    min_size=n, max_size=n)), np.float32).reshape(n, d)
    length = draw(st.integers(1, 20))
    hop = draw(st.integers(1, length))
    first = draw(st.integers(-15, 30))
    k = draw(st.integers(1, 6))
    starts = [first + i * hop for i in range(k)]
    max_age = draw(st.sampled_from([0, 1, 3, 7, 40, K.INFINITE_AGE_NS]))
    grid_n = draw(st.integers(0, 6)) if d else 0
    mode = draw(st.sampled_from(["hold", "nearest", "linear"]))
    return np.array(times, np.int64), values, starts, length, max_age, grid_n, mode


@given(point_case())
@examples(400)
def test_points_match_naive(case):
    times, values, starts, length, max_age, grid_n, mode = case
    got = K.assemble_points(times, values, starts, length_ns=length, max_age_ns=max_age, grid_n=grid_n, mode=mode)
    want = naive_points(times, values, starts, length_ns=length, max_age_ns=max_age, grid_n=grid_n, mode=mode)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    lo, hi = K.window_ranges(times, starts, length)
    nlo, nhi = naive_ranges(times.tolist(), starts, length)
    assert lo.tolist() == nlo.tolist() and hi.tolist() == nhi.tolist()


@st.composite
def interval_case(draw):
    n = draw(st.integers(0, 15))
    starts = sorted(draw(st.lists(st.integers(-10, 50), min_size=n, max_size=n)))
    spans = draw(st.lists(st.sampled_from([0, 0, 1, 2, 5, 9, 30, 80]), min_size=n, max_size=n))
    ends = [s + d for s, d in zip(starts, spans)]
    d = draw(st.integers(0, 2))
    values = np.array(draw(st.lists(st.lists(st.floats(-100, 100, width=32), min_size=d, max_size=d),
                                    min_size=n, max_size=n)), np.float32).reshape(n, d)
    length = draw(st.integers(1, 20))
    hop = draw(st.integers(1, length))
    first = draw(st.integers(-15, 30))
    k = draw(st.integers(1, 6))
    wins = [first + i * hop for i in range(k)]
    grid_n = draw(st.integers(0, 5)) if d else 0
    return np.array(starts, np.int64), np.array(ends, np.int64), values, wins, length, grid_n


@given(interval_case())
@examples(400)
def test_intervals_match_naive(case):
    starts, ends, values, wins, length, grid_n = case
    got = K.assemble_intervals(starts, ends, values, wins, length_ns=length, grid_n=grid_n)
    want = naive_intervals(starts, ends, values, wins, length_ns=length, grid_n=grid_n)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_building_a_synchronizer_compiles_every_kernel_at_start_up():
    from streamline.sync import Synchronizer, WindowSpec

    Synchronizer(WindowSpec(1.0, 0.5), ["x"])
    assert K._warm
    if not NO_JIT:  # compiled for exactly the signatures the synchronizer uses
        for kernel in (K._ranges, K._points_batch, K._intervals_batch, K._is_sorted):
            assert len(kernel.signatures) == 1, kernel
