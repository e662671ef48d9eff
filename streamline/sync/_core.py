"""The push/pull synchronizer: items and watermarks in, aligned windows out.

No reactivex here: :class:`Synchronizer` is usable from any code that can call
``push`` and ``poll``. The reactive operator (:mod:`._operator`) drives one per
subscription.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ClosedError, ConfigError, TimestampError
from ..timeline import Clock
from . import _kernels as K
from ._types import (
    AlignedWindow,
    LateItem,
    StreamSlice,
    StreamSpec,
    StreamStats,
    SyncStats,
    Watermark,
    WindowSpec,
)

__all__ = ["Synchronizer"]

log = logging.getLogger(__name__)

_UNKNOWN, _POINT, _INTERVAL = 0, 1, 2
_KIND_NAMES = {_UNKNOWN: "point", _POINT: "point", _INTERVAL: "interval"}
_FEED_ITEMS, _FEED_ARRAYS = 1, 2
#: Windows assembled per kernel call when many are ready at once (bounds temporary memory).
_BATCH_WINDOWS = 256
#: Buffers drop what emitted windows no longer need every this many windows (amortized).
_EVICT_EVERY = 8
#: A poll that would emit more windows than this raises instead (epoch times, not session times).
_MAX_WINDOWS_PER_POLL = 1_000_000
_EMPTY_I64 = np.zeros(0, np.int64)
_EMPTY_I64.flags.writeable = False
_LIMIT = K.TIME_LIMIT_NS
_MISSING = object()


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _ns(value: Any, stream: str, what: str) -> int:
    """An item's time as a Python int, or TimestampError naming the stream."""
    if type(value) is not int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            if isinstance(value, (float, np.floating)) and value != value:
                raise TimestampError(f"stream {stream!r}: {what} is NaN")
            raise TimestampError(
                f"stream {stream!r}: {what} must be an int number of nanoseconds, "
                f"got {type(value).__name__} {value!r}"
            )
        value = int(value)
    if not -_LIMIT < value < _LIMIT:
        raise TimestampError(f"stream {stream!r}: {what} {value} ns is beyond +-2**61 ns (73 years)")
    return value


