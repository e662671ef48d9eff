"""Shared pieces of the synchronizer tests: tiny item types, comparisons, settings."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, settings

from streamline.sync import AlignedWindow, LateItem

NO_JIT = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"


def examples(n: int) -> settings:
    """Hypothesis settings sized for 2 CI cores (fewer examples when the JIT is off)."""
    return settings(
        max_examples=max(5, n // 4) if NO_JIT else n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=False,
    )


@dataclass(frozen=True, slots=True)
class Pt:
    """A point item (like a VideoFrame) with one feature value."""

    pts_ns: int
    v: float = 0.0


@dataclass(frozen=True, slots=True)
class Iv:
    """An interval item (like a Word) with one feature value."""

    start_ns: int
    end_ns: int
    v: float = 0.0


def value_of(d: int):
    """value_fn giving d features from an item's v: (v, v/2 + 1, ...)."""
    def fn(item):
        return [item.v / (c + 1) + c for c in range(d)]
    return fn


def row(v: float, d: int) -> tuple:
    return tuple(np.float32(x) for x in value_of(d)(Pt(0, v)))


def assert_same_windows(real: list[AlignedWindow], naive: list) -> None:
    """Exact comparison of the Synchronizer's windows against NaiveSync's."""
    assert [w.index for w in real] == [w.index for w in naive], "window indices differ"
    for rw, nw in zip(real, naive):
        assert (rw.start_ns, rw.end_ns) == (nw.start_ns, nw.end_ns)
        assert list(rw.streams) == list(nw.streams)
        length = rw.end_ns - rw.start_ns
        for name, rs in rw.streams.items():
            ns = nw.streams[name]
            where = f"window {rw.index} stream {name}"
            assert rs.count == len(ns.times), where
            assert rs.times_ns.dtype == np.int64
            assert rs.times_ns.tolist() == ns.times, where
            if ns.ends is not None:
                assert rs.end_ns.tolist() == ns.ends, where
                assert rs.overlap_ns.tolist() == ns.overlaps, where
            else:
                assert rs.end_ns is None and rs.overlap_ns is None, where
            if ns.items and ns.items[0] is None:  # fed with arrays: no objects
                assert rs.items == (), where
            else:
                assert len(rs.items) == len(ns.items), where
                assert all(a is b for a, b in zip(rs.items, ns.items)), where
            if ns.values is not None:
                assert rs.values is not None and rs.values.dtype == np.float32, where
                assert rs.values.shape[0] == len(ns.values), where
                if ns.values:
                    want = np.array([list(v) for v in ns.values], np.float32)
                    np.testing.assert_array_equal(rs.values, want, err_msg=where)
            else:
                assert rs.values is None, where
            assert rs.coverage == ns.covered_ns / length, where
            assert 0.0 <= rs.coverage <= 1.0
            assert rs.complete == ns.complete, where
            if ns.grid is not None:
                np.testing.assert_array_equal(rs.grid_mask, ns.mask, err_msg=where)
                np.testing.assert_array_equal(rs.grid_values, ns.grid, err_msg=where)
                assert rs.grid_times_ns.tolist() == [rw.start_ns + (i * length) // len(ns.mask)
                                                    for i in range(len(ns.mask))]
            else:
                assert rs.grid_values is None and rs.grid_mask is None, where


def late_key(item: LateItem) -> tuple:
    return (item.stream, item.start_ns, item.end_ns, item.reason, list(item.missed_windows), item.included)


def naive_late_key(item) -> tuple:
    return (item.stream, item.start_ns, item.end_ns, item.reason, item.missed, item.included)
