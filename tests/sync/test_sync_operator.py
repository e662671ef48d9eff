"""The reactive operator: synchronize({name: Observable}) -> windows, late items, stats."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

from streamline.errors import ConfigError, TimestampError
from streamline.sync import StreamSpec, Synchronizer, Watermark, WindowSpec, synchronize

from .helpers import Iv, Pt

S = 1_000_000_000
MS = 1_000_000


class Sink:
    def __init__(self) -> None:
        self.items: list = []
        self.error: BaseException | None = None
        self.completed = threading.Event()
        self.threads: set[str] = set()

    def on_next(self, x) -> None:
        self.items.append(x)
        self.threads.add(threading.current_thread().name)

    def on_error(self, e) -> None:
        self.error = e
        self.completed.set()

    def on_completed(self) -> None:
        self.completed.set()


def poll_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "streamline-sync-poll"]


def test_windows_come_out_as_watermarks_pass_and_the_output_completes_after_the_inputs():
    video, words = Subject(), Subject()
    synced = synchronize({"video": video, "words": words}, length_s=2.0, hop_s=1.0)
    late, out = Sink(), Sink()
    synced.late.subscribe(late.on_next, late.on_error, late.on_completed)
    synced.windows.subscribe(out.on_next, out.on_error, out.on_completed)
    for k in range(35):
        video.on_next(Pt(k * 100 * MS))                 # 0 .. 3.4 s
    assert out.items == []
    words.on_next(Iv(int(0.5 * S), int(1.2 * S)))
    words.on_next(Watermark(3 * S))
    assert [w.index for w in out.items] == [0, 1]     # both watermarks are past 3 s
    words.on_next(Iv(int(0.7 * S), S))                 # behind the words watermark: late
    assert [(x.stream, x.reason) for x in late.items] == [("words", "watermark")]
    video.on_completed()
    assert not out.completed.is_set()
    words.on_completed()
    assert out.completed.is_set() and out.error is None and late.completed.is_set()
    # flushed: windows starting before 3.4 s (last frame) -> 2, 3
    assert [w.index for w in out.items] == [0, 1, 2, 3]
    assert out.items[0]["words"].count == 1 and out.items[0]["video"].count == 20
    stats = synced.stats
    assert stats.windows == 4 and stats.late == 1 and stats.streams["video"].items == 35


def test_replaying_synchronous_sources_matches_the_push_api():
    frames = [Pt(k * 40 * MS, float(k)) for k in range(100)]          # 25 fps, 4 s
    words = [Iv(int(0.3 * S), int(0.8 * S)), Watermark(2 * S), Iv(int(2.5 * S), int(3.9 * S))]
    specs = [StreamSpec("video", value_fn=lambda p: [p.v], grid_hz=10, resample="nearest")]
    out = Sink()
    synchronize({"video": reactivex.from_iterable(frames), "words": reactivex.from_iterable(words)},
                length_s=2.0, hop_s=0.5, streams=specs).windows.subscribe(out.on_next, out.on_error, out.on_completed)
    assert out.completed.is_set() and out.error is None
    ref = Synchronizer(WindowSpec(2.0, 0.5), specs + [StreamSpec("words")])
    for f in frames:
        ref.push("video", f)
    for w in words:
        ref.push("words", w)
    ref.end_stream("video")
    ref.end_stream("words")
    want = ref.poll()
    assert [w.index for w in out.items] == [w.index for w in want] == list(range(8))
    for a, b in zip(out.items, want):
        assert a["video"].items == b["video"].items and a["words"].items == b["words"].items
        np.testing.assert_array_equal(a["video"].grid_values, b["video"].grid_values)


def test_an_input_error_fails_the_output_and_disposes_the_other_inputs():
    video, words = Subject(), Subject()
    synced = synchronize({"video": video, "words": words}, length_s=1.0, hop_s=1.0)
    out, late = Sink(), Sink()
    synced.late.subscribe(late.on_next, late.on_error)
    synced.windows.subscribe(out.on_next, out.on_error, out.on_completed)
    video.on_next(Pt(0))
    boom = OSError("camera unplugged")
    video.on_error(boom)
    assert out.error is boom and late.error is boom
    assert not words.observers                          # the other input was disposed
    words.on_next(Pt(5 * S))                            # ignored
    assert out.items == []


def test_a_bad_item_or_a_failing_value_fn_fails_the_output():
    src = Subject()
    out = Sink()
    synchronize({"v": src}, length_s=1.0, hop_s=0.5).windows.subscribe(out.on_next, out.on_error)
    src.on_next(Pt(0.25))
    assert isinstance(out.error, TimestampError) and "stream 'v'" in str(out.error)
    assert not src.observers

    def extractor(item):
        raise ValueError("bad frame")

    src2 = Subject()
    out2 = Sink()
    synchronize({"v": src2}, length_s=1.0, hop_s=0.5, streams=[StreamSpec("v", value_fn=extractor)]) \
        .windows.subscribe(out2.on_next, out2.on_error)
    src2.on_next(Pt(0))
    assert isinstance(out2.error, ValueError) and str(out2.error) == "bad frame"


def test_a_failing_subscriber_disposes_the_inputs():
    src = Subject()

    def explode(window):
        raise RuntimeError("downstream bug")

    errors = []
    synchronize({"v": src}, length_s=1.0, hop_s=1.0).windows.subscribe(explode, errors.append)
    for k in range(5):
        src.on_next(Pt(k * S // 2))
    assert not src.observers


def test_config_errors_come_at_call_time():
    with pytest.raises(ConfigError, match="non-empty mapping"):
        synchronize({}, length_s=1.0, hop_s=1.0)
    with pytest.raises(ConfigError, match="not an Observable"):
        synchronize({"v": [1, 2]}, length_s=1.0, hop_s=1.0)
    with pytest.raises(ConfigError, match="unknown input"):
        synchronize({"v": Subject()}, length_s=1.0, hop_s=1.0, streams=[StreamSpec("w")])
    with pytest.raises(ConfigError, match="hop_s"):
        synchronize({"v": Subject()}, length_s=1.0, hop_s=2.0)
    with pytest.raises(ConfigError, match="poll_interval_s"):
        synchronize({"v": Subject()}, length_s=1.0, hop_s=1.0, poll_interval_s=0)


def test_lateness_budget_in_virtual_time():
    #   virtual s:  0    1    2    3    4    5    6
    #   video:      frames 0.0 .. 5.9 s, each arriving 50 ms after its pts
    #   words:      silent (budget 1 s)
    #   win 0 [0,2) is due when the clock passes 2 + 1 = 3 s; win 1 at 4 s; ...
    sched = TestScheduler()
    frames = [ReactiveTest.on_next(k / 10 + 0.05, Pt(k * 100 * MS)) for k in range(60)]
    video = sched.create_hot_observable(*frames, ReactiveTest.on_completed(6.5))
    words = sched.create_hot_observable(
        ReactiveTest.on_next(3.5, Iv(int(1.5 * S), int(2.2 * S))),     # after window 0 went out
        ReactiveTest.on_completed(7.0),
    )
    synced = synchronize({"video": video, "words": words}, length_s=2.0, hop_s=1.0,
                         streams=[StreamSpec("words", lateness_budget_s=1.0)], scheduler=sched)
    got: list[tuple[float, object]] = []
    late: list = []
    synced.late.subscribe(late.append)
    synced.windows.subscribe(lambda w: got.append((sched.clock, w)))
    sched.advance_to(10.0)
    times = {w.index: t for t, w in got}
    assert 3.0 <= times[0] < 3.06 and 4.0 <= times[1] < 4.06
    w0, w1 = got[0][1], got[1][1]
    assert not w0.complete and w0.incomplete_streams == ("words",) and w0["video"].count == 20
    # the word [1.5, 2.2) missed window 0 but went into window 1 (still open)
    assert [(x.reason, list(x.missed_windows), x.included) for x in late] == [("emitted", [0], True)]
    assert w1["words"].count == 1 and not w1["words"].complete
    # after both inputs completed, the rest flushed: windows starting before 6.0 s (last frame 5.9)
    assert [w.index for _, w in got] == list(range(6))
    assert synced.stats.incomplete_windows == 4      # windows 0-3 went by budget


def test_a_live_poll_thread_emits_by_budget_and_is_joined_at_the_end():
    now = [0]
    src, words = Subject(), Subject()
    synced = synchronize({"v": src, "words": words}, length_s=0.2, hop_s=0.1, clock=lambda: now[0],
                         streams=[StreamSpec("words", lateness_budget_s=0.05)], poll_interval_s=0.005)
    out = Sink()
    synced.windows.subscribe(out.on_next, out.on_error, out.on_completed)
    assert len(poll_threads()) == 1
    for k in range(10):
        src.on_next(Pt(k * 50 * MS))                     # 0 .. 0.45 s
    now[0] = 400 * MS                                    # windows ending by 0.35 s are due
    deadline = time.monotonic() + 5
    while len(out.items) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert [w.index for w in out.items] == [0, 1]        # [0,.2) [.1,.3); [.2,.4) ends past .35
    assert "streamline-sync-poll" in out.threads
    src.on_completed()
    words.on_completed()
    assert out.completed.wait(5)
    assert poll_threads() == []


def test_disposing_stops_the_poll_thread_and_the_inputs():
    src = Subject()
    synced = synchronize({"v": src}, length_s=1.0, hop_s=1.0, clock=lambda: 0,
                         streams=[StreamSpec("v", lateness_budget_s=1.0)])
    sub = synced.windows.subscribe(lambda w: None)
    assert len(poll_threads()) == 1 and src.observers
    sub.dispose()
    assert poll_threads() == [] and not src.observers


def test_threads_delivering_inputs_give_the_same_windows():
    n = 2000
    streams = {f"s{j}": [Pt(k * (7 + j) * MS, float(k)) for k in range(n)] for j in range(3)}
    specs = [StreamSpec(name, value_fn=lambda p: [p.v], grid_hz=20) for name in streams]
    ref = Synchronizer(WindowSpec(1.0, 0.25), specs)
    for name, items in streams.items():
        for it in items:
            ref.push(name, it)
        ref.end_stream(name)
    want = ref.poll()
    subjects = {name: Subject() for name in streams}
    out = Sink()
    synchronize(subjects, length_s=1.0, hop_s=0.25, streams=specs).windows.pipe(ops.to_list()) \
        .subscribe(out.on_next, out.on_error, out.on_completed)
    barrier = threading.Barrier(len(streams))

    def feed(name):
        barrier.wait()
        for it in streams[name]:
            subjects[name].on_next(it)
        subjects[name].on_completed()

    threads = [threading.Thread(target=feed, args=(name,)) for name in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert out.completed.wait(10) and out.error is None
    (got,) = out.items
    assert [w.index for w in got] == [w.index for w in want] and len(got) > 50
    for a, b in zip(got, want):
        for name in streams:
            assert a[name].items == b[name].items
            np.testing.assert_array_equal(a[name].grid_values, b[name].grid_values)


def test_each_subscription_runs_its_own_synchronizer():
    items = [Pt(k * 100 * MS) for k in range(30)]
    synced = synchronize({"v": reactivex.from_iterable(items)}, length_s=1.0, hop_s=1.0)
    first = synced.windows.pipe(ops.to_list()).run()
    second = synced.windows.pipe(ops.to_list()).run()
    assert [w.index for w in first] == [w.index for w in second] == [0, 1, 2]
    assert [w["v"].items for w in first] == [w["v"].items for w in second]


def test_a_clock_that_fails_ends_the_output_with_its_error():
    def clock():
        raise RuntimeError("clock broke")

    src = Subject()
    out = Sink()
    synchronize({"v": src}, length_s=1.0, hop_s=1.0, clock=clock, poll_interval_s=0.01,
                streams=[StreamSpec("v", lateness_budget_s=0.5)]).windows.subscribe(out.on_next, out.on_error)
    assert out.completed.wait(5)
    assert isinstance(out.error, RuntimeError) and str(out.error) == "clock broke"
    assert poll_threads() == [] and not src.observers


def test_a_source_that_fails_to_subscribe_and_a_scheduler_without_periodic_work():
    class Broken:
        def subscribe(self, *args, **kwargs):
            raise OSError("device busy")

    good = Subject()
    out = Sink()
    synchronize({"good": good, "bad": Broken()}, length_s=1.0, hop_s=1.0).windows.subscribe(out.on_next, out.on_error)
    assert isinstance(out.error, OSError) and not good.observers

    class NoPeriodic:
        pass

    with pytest.raises(ConfigError, match="periodic"):
        synchronize({"v": Subject()}, length_s=1.0, hop_s=1.0, scheduler=NoPeriodic(),
                    streams=[StreamSpec("v", lateness_budget_s=1.0)])


def test_a_failing_late_subscriber_does_not_break_the_windows(caplog):
    src = Subject()
    synced = synchronize({"v": src}, length_s=1.0, hop_s=1.0)
    synced.late.subscribe(lambda x: 1 / 0)
    out = Sink()
    synced.windows.subscribe(out.on_next, out.on_error, out.on_completed)
    src.on_next(Pt(2 * S))
    src.on_next(Pt(S))                                   # late
    src.on_completed()
    assert out.error is None and out.completed.is_set() and [w.index for w in out.items] == [0, 1, 2]
    assert "late-item subscriber raised" in caplog.text
