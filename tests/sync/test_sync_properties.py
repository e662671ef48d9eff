"""Property tests: the Synchronizer gives the naive reference's windows and late items.

Random scenarios: 1-3 streams of points or intervals (fed as objects or as
arrays), with values, grids, ages, in-order items, late items and explicit
watermarks; some streams end. Then

* sequentially, with lateness budgets and a fake clock, step by step, the two
  give the same windows and late items after every operation;
* without budgets, any interleaving across streams, any chunking into
  ``push_array`` calls, any placement of polls and any set of threads
  delivering the streams give the same windows as the reference's single run.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from streamline.sync import StreamSpec, Synchronizer, WindowSpec
from streamline.sync._kernels import INFINITE_AGE_NS

from .helpers import Iv, Pt, assert_same_windows, examples, late_key, naive_late_key, row, value_of
from .naive import NaiveSync

NS = 1e-9

pytestmark = pytest.mark.jit  # rerun with NUMBA_DISABLE_JIT=1 (fewer examples)


@st.composite
def stream_events(draw, interval: bool, max_events: int) -> list[tuple]:
    """One stream's own sequence: ('item', s, e, v), ('wm', t)."""
    cur = draw(st.integers(-8, 6))
    out = []
    for _ in range(draw(st.integers(0, max_events))):
        op = draw(st.sampled_from(["item", "item", "item", "item", "late", "wm"]))
        v = float(draw(st.integers(-4, 4)))
        if op == "wm":
            out.append(("wm", cur + draw(st.integers(-2, 7))))
            continue
        if op == "item":
            cur += draw(st.sampled_from([0, 1, 1, 2, 3, 5]))
            s = cur
        else:
            s = cur - draw(st.integers(1, 6))
        e = s + draw(st.sampled_from([0, 1, 2, 4, 9, 25])) if interval else s
        out.append(("item", s, e, v))
    return out


@st.composite
def scenario(draw, budgets: bool, max_events: int = 14):
    hop = draw(st.integers(1, 6))
    length = draw(st.integers(hop, 3 * hop + 2))
    start = draw(st.sampled_from([-4, 0, 3]))
    streams = []
    for j in range(draw(st.integers(1, 3))):
        interval = draw(st.booleans())
        d = draw(st.integers(0, 2))
        streams.append(dict(
            name=f"s{j}",
            interval=interval,
            d=d,
            grid_n=draw(st.integers(0, 4)) if d else 0,
            mode="hold" if interval else draw(st.sampled_from(["hold", "nearest", "linear"])),
            max_age=draw(st.sampled_from([0, 2, 5, None])),
            budget=draw(st.sampled_from([None, 0, 3, 8])) if budgets else None,
            fed=draw(st.sampled_from(["items", "arrays"])),
            events=draw(stream_events(interval, max_events)),
            ends=draw(st.booleans()),
        ))
    return dict(hop=hop, length=length, start=start, streams=streams)


def build(sc, clock=None):
    """The Synchronizer, the NaiveSync, and each stream's events as concrete items."""
    specs, nspecs = [], []
    for s in sc["streams"]:
        d = s["d"]
        specs.append(StreamSpec(
            s["name"],
            kind="interval" if s["interval"] else "point",
            lateness_budget_s=None if s["budget"] is None else s["budget"] * NS,
            value_fn=value_of(d) if (d and s["fed"] == "items") else None,
            dim=d or None,
            grid_hz=(s["grid_n"] / (sc["length"] * NS)) if s["grid_n"] else None,
            resample=s["mode"],
            max_age_s=None if s["max_age"] is None else s["max_age"] * NS,
        ))
        nspecs.append(dict(name=s["name"], interval=s["interval"], budget=s["budget"],
                           max_age=INFINITE_AGE_NS if s["max_age"] is None else s["max_age"],
                           grid_n=s["grid_n"], mode=s["mode"], d=d))
    window = WindowSpec(sc["length"] * NS, sc["hop"] * NS, sc["start"] * NS)
    assert (window.length_ns, window.hop_ns, window.start_ns) == (sc["length"], sc["hop"], sc["start"])
    real = Synchronizer(window, specs, clock=clock)
    naive = NaiveSync(start=sc["start"], hop=sc["hop"], length=sc["length"], streams=nspecs)
    ops = {}
    for s in sc["streams"]:
        seq = []
        for ev in s["events"]:
            if ev[0] == "wm":
                seq.append(ev)
            else:
                _, a, b, v = ev
                obj = (Iv(a, b, v) if s["interval"] else Pt(a, v)) if s["fed"] == "items" else None
                seq.append(("item", a, b, v, obj))
        ops[s["name"]] = seq
    return real, naive, ops


def naive_apply(naive, sc, name, op):
    s = next(x for x in sc["streams"] if x["name"] == name)
    if op[0] == "wm":
        naive.watermark(name, op[1])
    else:
        _, a, b, v, obj = op
        naive.push(name, a, b, row(v, s["d"]) if s["d"] else None, obj)


def real_apply_chunk(real, sc, name, chunk):
    """Apply a list of ops of one stream; consecutive array items go in one push_array call."""
    s = next(x for x in sc["streams"] if x["name"] == name)
    if chunk[0][0] == "wm":
        for op in chunk:
            real.advance_watermark(name, op[1])
        return
    if s["fed"] == "items":
        for op in chunk:
            real.push(name, op[4])
        return
    times = np.array([op[1] for op in chunk], np.int64)
    ends = np.array([op[2] for op in chunk], np.int64) if s["interval"] else None
    values = np.array([row(op[3], s["d"]) for op in chunk], np.float32).reshape(len(chunk), s["d"]) if s["d"] else None
    real.push_array(name, times, values, end_ns=ends)


