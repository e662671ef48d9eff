"""The bounded hand-off operator: policies, ordering, errors and thread lifetime."""

from __future__ import annotations

import threading
import time

import pytest
import reactivex
from reactivex.subject import Subject

from streamline import ConfigError
from streamline.flow import Handoff, OverflowPolicy


def run(observable, timeout_s=10):
    items, errors, done = [], [], threading.Event()
    observable.subscribe(items.append, on_error=lambda e: (errors.append(e), done.set()), on_completed=done.set)
    assert done.wait(timeout_s)
    return items, errors


def test_block_policy_loses_nothing_and_keeps_order():
    h = Handoff(4, OverflowPolicy.BLOCK, name="t")
    items, errors = run(reactivex.from_iterable(range(5000)).pipe(h))
    assert items == list(range(5000)) and not errors
    assert h.stats.dropped == 0 and h.stats.put == 5000
    assert h.stats.max_depth <= 5


def test_stats_count_items_not_the_end_of_stream_markers():
    """Completion and errors travel through the queue too, but they are not items."""
    done = Handoff(4, OverflowPolicy.BLOCK, name="done")
    items, errors = run(reactivex.from_iterable(range(10)).pipe(done))
    assert items == list(range(10)) and not errors
    assert done.stats.put == done.stats.delivered == 10 and done.stats.depth == 0

    def two_then_fail(observer, scheduler=None):
        observer.on_next("a")
        observer.on_next("b")
        observer.on_error(ValueError("bad input"))

    failed = Handoff(4, OverflowPolicy.BLOCK, name="failed")
    items, errors = run(reactivex.create(two_then_fail).pipe(failed))
    assert items == ["a", "b"] and isinstance(errors[0], ValueError)
    assert failed.stats.put == failed.stats.delivered == 2


def test_items_are_delivered_on_the_handoff_thread():
    names = []
    h = Handoff(2, OverflowPolicy.BLOCK, name="worker")
    done = threading.Event()
    reactivex.from_iterable([1, 2]).pipe(h).subscribe(lambda _: names.append(threading.current_thread().name),
                                                      on_completed=done.set)
    assert done.wait(5)
    assert set(names) == {"streamline-worker"}


def test_keep_latest_drops_the_oldest_and_counts():
    h = Handoff(1, OverflowPolicy.KEEP_LATEST, name="latest")
    subject: Subject[int] = Subject()
    seen, done = [], threading.Event()
    gate = threading.Event()

    def slow(x):
        gate.wait(5)
        seen.append(x)

    subject.pipe(h).subscribe(slow, on_completed=done.set)
    for i in range(100):
        subject.on_next(i)
    gate.set()
    subject.on_completed()
    assert done.wait(5)
    assert seen[-1] == 99
    assert h.stats.dropped == 100 - len(seen)
    assert h.stats.dropped >= 90


def test_upstream_error_reaches_the_subscriber_after_queued_items():
    def boom(observer, scheduler=None):
        observer.on_next(1)
        observer.on_error(ValueError("bad input"))
    items, errors = run(reactivex.create(boom).pipe(Handoff(8, OverflowPolicy.BLOCK)))
    assert items == [1] and isinstance(errors[0], ValueError)


def test_a_raising_subscriber_gets_on_error_and_the_thread_ends():
    before = set(threading.enumerate())
    errors, done = [], threading.Event()

    def bad(_):
        raise RuntimeError("consumer bug")

    reactivex.from_iterable(range(10)).pipe(Handoff(2, OverflowPolicy.BLOCK)).subscribe(
        bad, on_error=lambda e: (errors.append(e), done.set()))
    assert done.wait(5)
    assert isinstance(errors[0], RuntimeError)
    time.sleep(0.05)
    assert set(threading.enumerate()) <= before


def test_dispose_stops_the_thread():
    before = set(threading.enumerate())
    subject: Subject[int] = Subject()
    disposable = subject.pipe(Handoff(2, OverflowPolicy.BLOCK)).subscribe(lambda _: None)
    subject.on_next(1)
    disposable.dispose()
    assert set(threading.enumerate()) <= before


def test_the_bound_is_a_decision_for_the_caller():
    with pytest.raises(ConfigError):
        Handoff(0, OverflowPolicy.BLOCK)
    with pytest.raises(ConfigError):
        Handoff(3, "block")  # type: ignore[arg-type]


class _Summer:
    """A tiny engine: emits running sums of pairs, fails on negative input."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.closed = 0

    def push(self, x: int) -> list[int]:
        if x < 0:
            raise ValueError(f"negative input {x}")
        self.pending.append(x)
        if len(self.pending) == 2:
            out, self.pending = [sum(self.pending)], []
            return out
        return []

    def finish(self) -> list[int]:
        return [sum(self.pending)] if self.pending else []

    def close(self) -> None:
        self.closed += 1


def _summer_op(engines):
    from streamline.flow import engine_operator

    def make():
        engines.append(_Summer())
        return engines[-1]

    return engine_operator(make, lambda e, x: e.push(x), lambda e: e.finish())


def test_engine_operator_flushes_at_completion_and_closes_once():
    engines = []
    items, errors = run(reactivex.from_iterable([1, 2, 3, 4, 5]).pipe(_summer_op(engines)))
    assert items == [3, 7, 5] and not errors
    assert engines[0].closed == 1


def test_engine_operator_error_ends_the_stream_and_disposes_upstream():
    engines, pushed = [], []
    subject: Subject[int] = Subject()
    items, errors = [], []
    subject.pipe(_summer_op(engines)).subscribe(items.append, on_error=errors.append)
    for x in (1, 2, -1, 4):
        pushed.append(x)
        subject.on_next(x)
    assert items == [3]
    assert isinstance(errors[0], ValueError) and "negative input -1" in str(errors[0])
    assert engines[0].closed == 1
    assert not subject.observers  # the upstream subscription was disposed


def test_engine_operator_reports_a_failing_constructor():
    from streamline.flow import engine_operator

    def make():
        raise ImportError("install the extra")

    items, errors = run(reactivex.from_iterable([1]).pipe(engine_operator(make, lambda e, x: [x], lambda e: [])))
    assert not items and isinstance(errors[0], ImportError)