class _Stream:
    """Per-stream state. Touched only under the synchronizer's lock (except the
    immutable settings read outside it)."""

    __slots__ = (
        "spec", "name", "kind", "feed", "dim", "value_fn", "keep_items", "budget_ns", "max_age_ns",
        "grid_n", "mode", "grid_offsets",
        "times", "ends", "values", "head", "size",
        "items",
        "watermark", "horizon", "ended",
        "n_items", "n_late", "max_buffered", "n_incomplete",
    )

    def __init__(self, spec: StreamSpec, window: WindowSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.kind = {"auto": _UNKNOWN, "point": _POINT, "interval": _INTERVAL}[spec.kind]
        self.feed = 0
        self.value_fn = spec.value_fn
        self.keep_items = spec.keep_items
        self.budget_ns = spec.lateness_budget_ns
        self.max_age_ns = spec.max_age_ns
        self.grid_n = spec.grid_points(window.length_s)
        if self.grid_n * window.length_ns >= 2**62:
            raise ConfigError(
                f"stream {spec.name!r}: grid_hz {spec.grid_hz} is too fine for {window.length_s} s windows"
            )
        self.mode = K.MODES[spec.resample]
        if self.grid_n:
            offsets = (np.arange(self.grid_n, dtype=np.int64) * window.length_ns) // self.grid_n
            self.grid_offsets = _readonly(offsets)
        else:
            self.grid_offsets = None
        cap = 64
        self.times = np.empty(cap, np.int64)
        self.ends = np.empty(cap, np.int64)
        self.values = np.empty((cap, spec.dim or 0), np.float32)
        self.dim = spec.dim
        self.head = 0
        self.size = 0
        self.items: list[Any] = []
        self.watermark: int | None = None
        self.horizon: int | None = None
        self.ended = False
        self.n_items = 0
        self.n_late = 0
        self.max_buffered = 0
        self.n_incomplete = 0

    # -- buffer ---------------------------------------------------------------

    def claim_feed(self, feed: int) -> None:
        """Check that the stream takes ``push`` (items) or ``push_array`` (arrays), never both, and is open."""
        if self.feed != feed:
            if self.feed:
                mine, other = ("push", "push_array") if feed == _FEED_ITEMS else ("push_array", "push")
                raise ConfigError(f"stream {self.name!r} is fed with {other}; do not mix it with {mine}")
            self.feed = feed
        if self.ended:
            raise ClosedError(f"stream {self.name!r} has ended; no more items can be pushed")

    @property
    def buffered(self) -> int:
        return self.size - self.head

    def set_dim(self, dim: int) -> None:
        if self.dim is None:
            if self.n_items:
                raise ConfigError(
                    f"stream {self.name!r}: earlier items came without values; keep to one or the other"
                )
            self.dim = dim
            self.values = np.empty((self.times.shape[0], dim), np.float32)
        elif dim != self.dim:
            raise ConfigError(f"stream {self.name!r}: values have {dim} columns, earlier ones had {self.dim}")

    def _reserve(self, extra: int) -> None:
        live = self.size - self.head
        cap = self.times.shape[0]
        if self.size + extra <= cap:
            return
        if live + extra <= cap // 2:
            # compact in place
            if live:
                self.times[:live] = self.times[self.head:self.size]
                if self.kind == _INTERVAL:
                    self.ends[:live] = self.ends[self.head:self.size]
                if self.values.shape[1]:
                    self.values[:live] = self.values[self.head:self.size]
        else:
            new_cap = max(2 * cap, 2 * (live + extra))
            times = np.empty(new_cap, np.int64)
            ends = np.empty(new_cap, np.int64)
            values = np.empty((new_cap, self.values.shape[1]), np.float32)
            times[:live] = self.times[self.head:self.size]
            ends[:live] = self.ends[self.head:self.size]
            values[:live] = self.values[self.head:self.size]
            self.times, self.ends, self.values = times, ends, values
        self.head = 0
        self.size = live

    def append(self, times: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        m = times.shape[0]
        if not m:
            return
        self._reserve(m)
        s = self.size
        self.times[s:s + m] = times
        if self.kind == _INTERVAL:
            self.ends[s:s + m] = ends
        if values.shape[1]:
            self.values[s:s + m] = values
        self.size = s + m

    def append_one(self, t: int, e: int, value: np.ndarray | None) -> None:
        """Append one item's time (and end, value) to the buffer: O(1) amortized."""
        i = self.size
        if i == self.times.shape[0]:
            self._reserve(1)
            i = self.size
        self.times[i] = t
        if self.kind == _INTERVAL:
            self.ends[i] = e
        if value is not None:
            self.values[i] = value
        self.size = i + 1

    def view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, s = self.head, self.size
        return self.times[h:s], self.ends[h:s], self.values[h:s]

    def evict_before(self, next_start: int) -> None:
        """Drop what no window from ``next_start`` on can need."""
        live = self.size - self.head
        if not live:
            return
        times, ends, values = self.view()
        if self.kind != _INTERVAL:
            cut = int(np.searchsorted(times, next_start, side="left")) - 1  # keep the carry-in
            if cut > 0:
                self.head += cut
                if self.keep_items and self.feed == _FEED_ITEMS:
                    del self.items[:cut]
            return
        gone = ((ends > times) & (ends <= next_start)) | ((ends == times) & (times < next_start))
        n_gone = int(np.count_nonzero(gone))
        if not n_gone:
            return
        if n_gone == live:
            self.head = self.size
            if self.keep_items and self.feed == _FEED_ITEMS:
                self.items.clear()
            return
        keep = ~gone
        kept = int(live - n_gone)
        h = self.head
        self.times[h:h + kept] = times[keep]
        self.ends[h:h + kept] = ends[keep]
        if values.shape[1]:
            self.values[h:h + kept] = values[keep]
        self.size = h + kept
        if self.keep_items and self.feed == _FEED_ITEMS:
            self.items = [it for it, k in zip(self.items, keep.tolist()) if k]

    def stats(self) -> StreamStats:
        return StreamStats(
            items=self.n_items,
            late=self.n_late,
            buffered=self.buffered,
            max_buffered=self.max_buffered,
            incomplete_windows=self.n_incomplete,
            watermark_ns=self.watermark,
            ended=self.ended,
        )


class Synchronizer:
    """Align named streams of timestamped items into sliding windows.

    Semantics (see ``docs/sync.md`` for the timeline drawing):

    * Windows ``[start + k*hop, start + k*hop + length)``, ``k = 0, 1, ...``, are
      emitted in order, each exactly once, by :meth:`poll`.
    * Each stream has a *watermark*: the promise that no item earlier than it will
      follow. It advances with every in-order item (to the item's time, or an
      interval's start) and with :meth:`advance_watermark`; :meth:`end_stream`
      raises it to infinity.
    * Window k is emitted once every stream's watermark is at or past its end, or,
      for a stream with a lateness budget, once the session clock passes the
      window's end plus the budget (the window then records that stream as
      incomplete).
    * When every stream has ended, the remaining windows that start before the
      last data or watermark are emitted (files end by end-of-stream), and no more.
    * A point belongs to the windows containing its time; an interval
      ``[start, end)`` to every window it overlaps (with the overlap recorded); a
      zero-length interval to the windows containing its start.
    * An item earlier than its stream's watermark, or whose windows were already
      emitted, is *late*: it is reported by :meth:`take_late` and counted, goes
      into no emitted window, and never reopens one.
    * Determinism: without lateness budgets the windows depend only on each
      stream's own sequence of items and watermarks, never on chunking, on the
      interleaving across streams or on the threads calling in.
    * Memory: only what open windows need is kept (points: from the next window's
      start, plus one carry-in item; intervals: those that end after it), checked
      every 8 windows, so at most 8 hops of already-emitted data linger.

    Every method is thread-safe: state changes happen under one lock. ``value_fn``
    runs outside it.

    Args:
        window: the windows (a :class:`WindowSpec`).
        streams: the inputs, as :class:`StreamSpec` objects or plain names (default
            settings).
        clock: the session clock (int ns) for lateness budgets. Default: the
            process-wide live session clock
            (:func:`streamline.sources.default_session_clock`), made on first need.
            Unused when no stream has a budget.
        max_late: bound of the late-item queue; beyond it the oldest entries are
            discarded and counted in ``stats.late_overflow`` (take them with
            :meth:`take_late`).

    Raises:
        ConfigError: no streams, duplicate names, a grid that does not divide the
            window, or ``max_late < 1``.
    """

    def __init__(
        self,
        window: WindowSpec,
        streams: Iterable[StreamSpec | str],
        *,
        clock: Clock | None = None,
        max_late: int = 10_000,
    ) -> None:
        if not isinstance(window, WindowSpec):
            raise ConfigError(f"window must be a WindowSpec, got {window!r}")
        specs = [s if isinstance(s, StreamSpec) else StreamSpec(s) for s in streams]
        if not specs:
            raise ConfigError("a Synchronizer needs at least one stream")
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"duplicate stream names: {dupes}")
        if not isinstance(max_late, int) or max_late < 1:
            raise ConfigError(f"max_late must be an int >= 1, got {max_late!r}")
        K.warmup()
        self.window = window
        self._s0 = window.start_ns
        self._hop = window.hop_ns
        self._len = window.length_ns
        self._streams: dict[str, _Stream] = {s.name: _Stream(s, window) for s in specs}
        self._order: tuple[_Stream, ...] = tuple(self._streams.values())
        self._budgeted = any(st.budget_ns is not None for st in self._order)
        self._clock = clock
        self._lock = threading.Lock()
        self._next = 0  # next window index to emit
        self._n_ended = 0
        self._finished = False
        self._late: deque[LateItem] = deque(maxlen=max_late)
        self._n_late = 0
        self._late_overflow = 0
        self._n_windows = 0
        self._n_incomplete = 0
        self._evicted_at = 0

    # -- introspection ----------------------------------------------------------

    @property
    def stream_names(self) -> tuple[str, ...]:
        """The configured stream names, in order."""
        return tuple(self._streams)

    @property
    def specs(self) -> tuple[StreamSpec, ...]:
        """The stream settings, in order."""
        return tuple(st.spec for st in self._order)

    @property
    def finished(self) -> bool:
        """True once every stream has ended and the last window was emitted."""
        return self._finished

    @property
    def stats(self) -> SyncStats:
        """A snapshot of the counters."""
        with self._lock:
            return SyncStats(
                windows=self._n_windows,
                incomplete_windows=self._n_incomplete,
                late=self._n_late,
                late_overflow=self._late_overflow,
                next_window=self._next,
                streams={st.name: st.stats() for st in self._order},
            )

    def take_late(self) -> list[LateItem]:
        """Remove and return the late items reported since the last call, in arrival order."""
        with self._lock:
            if not self._late:
                return []
            out = list(self._late)
            self._late.clear()
            return out

    @property
    def has_late(self) -> bool:
        """True when :meth:`take_late` would return something (no lock; a hint)."""
        return bool(self._late)

    # -- input ------------------------------------------------------------------

    def _stream(self, name: str) -> _Stream:
        try:
            return self._streams[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown stream {name!r}; the streams are {list(self._streams)}") from None

    def push(self, stream: str, item: Any) -> None:
        """Add one item (or a :class:`Watermark`) to a stream.

        Args:
            stream: the stream's name.
            item: an object with an int ``pts_ns`` (point) or ``start_ns``/``end_ns``
                (interval), as the stream's ``kind`` says; or a ``Watermark``.

        Raises:
            ConfigError: unknown stream; a stream fed with arrays; the item's kind or
                value length differs from the stream's; a grid stream without values.
            TimestampError: the item has no usable time (missing, float, NaN, beyond
                +-73 years) or an interval ends before it starts.
            ClosedError: the stream has ended.
            Exception: whatever ``value_fn`` raises.
        """
        st = self._stream(stream)
        if type(item) is Watermark:
            self.advance_watermark(stream, item.t_ns)
            return
        kind = st.kind
        if kind == _UNKNOWN:
            kind = self._resolve_kind(st, item)
        name = st.name
        try:
            if kind == _POINT:
                s = item.pts_ns
                if type(s) is not int or not -_LIMIT < s < _LIMIT:
                    s = _ns(s, name, "pts_ns")
                e = s
            else:
                s = getattr(item, "start_ns", _MISSING)
                if s is _MISSING:
                    s = item.pts_ns
                e = item.end_ns
                if type(s) is not int or not -_LIMIT < s < _LIMIT:
                    s = _ns(s, name, "start_ns")
                if type(e) is not int or not -_LIMIT < e < _LIMIT:
                    e = _ns(e, name, "end_ns")
                if e < s:
                    raise TimestampError(f"stream {name!r}: interval ends ({e} ns) before it starts ({s} ns)")
        except AttributeError:
            want = "pts_ns" if kind == _POINT else "start_ns/end_ns (or pts_ns/end_ns)"
            raise TimestampError(
                f"stream {name!r}: {type(item).__name__} item has no {want}"
            ) from None
        value = None
        if st.value_fn is not None:
            value = np.asarray(st.value_fn(item), dtype=np.float32)  # copied into the buffer below
            if value.ndim != 1:
                value = value.reshape(-1) if value.ndim == 0 else value
                if value.ndim != 1:
                    raise ConfigError(
                        f"stream {name!r}: value_fn must return a 1-D array, got shape {value.shape}"
                    )
        elif st.grid_n:
            raise ConfigError(f"stream {name!r} has grid_hz but no value_fn to give values")
        with self._lock:
            st.claim_feed(_FEED_ITEMS)
            if value is not None:
                if st.dim != value.shape[0]:
                    st.set_dim(value.shape[0])
            self._route(st, s, e, item, value)

    def _resolve_kind(self, st: _Stream, item: Any) -> int:
        has = lambda a: hasattr(item, a)  # noqa: E731
        if has("end_ns") and (has("start_ns") or has("pts_ns")):
            kind = _INTERVAL
        elif has("pts_ns"):
            kind = _POINT
        else:
            raise TimestampError(
                f"stream {st.name!r}: {type(item).__name__} item has neither pts_ns nor start_ns/end_ns"
            )
        with self._lock:
            if st.kind == _UNKNOWN:
                st.kind = kind
            if st.kind == _INTERVAL and st.mode != K.MODE_HOLD:
                raise ConfigError(f"stream {st.name!r}: interval streams resample with 'hold' only")
            return st.kind

    def _late_item(self, st: _Stream, item: Any, s: int, e: int, reason: str, missed: range,
                   included: bool, value: np.ndarray | None) -> None:
        st.n_late += 1
        self._n_late += 1
        if len(self._late) == self._late.maxlen:
            self._late_overflow += 1
        if value is not None:
            value = _readonly(np.array(value, dtype=np.float32))  # never alias a caller's buffer
        self._late.append(LateItem(st.name, item, s, e, reason, missed, included, value))

    def _route(self, st: _Stream, s: int, e: int, item: Any, value: np.ndarray | None) -> None:
        """Classify one item (under the lock) and buffer it if any open window takes it."""
        st.n_items += 1
        hz = e if e > s else s + 1
        if st.horizon is None or hz > st.horizon:
            st.horizon = hz
        w = st.watermark
        s0, hop = self._s0, self._hop
        hi = ((e - s0 - 1) if e > s else (s - s0)) // hop
        if w is not None and s < w:
            lo = max(0, (s - s0 - self._len) // hop + 1)
            missed = range(lo, hi + 1) if hi >= lo else range(0)
            self._late_item(st, item, s, e, "watermark", missed, False, value)
            return
        st.watermark = s
        if hi < 0:
            self._late_item(st, item, s, e, "before_start", range(0), False, value)
            return
        nxt = self._next
        if hi < nxt:
            lo = max(0, (s - s0 - self._len) // hop + 1)
            self._late_item(st, item, s, e, "emitted", range(lo, hi + 1), False, value)
            return
        if nxt:
            lo = (s - s0 - self._len) // hop + 1
            if lo < nxt:
                self._late_item(st, item, s, e, "emitted", range(max(lo, 0), nxt), True, value)
        st.append_one(s, e, value)
        if st.keep_items:
            st.items.append(item)
        b = st.size - st.head
        if b > st.max_buffered:
            st.max_buffered = b

    def push_array(
        self,
        stream: str,
        times_ns: Any,
        values: Any = None,
        *,
        end_ns: Any = None,
    ) -> int:
        """Add many items at once as arrays (the fast path; no item objects).

        Equivalent to pushing the elements one by one, in order.

        Args:
            stream: the stream's name.
            times_ns: (n,) int ns point times, or interval starts; non-decreasing.
            values: (n, d) float values (or (n,) for d = 1), or None.
            end_ns: (n,) int ns interval ends (intervals only), ``end >= start``.

        Returns:
            How many of the elements were late (see :meth:`take_late`).

        Raises:
            TimestampError: times not integer, NaN, decreasing within the call, beyond
                +-73 years, or an interval ending before it starts.
            ConfigError: unknown stream; a stream fed with items; value shape or
                kind mismatch; a grid stream without values.
            ClosedError: the stream has ended.
        """
        st = self._stream(stream)
        name = st.name
        times = K.check_times(times_ns, f"stream {name!r}: times_ns")
        K.check_sorted(times, f"stream {name!r}: times_ns")
        n = times.shape[0]
        if end_ns is not None:
            ends = K.check_times(end_ns, f"stream {name!r}: end_ns")
            if ends.shape != times.shape:
                raise TimestampError(f"stream {name!r}: end_ns has shape {ends.shape}, times_ns {times.shape}")
            if n and np.any(ends < times):
                bad = int(np.argmax(ends < times))
                raise TimestampError(
                    f"stream {name!r}: interval {bad} ends ({int(ends[bad])} ns) "
                    f"before it starts ({int(times[bad])} ns)"
                )
        else:
            ends = None
        vals = None if values is None else K.check_values(values, n, f"stream {name!r}: values")
        if vals is None and st.grid_n:
            raise ConfigError(f"stream {name!r} has grid_hz; push_array needs values")
        with self._lock:
            st.claim_feed(_FEED_ARRAYS)
            want = _INTERVAL if ends is not None else _POINT
            if st.kind == _UNKNOWN:
                if want == _INTERVAL and st.mode != K.MODE_HOLD:
                    raise ConfigError(f"stream {name!r}: interval streams resample with 'hold' only")
                st.kind = want
            elif st.kind != want:
                raise ConfigError(
                    f"stream {name!r} holds {_KIND_NAMES[st.kind]}s; "
                    + ("pass end_ns for intervals" if st.kind == _INTERVAL else "end_ns is for intervals")
                )
            if vals is not None:
                st.set_dim(vals.shape[1])
            elif st.dim:
                raise ConfigError(f"stream {name!r} carries {st.dim} values per item; pass values")
            if not n:
                return 0
            return self._route_arrays(st, times, ends, vals)

    def _route_arrays(self, st: _Stream, s: np.ndarray, e: np.ndarray | None, vals: np.ndarray | None) -> int:
        n = s.shape[0]
        st.n_items += n
        s0, hop, length = self._s0, self._hop, self._len
        interval = e is not None
        ee = e if interval else s
        hz = np.where(ee > s, ee, s + 1)
        hz_max = int(hz.max())
        if st.horizon is None or hz_max > st.horizon:
            st.horizon = hz_max
        hi = np.where(ee > s, ee - s0 - 1, s - s0) // hop
        lo = np.maximum((s - s0 - length) // hop + 1, 0)
        w = st.watermark
        wm_late = (s < w) if w is not None else np.zeros(n, bool)
        if not wm_late.all():
            st.watermark = int(s[-1])
        nxt = self._next
        ok = ~wm_late
        before = ok & (hi < 0)
        emitted = ok & ~before & (hi < nxt)
        accepted = ok & ~before & ~emitted
        partial = accepted & (lo < nxt)
        late_mask = wm_late | before | emitted | partial
        n_late = int(np.count_nonzero(late_mask))
        if n_late:
            for i in np.flatnonzero(late_mask).tolist():
                si, ei = int(s[i]), int(ee[i])
                v = vals[i] if vals is not None else None
                lo_i, hi_i = int(lo[i]), int(hi[i])
                if wm_late[i]:
                    missed = range(lo_i, hi_i + 1) if hi_i >= lo_i else range(0)
                    self._late_item(st, None, si, ei, "watermark", missed, False, v)
                elif before[i]:
                    self._late_item(st, None, si, ei, "before_start", range(0), False, v)
                elif emitted[i]:
                    self._late_item(st, None, si, ei, "emitted", range(lo_i, hi_i + 1), False, v)
                else:
                    self._late_item(st, None, si, ei, "emitted", range(lo_i, nxt), True, v)
        if accepted.all():
            a_s, a_e, a_v = s, ee, vals
        else:
            a_s, a_e = s[accepted], ee[accepted]
            a_v = vals[accepted] if vals is not None else None
        if a_v is None:
            a_v = np.zeros((a_s.shape[0], st.values.shape[1]), np.float32)
        st.append(a_s, a_e, a_v)
        b = st.buffered
        if b > st.max_buffered:
            st.max_buffered = b
        return n_late

    def advance_watermark(self, stream: str, t_ns: int) -> None:
        """Promise that no item earlier than ``t_ns`` will follow on ``stream``.

        A value lower than the stream's current watermark changes nothing.

        Raises:
            ConfigError: unknown stream.
            TimestampError: ``t_ns`` is not an int number of ns.
            ClosedError: the stream has ended.
        """
        st = self._stream(stream)
        t = _ns(t_ns, st.name, "watermark")
        with self._lock:
            if st.ended:
                raise ClosedError(f"stream {st.name!r} has ended; its watermark cannot move")
            if st.watermark is None or t > st.watermark:
                st.watermark = t
            if st.horizon is None or t > st.horizon:
                st.horizon = t

    def end_stream(self, stream: str) -> None:
        """Declare that ``stream`` has no more items (its watermark becomes infinite).

        Idempotent. Once every stream has ended, :meth:`poll` returns the remaining
        windows that start before the last item's end or the last watermark.
        """
        st = self._stream(stream)
        with self._lock:
            if not st.ended:
                st.ended = True
                self._n_ended += 1

    # -- output -----------------------------------------------------------------

    def _now(self, now_ns: int | None) -> int | None:
        if now_ns is not None:
            return _ns(now_ns, "<clock>", "now_ns")
        if not self._budgeted:
            return None
        if self._clock is None:
            from ..sources import default_session_clock

            self._clock = default_session_clock().now_ns
        return _ns(self._clock(), "<clock>", "clock()")

    def ready_until(self, now_ns: int | None = None) -> int:
        """Index of the last window that :meth:`poll` would emit now, or ``next - 1``."""
        with self._lock:
            return self._last_ready(self._now(now_ns))

    def _last_ready(self, now: int | None) -> int:
        s0, hop, length = self._s0, self._hop, self._len
        if self._n_ended == len(self._order):
            horizon = None
            for st in self._order:
                if st.horizon is not None and (horizon is None or st.horizon > horizon):
                    horizon = st.horizon
            if horizon is None:
                return self._next - 1
            return (horizon - s0 - 1) // hop  # last window starting before the horizon
        ready = None
        for st in self._order:
            if st.ended:
                continue
            r = st.watermark
            if st.budget_ns is not None and now is not None:
                rb = now - st.budget_ns
                if r is None or rb > r:
                    r = rb
            if r is None:
                return self._next - 1
            if ready is None or r < ready:
                ready = r
        assert ready is not None
        return (ready - s0 - length) // hop  # last window ending at or before `ready`

    def poll(self, now_ns: int | None = None) -> list[AlignedWindow]:
        """Emit the windows that are ready, in order.

        Args:
            now_ns: the session time to judge lateness budgets by; default: the
                clock (only read when some stream has a budget).

        Returns:
            The newly ready windows (often empty), consecutive by index.

        Raises:
            TimestampError: more than a million windows would come out at once (times
                that are not session times, such as epoch nanoseconds).
        """
        with self._lock:
            if self._finished:
                return []
            last = self._last_ready(self._now(now_ns))
            if last - self._next >= _MAX_WINDOWS_PER_POLL:
                raise TimestampError(
                    f"poll would emit {last - self._next + 1} windows at once (windows {self._next} to {last}, "
                    f"up to {(self._s0 + last * self._hop) / 1e9:.0f} s): are the times session nanoseconds "
                    "from the origin (not epoch times)? Otherwise poll more often"
                )
            out: list[AlignedWindow] = []
            while self._next <= last:
                stop = min(last, self._next + _BATCH_WINDOWS - 1)
                self._emit(self._next, stop, out)
            if self._n_ended == len(self._order):
                self._finished = True
                for st in self._order:  # release what is left
                    st.head = st.size
                    st.items = []
            return out

    def _emit(self, k0: int, k1: int, out: list[AlignedWindow]) -> None:
        s0, hop, length = self._s0, self._hop, self._len
        count = k1 - k0 + 1
        starts = s0 + hop * np.arange(k0, k1 + 1, dtype=np.int64)
        single = count == 1
        per_stream: list[list[StreamSlice]] = []
        ends_l = (starts + length).tolist()
        for st in self._order:
            if st.ended:
                complete = [True] * count
            else:
                w = st.watermark
                complete = [w is not None and end <= w for end in ends_l]
                st.n_incomplete += complete.count(False)
            per_stream.append(self._assemble(st, starts, single, complete))
        names = [st.name for st in self._order]
        for i in range(count):
            start = int(starts[i])
            streams = {name: per_stream[j][i] for j, name in enumerate(names)}
            window = AlignedWindow(k0 + i, start, start + length, streams)
            self._n_windows += 1
            if not all(sl.complete for sl in streams.values()):
                self._n_incomplete += 1
            out.append(window)
        self._next = k1 + 1
        if self._next - self._evicted_at >= _EVICT_EVERY:
            self._evicted_at = self._next
            next_start = s0 + hop * self._next
            for st in self._order:
                st.evict_before(next_start)

    def _assemble(self, st: _Stream, starts: np.ndarray, single: bool, complete: list[bool]) -> list[StreamSlice]:
        length = self._len
        times, ends, values = st.view()
        has_values = st.dim is not None or st.value_fn is not None
        grid_n = st.grid_n
        items = st.items if (st.keep_items and st.feed == _FEED_ITEMS) else None
        out: list[StreamSlice] = []
        name = st.name
        if st.kind == _INTERVAL:
            offsets, idx, overlap, covered, grid, mask = K._intervals_batch(
                times, ends, values, starts, length, grid_n
            )
            offsets = offsets.tolist()
            for i in range(starts.shape[0]):
                a, b = offsets[i], offsets[i + 1]
                sel = idx[a:b]
                g_times = g_vals = g_mask = None
                if grid_n:
                    g_times = _readonly(int(starts[i]) + st.grid_offsets)
                    g_vals = _readonly(grid[i] if single else grid[i].copy())
                    g_mask = _readonly(mask[i] if single else mask[i].copy())
                out.append(StreamSlice(
                    name, "interval",
                    tuple([items[j] for j in sel.tolist()]) if items is not None else (),
                    b - a,
                    _readonly(times[sel]),
                    _readonly(ends[sel]),
                    _readonly(overlap[a:b].copy()),
                    _readonly(values[sel]) if has_values else None,
                    float(covered[i]) / length,
                    complete[i],
                    g_times, g_vals, g_mask,
                ))
            return out
        lo, hi, covered, grid, mask = K._points_batch(
            times, values, starts, length, st.max_age_ns, grid_n, st.mode
        )
        lo_l, hi_l = lo.tolist(), hi.tolist()
        kind = _KIND_NAMES[st.kind]
        for i in range(starts.shape[0]):
            a, b = lo_l[i], hi_l[i]
            g_times = g_vals = g_mask = None
            if grid_n:
                g_times = _readonly(int(starts[i]) + st.grid_offsets)
                g_vals = _readonly(grid[i] if single else grid[i].copy())
                g_mask = _readonly(mask[i] if single else mask[i].copy())
            out.append(StreamSlice(
                name, kind,
                tuple(items[a:b]) if items is not None else (),
                b - a,
                _readonly(times[a:b].copy()) if b > a else _EMPTY_I64,
                None,
                None,
                _readonly(values[a:b].copy()) if has_values else None,
                float(covered[i]) / length,
                complete[i],
                g_times, g_vals, g_mask,
            ))
        return out


def synchronizer_for(
    window: WindowSpec,
    names: Sequence[str],
    specs: Iterable[StreamSpec] = (),
    *,
    clock: Clock | None = None,
    max_late: int = 10_000,
) -> Synchronizer:
    """Build a Synchronizer for ``names`` with the given specs (default spec for the rest).

    Raises:
        ConfigError: a spec names a stream not in ``names``.
    """
    by_name: dict[str, StreamSpec] = {}
    for spec in specs:
        if not isinstance(spec, StreamSpec):
            raise ConfigError(f"streams must be StreamSpec objects, got {spec!r}")
        if spec.name in by_name:
            raise ConfigError(f"two StreamSpecs for stream {spec.name!r}")
        by_name[spec.name] = spec
    unknown = sorted(set(by_name) - set(names))
    if unknown:
        raise ConfigError(f"StreamSpec for unknown input(s) {unknown}; the inputs are {list(names)}")
    return Synchronizer(window, [by_name.get(n, StreamSpec(n)) for n in names], clock=clock, max_late=max_late)