def chunks_of(ops, cuts):
    """Split one stream's ops into runs: watermarks alone, items in non-decreasing runs, cut where asked."""
    out, cur = [], []
    for i, op in enumerate(ops):
        if cur and (op[0] != cur[-1][0] or op[0] == "wm" or (op[0] == "item" and op[1] < cur[-1][1]) or cuts[i]):
            out.append(cur)
            cur = []
        cur.append(op)
    if cur:
        out.append(cur)
    return out


@given(scenario(budgets=True), st.data())
@examples(700)
def test_step_by_step_with_budgets_matches_reference(sc, data):
    step_by_step(sc, data)


@given(scenario(budgets=True, max_events=250), st.data())
@examples(25)
def test_long_streams_step_by_step_match_reference(sc, data):
    """Hundreds of items per stream: buffer growth, compaction and eviction paths."""
    step_by_step(sc, data)


def step_by_step(sc, data):
    now = [0]
    real, naive, ops = build(sc, clock=lambda: now[0])
    names = [s["name"] for s in sc["streams"]]
    order = data.draw(st.permutations([n for n in names for _ in ops[n]]))
    pos = dict.fromkeys(names, 0)
    got, want = [], []
    for name in order:
        op = ops[name][pos[name]]
        pos[name] += 1
        real_apply_chunk(real, sc, name, [op])
        naive_apply(naive, sc, name, op)
        if data.draw(st.booleans()):
            now[0] += data.draw(st.integers(0, 4))
            got += real.poll()
            want += naive.poll(now[0])
            assert_same_windows(got, want)
    for s in sc["streams"]:
        if s["ends"]:
            real.end_stream(s["name"])
            naive.end(s["name"])
    now[0] += data.draw(st.integers(0, 10))
    got += real.poll()
    want += naive.poll(now[0])
    assert_same_windows(got, want)
    late = real.take_late()
    assert [late_key(x) for x in late] == [naive_late_key(x) for x in naive.late]
    event(f"windows: {min(len(want), 10) // 5 * 5}+")
    for reason in sorted({x.reason + ('+included' if x.included else '') for x in late}):
        event(f"late: {reason}")
    if any(not w.complete for w in got):
        event("some window incomplete")
    objs = [x.item for x in naive.late]
    stats = real.stats
    assert stats.windows == len(want)
    assert stats.late == len(objs)
    assert stats.incomplete_windows == sum(not all(sl.complete for sl in w.streams.values()) for w in want)


@given(scenario(budgets=False), st.data())
@examples(500)
def test_interleaving_chunking_and_polls_do_not_change_the_windows(sc, data):
    real, naive, ops = build(sc)
    names = [s["name"] for s in sc["streams"]]
    # the reference: one stream after the other, one poll at the end
    for name in names:
        for op in ops[name]:
            naive_apply(naive, sc, name, op)
    for s in sc["streams"]:
        if s["ends"]:
            naive.end(s["name"])
    want = naive.poll()
    # the Synchronizer: random chunks, random interleaving of the chunks, random polls
    chunked = {n: chunks_of(ops[n], data.draw(st.lists(st.booleans(), min_size=len(ops[n]), max_size=len(ops[n]))))
               for n in names}
    order = data.draw(st.permutations([n for n in names for _ in chunked[n]]))
    pos = dict.fromkeys(names, 0)
    got = []
    for name in order:
        real_apply_chunk(real, sc, name, chunked[name][pos[name]])
        pos[name] += 1
        if data.draw(st.booleans()):
            got += real.poll()
    for s in sc["streams"]:
        if s["ends"]:
            real.end_stream(s["name"])
    got += real.poll()
    assert_same_windows(got, want)
    late = real.take_late()
    for name in names:
        assert [late_key(x) for x in late if x.stream == name] == \
            [naive_late_key(x) for x in naive.late if x.stream == name]


@given(scenario(budgets=False, max_events=40), st.data())
@examples(120)
def test_threads_delivering_the_streams_do_not_change_the_windows(sc, data):
    real, naive, ops = build(sc)
    names = [s["name"] for s in sc["streams"]]
    for name in names:
        for op in ops[name]:
            naive_apply(naive, sc, name, op)
    for s in sc["streams"]:
        if s["ends"]:
            naive.end(s["name"])
    want = naive.poll()
    chunked = {n: chunks_of(ops[n], data.draw(st.lists(st.booleans(), min_size=len(ops[n]), max_size=len(ops[n]))))
               for n in names}
    got: list = []
    got_lock = threading.Lock()
    start = threading.Barrier(len(names) + 1)
    errors: list[BaseException] = []
    done = threading.Event()

    def feed(name: str) -> None:
        try:
            start.wait()
            for chunk in chunked[name]:
                real_apply_chunk(real, sc, name, chunk)
                with got_lock:
                    got.extend(real.poll())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def poller() -> None:
        start.wait()
        while not done.is_set():
            with got_lock:
                got.extend(real.poll())

    threads = [threading.Thread(target=feed, args=(n,)) for n in names]
    p = threading.Thread(target=poller)
    for t in threads + [p]:
        t.start()
    for t in threads:
        t.join(10)
    done.set()
    p.join(10)
    assert not errors
    for s in sc["streams"]:
        if s["ends"]:
            real.end_stream(s["name"])
    got += real.poll()
    assert_same_windows(got, want)
