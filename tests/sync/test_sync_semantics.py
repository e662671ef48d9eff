"""The Synchronizer's semantics, case by case (push/pull API).

Windows in these tests are length 2 s, hop 1 s unless said otherwise::

    t (s):    0    1    2    3    4    5
    win 0:    [---------)
    win 1:         [---------)
    win 2:              [---------)
    win 3:                   [---------)
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from streamline.errors import ClosedError, ConfigError, StreamlineError, TimestampError
from streamline.sync import LateItem, StreamSpec, Synchronizer, Watermark, WindowSpec
from streamline.types import AudioChunk, SpeechSegment, VideoFrame, Word

from .helpers import Iv, Pt

pytestmark = pytest.mark.jit  # cheap: rerun with NUMBA_DISABLE_JIT=1 too

S = 1_000_000_000
MS = 1_000_000
W2 = WindowSpec(2.0, 1.0)


def frame(t_ns: int) -> VideoFrame:
    return VideoFrame(t_ns, np.zeros((2, 2, 3), np.uint8))


def word(text: str, start_ns: int, end_ns: int) -> Word:
    return Word(text, start_ns, end_ns, 0.9)


def test_points_belong_to_every_window_containing_them_start_inclusive_end_exclusive():
    sync = Synchronizer(W2, ["v"])
    items = [frame(0), frame(1 * S - 1), frame(1 * S), frame(2 * S), frame(3 * S)]
    for it in items:
        sync.push("v", it)
    windows = sync.poll()
    # the watermark is 3 s: windows ending at or before 3 s are out
    assert [w.index for w in windows] == [0, 1]
    assert windows[0]["v"].items == tuple(items[0:3])          # 0, 1s-1ns, 1s; not 2s
    assert windows[1]["v"].items == tuple(items[2:4])          # 1s, 2s; not 1s-1ns, not 3s
    assert windows[0]["v"].times_ns.tolist() == [0, S - 1, S]
    assert (windows[1].start_ns, windows[1].end_ns) == (S, 3 * S)
    assert all(w.complete for w in windows)


def test_a_window_waits_for_the_slowest_stream():
    sync = Synchronizer(W2, ["video", "words"])
    for k in range(60):
        sync.push("video", frame(k * 100 * MS))                # 0 .. 5.9 s
    assert sync.poll() == []                                    # words said nothing yet
    sync.push("words", word("hello", int(0.5 * S), int(0.9 * S)))
    assert sync.poll() == []                                    # words' watermark is 0.5 s
    sync.push("words", word("world", int(3.2 * S), int(3.6 * S)))
    windows = sync.poll()                                       # watermark 3.2 s: windows 0, 1
    assert [w.index for w in windows] == [0, 1]
    assert [w.text for w in windows[0]["words"].items] == ["hello"]
    assert windows[1]["words"].items == ()
    assert windows[0]["video"].count == 20 and windows[1]["video"].count == 20


def test_an_explicit_watermark_closes_windows_during_a_silence():
    sync = Synchronizer(W2, ["video", "words"])
    for k in range(50):
        sync.push("video", frame(k * 100 * MS))
    sync.push("words", Watermark(4 * S))                        # no words until 4 s
    windows = sync.poll()
    assert [w.index for w in windows] == [0, 1, 2]
    assert all(w["words"].empty and w["words"].complete for w in windows)
    sync.advance_watermark("words", 1 * S)                      # watermarks never go back
    assert sync.stats.streams["words"].watermark_ns == 4 * S


def test_intervals_belong_to_every_window_they_overlap_with_the_overlap():
    #   t (s):  0    1    2    3    4
    #   word:          [=========)          1.5 .. 3.5
    #   win 0:  [---------)                 overlap 0.5
    #   win 1:       [---------)            overlap 1.5
    #   win 2:            [---------)       overlap 1.5
    #   win 3:                 [---------)  overlap 0.5
    sync = Synchronizer(W2, [StreamSpec("words", value_fn=lambda w: [len(w.text)])])
    w = word("overlapping", int(1.5 * S), int(3.5 * S))
    sync.push("words", w)
    sync.end_stream("words")
    windows = sync.poll()
    assert [x.index for x in windows] == [0, 1, 2, 3]
    assert [x["words"].overlap_ns.tolist() for x in windows] == [[S // 2], [3 * S // 2], [3 * S // 2], [S // 2]]
    assert [x["words"].coverage for x in windows] == [0.25, 0.75, 0.75, 0.25]
    assert all(x["words"].items == (w,) for x in windows)
    assert windows[0]["words"].end_ns.tolist() == [int(3.5 * S)]
    assert windows[0]["words"].values.tolist() == [[11.0]]
    assert windows[0]["words"].kind == "interval"


def test_zero_length_and_boundary_intervals():
    sync = Synchronizer(W2, ["seg"])
    zero = SpeechSegment(2 * S, 2 * S)          # zero length exactly on a boundary: like a point at 2 s
    ends_on_edge = SpeechSegment(int(2.5 * S), 3 * S)
    sync.push("seg", zero)
    sync.push("seg", ends_on_edge)
    sync.end_stream("seg")
    w = {x.index: x["seg"] for x in sync.poll()}
    assert w[0].items == ()                      # [0, 2) excludes 2
    assert w[1].items == (zero, ends_on_edge) and w[1].overlap_ns.tolist() == [0, S // 2]
    assert w[2].items == (zero, ends_on_edge)
    assert 3 not in w or ends_on_edge not in w[3].items   # [3, 5) does not meet [2.5, 3)
    assert w[1].coverage == 0.25                 # the zero-length one covers nothing


def test_a_very_long_interval_is_kept_only_while_it_overlaps():
    sync = Synchronizer(W2, ["seg", "v"])
    hour = SpeechSegment(0, 3600 * S)
    sync.push("seg", hour)
    sync.push("seg", Watermark(3600 * S))
    for k in range(3600):
        sync.push("v", frame(k * S))
    windows = sync.poll()
    assert len(windows) == 3598                   # every window ending by 3599 s
    assert all(w["seg"].items == (hour,) and w["seg"].coverage == 1.0 for w in windows)
    stats = sync.stats.streams
    assert stats["seg"].buffered == 1 and stats["v"].buffered <= 3


def test_gaps_show_in_coverage_and_grid_mask():
    spec = StreamSpec("face", value_fn=lambda f: [f.pts_ns / S], grid_hz=10, max_age_s=0.1)
    sync = Synchronizer(W2, [spec])
    for k in range(40):                            # 0 .. 3.9 s at 10 Hz, a 1 s gap from 1.0 to 2.0 s
        if not 10 <= k < 20:
            sync.push("face", frame(k * 100 * MS))
    sync.end_stream("face")
    w0 = sync.poll()[0]["face"]
    # 0.0 .. 0.9 cover [0, 1.0); the gap [1.0, 2.0) is empty
    assert w0.coverage == 0.5
    assert w0.grid_mask.tolist() == [True] * 11 + [False] * 9   # 1.0 s still holds 0.9 (age 0.1)
    assert w0.grid_values[:11, 0].tolist() == pytest.approx([k / 10 for k in range(10)] + [0.9])
    assert w0.grid_times_ns.tolist() == [k * 100 * MS for k in range(20)]
    assert not w0.grid_values.flags.writeable and not w0.times_ns.flags.writeable


def test_an_empty_stream_on_a_file_closes_by_end_of_stream():
    sync = Synchronizer(W2, [StreamSpec("face", dim=3, grid_hz=5), "audio"])
    for k in range(4):
        sync.push("audio", AudioChunk(k * S, np.zeros(16000, np.float32), 16000))
    assert sync.poll() == []                       # face has said nothing: wait
    sync.end_stream("face")
    sync.end_stream("audio")
    windows = sync.poll()
    # audio chunks are intervals [k, k+1) s: data up to 4 s, so windows starting before 4 s
    assert [w.index for w in windows] == [0, 1, 2, 3]
    face = windows[0]["face"]
    assert face.empty and face.complete and face.coverage == 0.0
    assert face.values.shape == (0, 3) and face.grid_values.shape == (10, 3) and not face.grid_mask.any()
    assert [w["audio"].coverage for w in windows] == [1.0, 1.0, 1.0, 0.5]
    assert windows[0]["audio"].kind == "interval"
    assert sync.finished and sync.poll() == []


def test_the_end_flush_stops_at_the_last_data_or_watermark():
    sync = Synchronizer(WindowSpec(2.0, 0.5), ["a", "b"])
    sync.push("a", frame(int(2.2 * S)))
    sync.push("b", Watermark(3 * S))
    sync.end_stream("a")
    sync.end_stream("b")
    windows = sync.poll()
    # windows starting before 3 s (the last watermark): 0 .. 5
    assert [w.index for w in windows] == [0, 1, 2, 3, 4, 5]
    assert [w["a"].count for w in windows] == [0, 1, 1, 1, 1, 0]


def test_nothing_at_all_gives_no_windows():
    sync = Synchronizer(W2, ["a"])
    sync.end_stream("a")
    assert sync.poll() == [] and sync.finished


def test_items_behind_the_watermark_are_late_not_dropped():
    sync = Synchronizer(W2, ["v"])
    sync.push("v", frame(3 * S))
    early = frame(int(2.5 * S))                     # behind its stream's watermark (3 s)
    sync.push("v", early)
    late = sync.take_late()
    assert len(late) == 1 and isinstance(late[0], LateItem)
    assert (late[0].stream, late[0].item, late[0].reason, late[0].included) == ("v", early, "watermark", False)
    assert list(late[0].missed_windows) == [1, 2]
    assert sync.take_late() == []
    assert sync.stats.late == 1 and sync.stats.streams["v"].late == 1
    sync.end_stream("v")
    assert all(early not in w["v"].items for w in sync.poll())


def test_items_before_window_zero_are_reported():
    sync = Synchronizer(WindowSpec(2.0, 1.0, start_s=10.0), ["v"])
    sync.push("v", frame(9 * S))
    assert [x.reason for x in sync.take_late()] == ["before_start"]


def test_lateness_budget_emits_incomplete_windows_and_later_items_are_late():
    now = [0]
    sync = Synchronizer(W2, ["video", StreamSpec("words", lateness_budget_s=3.0)], clock=lambda: now[0])
    for k in range(70):
        sync.push("video", frame(k * 100 * MS))     # up to 6.9 s
    now[0] = int(4.9 * S)
    assert sync.poll() == []                        # window 0 ends at 2 s: due at 5 s
    now[0] = 5 * S
    (w0,) = sync.poll()
    assert w0.index == 0 and not w0.complete and w0.incomplete_streams == ("words",)
    assert w0["video"].complete and not w0["words"].complete
    # a word for windows 0 and 1 arrives after window 0 went out
    hello = word("hello", int(1.5 * S), int(1.8 * S))
    sync.push("words", hello)
    (late,) = sync.take_late()
    assert late.reason == "emitted" and list(late.missed_windows) == [0] and late.included
    sync.push("words", Watermark(3 * S))
    (w1,) = sync.poll(now_ns=5 * S)
    assert w1.complete and w1["words"].items == (hello,)
    assert sync.stats.incomplete_windows == 1 and sync.stats.streams["words"].incomplete_windows == 1
    assert sync.ready_until(now_ns=5 * S) == 1


def test_budgets_without_a_clock_use_the_session_clock():
    import time

    from streamline.sources import default_session_clock

    clock = default_session_clock()
    sync = Synchronizer(WindowSpec(0.001, 0.001), [StreamSpec("a", lateness_budget_s=0.0)])
    time.sleep(0.02)
    before = clock.now_ns()
    windows = sync.poll()
    after = clock.now_ns()
    # budget 0: every window that ended by the poll's clock reading is out, incomplete
    assert before // MS <= len(windows) <= after // MS
    assert len(windows) >= 20 and not any(w.complete for w in windows)


def test_auto_kind_from_the_streamline_types():
    sync = Synchronizer(W2, ["video", "audio", "words", "vad"])
    sync.push("video", frame(0))
    sync.push("audio", AudioChunk(0, np.zeros(8000, np.float32), 16000))
    sync.push("words", word("hi", 0, S))
    sync.push("vad", SpeechSegment(0, S))
    for name in ("video", "audio", "words", "vad"):
        sync.end_stream(name)
    w0 = sync.poll()[0]
    assert w0["video"].kind == "point" and w0["video"].end_ns is None
    assert w0["audio"].kind == "interval" and w0["audio"].end_ns.tolist() == [S // 2]
    assert w0["words"].kind == "interval" and w0["vad"].kind == "interval"


def test_an_explicit_point_kind_reads_audio_chunks_at_their_pts():
    sync = Synchronizer(W2, [StreamSpec("audio", kind="point")])
    sync.push("audio", AudioChunk(int(1.9 * S), np.zeros(16000, np.float32), 16000))
    sync.end_stream("audio")
    w = sync.poll()
    assert [x.index for x in w] == [0, 1] and w[0]["audio"].end_ns is None


def test_push_array_equals_pushing_one_by_one():
    times = np.arange(0, 5 * S, 10 * MS, dtype=np.int64)            # 100 Hz
    values = np.stack([np.sin(times / S), np.cos(times / S)], axis=1).astype(np.float32)
    spec = dict(grid_hz=25, resample="linear", max_age_s=0.05)
    a = Synchronizer(W2, [StreamSpec("x", **spec)])
    b = Synchronizer(W2, [StreamSpec("x", value_fn=lambda p: values[p.pts_ns // (10 * MS)], **spec)])
    for chunk in np.array_split(np.arange(times.size), 7):
        a.push_array("x", times[chunk], values[chunk])
    for t in times.tolist():
        b.push("x", Pt(t))
    a.end_stream("x")
    b.end_stream("x")
    wa, wb = a.poll(), b.poll()
    assert len(wa) == len(wb) == 5
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x["x"].times_ns, y["x"].times_ns)
        np.testing.assert_array_equal(x["x"].values, y["x"].values)
        np.testing.assert_array_equal(x["x"].grid_values, y["x"].grid_values)
        np.testing.assert_array_equal(x["x"].grid_mask, y["x"].grid_mask)
        assert x["x"].coverage == y["x"].coverage
    # linear interpolation of a sine at 25 Hz from 100 Hz samples is close to the sine
    g = wa[1]["x"]
    assert g.grid_mask.all()
    np.testing.assert_allclose(g.grid_values[:, 0], np.sin(g.grid_times_ns / S), atol=1e-4)


def test_push_array_intervals_and_late_elements():
    sync = Synchronizer(W2, ["seg"])
    assert sync.push_array("seg", [0, S], end_ns=[S, 2 * S]) == 0
    assert sync.push_array("seg", [S // 2, 3 * S], end_ns=[S, 4 * S]) == 1     # 0.5 s is behind 1 s
    (late,) = sync.take_late()
    assert (late.item, late.start_ns, late.reason) == (None, S // 2, "watermark")
    sync.end_stream("seg")
    w = sync.poll()
    assert w[0]["seg"].times_ns.tolist() == [0, S] and w[0]["seg"].items == ()


def test_buffers_stay_bounded():
    sync = Synchronizer(WindowSpec(2.0, 0.5), [StreamSpec("x", keep_items=False), "y"])
    for k in range(200):
        sync.push_array("x", np.arange(k * S, (k + 1) * S, 10 * MS))
        sync.push("y", Iv(k * S, k * S + S // 2))
        sync.poll()
    stats = sync.stats.streams
    # y's watermark (its last start, k s) trails x's by 1 s, so after each poll the next
    # window starts at k - 1.5 s: x needs 2.5 s (250 items) + the carry-in, plus one pushed
    # chunk (100); eviction runs every 8 windows (4 s here), so up to 400 more linger
    assert 251 <= stats["x"].buffered <= 651 and stats["x"].max_buffered <= 751
    assert stats["y"].max_buffered <= 4 + 4     # 4 s of 1 interval/s between evictions


def test_windows_and_late_items_pickle():
    sync = Synchronizer(W2, [StreamSpec("v", value_fn=lambda f: [1.0, 2.0], grid_hz=2)])
    sync.push("v", Pt(S))
    sync.push("v", Pt(0))
    sync.end_stream("v")
    windows = sync.poll()
    back = pickle.loads(pickle.dumps(windows))
    assert back[0]["v"].values.tolist() == [[1.0, 2.0]] and back[0].index == 0
    assert pickle.loads(pickle.dumps(sync.take_late()))[0].reason == "watermark"
    assert sync.stats.as_dict()["windows"] == 2


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: WindowSpec(0.0, 0.5), ConfigError, "length_s"),
        (lambda: WindowSpec(1.0, -1.0), ConfigError, "hop_s"),
        (lambda: WindowSpec(1.0, 2.0), ConfigError, "must not exceed"),
        (lambda: WindowSpec(float("nan"), 1.0), ConfigError, "finite"),
        (lambda: StreamSpec(""), ConfigError, "name"),
        (lambda: StreamSpec("x", kind="blob"), ConfigError, "kind"),
        (lambda: StreamSpec("x", resample="cubic"), ConfigError, "resample"),
        (lambda: StreamSpec("x", kind="interval", resample="linear"), ConfigError, "hold"),
        (lambda: StreamSpec("x", lateness_budget_s=-1), ConfigError, "lateness_budget_s"),
        (lambda: StreamSpec("x", grid_hz=0), ConfigError, "grid_hz"),
        (lambda: StreamSpec("x", dim=0), ConfigError, "dim"),
        (lambda: StreamSpec("x", value_fn=3), ConfigError, "callable"),
        (lambda: Synchronizer(W2, []), ConfigError, "at least one"),
        (lambda: Synchronizer(W2, ["a", "a"]), ConfigError, "duplicate"),
        (lambda: Synchronizer(W2, [StreamSpec("a", grid_hz=0.3)]), ConfigError, "whole number"),
        (lambda: Synchronizer(W2, ["a"], max_late=0), ConfigError, "max_late"),
    ],
)
def test_bad_settings_raise_config_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_input_raises_clear_errors():
    sync = Synchronizer(W2, ["v", StreamSpec("g", grid_hz=2), StreamSpec("f", value_fn=lambda x: [[1, 2]])])
    with pytest.raises(ConfigError, match="unknown stream 'nope'"):
        sync.push("nope", frame(0))
    with pytest.raises(TimestampError, match="stream 'v': pts_ns must be an int"):
        sync.push("v", Pt(0.5))
    with pytest.raises(TimestampError, match="NaN"):
        sync.push("v", Pt(float("nan")))
    with pytest.raises(TimestampError, match="neither pts_ns nor start_ns"):
        Synchronizer(W2, ["x"]).push("x", object())
    with pytest.raises(TimestampError, match="ends .* before it starts"):
        Synchronizer(W2, ["x"]).push("x", Iv(5, 3))
    with pytest.raises(ConfigError, match="grid_hz but no value_fn"):
        sync.push("g", Pt(0))
    with pytest.raises(ConfigError, match="1-D"):
        sync.push("f", Pt(0))
    with pytest.raises(TimestampError, match="non-decreasing"):
        sync.push_array("v", [3, 1])
    with pytest.raises(TimestampError, match="integer nanoseconds"):
        sync.push_array("v", [0.5])
    sync.push("v", frame(0))
    with pytest.raises(ConfigError, match="do not mix"):
        sync.push_array("v", [5])
    dims = Synchronizer(W2, [StreamSpec("d", value_fn=lambda p: [0.0] * int(p.v))])
    dims.push("d", Pt(0, 2.0))
    with pytest.raises(ConfigError, match="3 columns, earlier ones had 2"):
        dims.push("d", Pt(1, 3.0))
    sync.end_stream("v")
    with pytest.raises(ClosedError, match="ended"):
        sync.push("v", frame(S))
    with pytest.raises(ClosedError):
        sync.advance_watermark("v", S)
    assert issubclass(TimestampError, (StreamlineError, ValueError))


def test_a_value_fn_error_propagates_and_changes_nothing():
    def boom(item):
        raise RuntimeError("feature extractor failed")

    sync = Synchronizer(W2, [StreamSpec("f", value_fn=boom)])
    with pytest.raises(RuntimeError, match="feature extractor failed"):
        sync.push("f", Pt(0))
    assert sync.stats.streams["f"].items == 0


def test_windows_of_names_the_windows_an_item_belongs_to():
    from .naive import NaiveSync

    spec = WindowSpec(7e-9, 3e-9, start_s=-2e-9)
    ref = NaiveSync(start=-2, hop=3, length=7, streams=[])
    for s in range(-12, 30):
        for span in (0, 1, 3, 9, 40):
            assert list(spec.windows_of(s, s + span)) == ref.windows_of(s, s + span), (s, span)
        assert list(spec.windows_of(s)) == ref.windows_of(s, s)
    assert spec.window_start_ns(4) == 10


def test_the_late_queue_is_bounded_and_counts_what_it_discards():
    sync = Synchronizer(W2, ["v"], max_late=3)
    sync.push("v", Pt(10 * S))
    for k in range(5):
        sync.push("v", Pt(k))
    assert [x.start_ns for x in sync.take_late()] == [2, 3, 4]
    stats = sync.stats
    assert stats.late == 5 and stats.late_overflow == 2


def test_push_array_kind_and_value_mismatches():
    sync = Synchronizer(W2, ["p", StreamSpec("i", kind="interval"), StreamSpec("g", grid_hz=2), "v"])
    sync.push_array("p", [0])
    with pytest.raises(ConfigError, match="end_ns is for intervals"):
        sync.push_array("p", [1], end_ns=[2])
    with pytest.raises(ConfigError, match="pass end_ns"):
        sync.push_array("i", [1])
    with pytest.raises(ConfigError, match="needs values"):
        sync.push_array("g", [1])
    sync.push_array("v", [0], [[1.0, 2.0]])
    with pytest.raises(ConfigError, match="pass values"):
        sync.push_array("v", [1])
    with pytest.raises(TimestampError, match="end_ns has shape"):
        sync.push_array("i", [1, 2], end_ns=[3])
    with pytest.raises(TimestampError, match="ends .* before it starts"):
        sync.push_array("i", [1, 2], end_ns=[3, 1])
    assert sync.push_array("p", np.zeros(0, np.int64)) == 0
    with pytest.raises(ConfigError, match="without values"):
        sync.push_array("p", [3], [[1.0]])
    with pytest.raises(ConfigError, match="hold"):
        Synchronizer(W2, [StreamSpec("x", resample="linear")]).push("x", Iv(0, 1))
    sync.end_stream("p")
    with pytest.raises(ClosedError):
        sync.push_array("p", [5])


def test_numpy_integer_times_are_accepted_and_huge_ones_refused():
    sync = Synchronizer(W2, ["v", "w"])
    sync.push("v", Pt(np.int64(5)))
    sync.push("w", Iv(np.int32(1), np.int64(3)))
    with pytest.raises(TimestampError, match="2\\*\\*61"):
        sync.push("v", Pt(2**62))
    with pytest.raises(TimestampError, match="end_ns must be an int"):
        sync.push("w", Iv(4, 5.0))
    with pytest.raises(TimestampError, match="has no start_ns/end_ns"):
        sync.push("w", Pt(7))
    with pytest.raises(ConfigError, match="window must be a WindowSpec"):
        Synchronizer((2.0, 1.0), ["v"])
    assert sync.stream_names == ("v", "w") and [s.name for s in sync.specs] == ["v", "w"]


def test_the_public_api_is_complete_and_small():
    import streamline.sync as sync_pkg

    for name in sync_pkg.__all__:
        assert getattr(sync_pkg, name) is not None, name
    assert set(sync_pkg.__all__) == {
        "AlignedWindow", "LateItem", "StreamSlice", "StreamSpec", "StreamStats", "SyncStats",
        "Synchronized", "Synchronizer", "Watermark", "WindowSpec", "synchronize", "warmup",
    }
    assert not any(name.startswith("_") for name in sync_pkg.__all__)
    with pytest.raises(ConfigError, match="too fine"):
        Synchronizer(WindowSpec(1000.0, 1.0), [StreamSpec("x", grid_hz=5e6)])


def test_epoch_times_fail_loudly_instead_of_emitting_billions_of_windows():
    sync = Synchronizer(W2, ["v"])
    sync.push("v", Pt(1_700_000_000 * S))      # an epoch timestamp, not a session time
    with pytest.raises(TimestampError, match="epoch"):
        sync.poll()
