"""Settings and results of the synchronizer: frozen, slotted dataclasses.

Settings (:class:`WindowSpec`, :class:`StreamSpec`) are hashable and printable
and are checked when made; results (:class:`AlignedWindow`, :class:`StreamSlice`,
:class:`LateItem`, :class:`SyncStats`) are immutable snapshots whose arrays are
read-only. All times are int nanoseconds on the session timeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

import numpy as np

from ..errors import ConfigError
from ..timeline import NS_PER_S
from ._kernels import INFINITE_AGE_NS, MODES, TIME_LIMIT_NS

__all__ = [
    "WindowSpec",
    "StreamSpec",
    "Watermark",
    "StreamSlice",
    "AlignedWindow",
    "LateItem",
    "StreamStats",
    "SyncStats",
]

Kind = Literal["auto", "point", "interval"]
Resample = Literal["hold", "nearest", "linear"]


def _seconds(value: Any, name: str, *, allow_zero: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    ns = int(round(value * NS_PER_S))
    if ns < 0 or (ns == 0 and not allow_zero):
        raise ConfigError(f"{name} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}")
    if ns >= TIME_LIMIT_NS:
        raise ConfigError(f"{name} is too large: {value!r} s")
    return ns


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Sliding windows on the session timeline.

    Window ``k >= 0`` is ``[start + k * hop, start + k * hop + length)``: start
    inclusive, end exclusive, aligned to ``start_s`` (the session origin by default).

    Attributes:
        length_s: window length in seconds, > 0.
        hop_s: distance between window starts in seconds, ``0 < hop_s <= length_s``
            (a hop longer than the length would leave gaps whose items belong to no
            window, so it is refused).
        start_s: start of window 0 in session seconds (default 0.0). Items wholly
            before it belong to no window and go to the late stream (reason
            ``"before_start"``).

    Raises:
        ConfigError: a non-finite, non-positive or too large length or hop, or
            ``hop_s > length_s``. Both are rounded to whole nanoseconds first.
    """

    length_s: float
    hop_s: float
    start_s: float = 0.0

    def __post_init__(self) -> None:
        length = _seconds(self.length_s, "WindowSpec.length_s", allow_zero=False)
        hop = _seconds(self.hop_s, "WindowSpec.hop_s", allow_zero=False)
        if hop > length:
            raise ConfigError(
                f"WindowSpec.hop_s ({self.hop_s}) must not exceed length_s ({self.length_s}): "
                "items between windows would belong to none"
            )
        start = self.start_s
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not math.isfinite(start):
            raise ConfigError(f"WindowSpec.start_s must be a finite number of seconds, got {self.start_s!r}")
        if abs(self.start_s) * NS_PER_S >= TIME_LIMIT_NS / 2:
            raise ConfigError(f"WindowSpec.start_s is too large: {self.start_s!r}")

    @property
    def length_ns(self) -> int:
        """Window length, int ns."""
        return int(round(self.length_s * NS_PER_S))

    @property
    def hop_ns(self) -> int:
        """Hop, int ns."""
        return int(round(self.hop_s * NS_PER_S))

    @property
    def start_ns(self) -> int:
        """Start of window 0, int ns."""
        return int(round(self.start_s * NS_PER_S))

    def window_start_ns(self, index: int) -> int:
        """Start of window ``index``, int ns."""
        return self.start_ns + index * self.hop_ns

    def windows_of(self, start_ns: int, end_ns: int | None = None) -> range:
        """Indices of the windows an item belongs to (possibly empty).

        Args:
            start_ns: the item's time (a point) or start (an interval).
            end_ns: the interval's end, or None for a point. A zero-length
                interval belongs where a point at ``start_ns`` would.
        """
        s0, hop, length = self.start_ns, self.hop_ns, self.length_ns
        if end_ns is None or end_ns <= start_ns:
            hi = (start_ns - s0) // hop
        else:
            hi = (end_ns - s0 - 1) // hop
        lo = max(0, (start_ns - s0 - length) // hop + 1)
        return range(lo, hi + 1) if hi >= lo else range(0)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """How one named input stream is read.

    Attributes:
        name: the stream's name (a key of :attr:`AlignedWindow.streams`).
        kind: ``"point"`` (an item sits at ``pts_ns``), ``"interval"`` (an item spans
            ``[start_ns, end_ns)``, or ``[pts_ns, end_ns)`` for items such as
            :class:`~streamline.types.AudioChunk` that have a ``pts_ns`` and an
            ``end_ns``), or ``"auto"`` (decided by the first item: ``start_ns`` and
            ``end_ns`` -> interval; ``pts_ns`` and ``end_ns`` -> interval; ``pts_ns``
            alone -> point; for :meth:`Synchronizer.push_array` an ``end_ns``
            argument means intervals).
        lateness_budget_s: live mode: once the session clock passes a window's end
            plus this many seconds, the window is emitted without waiting for this
            stream's watermark and is marked incomplete for it. None: wait for the
            watermark (or the end of the stream) however long it takes.
        value_fn: ``item -> 1-D float array`` of features (fixed length per stream;
            a scalar counts as length 1). With it, each window carries the values as a
            (n, d) float32 array beside the times. Called outside the lock, once per item.
        dim: values per item (d). Optional: by default the first item's values set
            it; give it so that windows before the first item (a face never seen)
            already carry (0, d) values and a (G, d) grid.
        grid_hz: resample the values onto ``round(length_s * grid_hz)`` evenly spaced
            grid points per window (``length_s * grid_hz`` must be a whole number).
            Needs values (``value_fn`` or :meth:`Synchronizer.push_array` with values).
        resample: ``"hold"`` (last value at or before the grid point), ``"nearest"``
            (nearer of that and the next one inside the window) or ``"linear"``
            (interpolated between them). Interval streams only support ``"hold"``
            (the value of the interval covering the grid point).
        max_age_s: points: how long a value stays valid, in seconds (None: forever).
            It bounds the hold/nearest/linear reach and defines coverage: a point at
            ``t`` covers ``[t, t + max_age)``. Ignored for intervals, which cover
            exactly their span. Default 0.25 s: streams of 4 Hz or faster cover their
            windows fully and gaps longer than a quarter second show.
        keep_items: keep the item objects in the windows (``StreamSlice.items``).
            False saves memory on high-rate streams whose values are all you need.

    Raises:
        ConfigError: an empty name or an invalid setting.
    """

    name: str
    kind: Kind = "auto"
    lateness_budget_s: float | None = None
    value_fn: Callable[[Any], Any] | None = field(default=None, compare=False)
    dim: int | None = None
    grid_hz: float | None = None
    resample: Resample = "hold"
    max_age_s: float | None = 0.25
    keep_items: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"StreamSpec.name must be a non-empty string, got {self.name!r}")
        where = f"stream {self.name!r}"
        if self.kind not in ("auto", "point", "interval"):
            raise ConfigError(f"{where}: kind must be 'auto', 'point' or 'interval', got {self.kind!r}")
        if self.lateness_budget_s is not None:
            _seconds(self.lateness_budget_s, f"{where}: lateness_budget_s", allow_zero=True)
        if self.value_fn is not None and not callable(self.value_fn):
            raise ConfigError(f"{where}: value_fn must be callable, got {self.value_fn!r}")
        dim = self.dim
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ConfigError(f"{where}: dim must be an int >= 1, got {self.dim!r}")
        if self.grid_hz is not None:
            if isinstance(self.grid_hz, bool) or not isinstance(self.grid_hz, (int, float)) \
                    or not math.isfinite(self.grid_hz) or self.grid_hz <= 0:
                raise ConfigError(f"{where}: grid_hz must be a finite number > 0, got {self.grid_hz!r}")
        if self.resample not in MODES:
            raise ConfigError(f"{where}: resample must be one of {sorted(MODES)}, got {self.resample!r}")
        if self.kind == "interval" and self.resample != "hold":
            raise ConfigError(f"{where}: interval streams resample with 'hold' only, got {self.resample!r}")
        if self.max_age_s is not None:
            _seconds(self.max_age_s, f"{where}: max_age_s", allow_zero=True)

    @property
    def lateness_budget_ns(self) -> int | None:
        """The lateness budget in int ns, or None."""
        return None if self.lateness_budget_s is None else int(round(self.lateness_budget_s * NS_PER_S))

    @property
    def max_age_ns(self) -> int:
        """The maximum age in int ns (2**61 for None, i.e. unbounded)."""
        return INFINITE_AGE_NS if self.max_age_s is None else int(round(self.max_age_s * NS_PER_S))

    def grid_points(self, length_s: float) -> int:
        """Grid points per window of ``length_s`` seconds (0 without ``grid_hz``).

        Raises:
            ConfigError: ``length_s * grid_hz`` is not a whole number >= 1.
        """
        if self.grid_hz is None:
            return 0
        exact = length_s * self.grid_hz
        n = int(round(exact))
        if n < 1 or abs(exact - n) > 1e-6 * max(1.0, exact):
            raise ConfigError(
                f"stream {self.name!r}: length_s x grid_hz = {length_s} x {self.grid_hz} = {exact} "
                "must be a whole number of grid points"
            )
        return n


@dataclass(frozen=True, slots=True)
class Watermark:
    """A stream's promise that no item earlier than ``t_ns`` will follow.

    Put it into an input Observable of :func:`synchronize` (or pass it to
    :meth:`Synchronizer.push`) to let windows close during a silence (no words,
    no face) instead of waiting for the next item or a lateness budget.

    Attributes:
        t_ns: session time, int ns. Watermarks never go back: a lower value than
            the stream's current watermark changes nothing.
    """

    t_ns: int


@dataclass(frozen=True, slots=True, eq=False)
class StreamSlice:
    """One stream's part of one window.

    Items are ordered by time (interval start), then by arrival. All arrays are
    read-only.

    Attributes:
        name: the stream.
        kind: ``"point"`` or ``"interval"`` (``"point"`` for a stream that never
            received an item).
        items: the item objects (empty for streams fed with arrays or with
            ``keep_items=False``).
        count: number of items in the window (``len(times_ns)``).
        times_ns: (count,) int64: the points' times, or the intervals' starts.
        end_ns: (count,) int64 interval ends, or None for points.
        overlap_ns: (count,) int64 overlap of each interval with the window, or None
            for points. Zero for zero-length intervals.
        values: (count, d) float32 values, or None for a stream without values (no
            ``value_fn``, ``dim`` or array values). ``d`` is 0 until known.
        coverage: fraction of the window with data, in [0, 1]: the union of the
            intervals, or of ``[t, t + max_age)`` for points (the carry-in point
            from before the window included), clipped to the window, over its length.
        complete: True when the stream's watermark had passed the window's end (or
            the stream had ended) at emission; False when a lateness budget let the
            window go without it.
        grid_times_ns: (G,) int64 grid times, or None without ``grid_hz``.
        grid_values: (G, d) float32 resampled values (0.0 where invalid), or None.
        grid_mask: (G,) bool, True where ``grid_values`` is valid, or None.
    """

    name: str
    kind: str
    items: tuple[Any, ...]
    count: int
    times_ns: np.ndarray
    end_ns: np.ndarray | None
    overlap_ns: np.ndarray | None
    values: np.ndarray | None
    coverage: float
    complete: bool
    grid_times_ns: np.ndarray | None = None
    grid_values: np.ndarray | None = None
    grid_mask: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        """True when no item falls in the window."""
        return self.count == 0


@dataclass(frozen=True, slots=True, eq=False)
class AlignedWindow:
    """The streams' data for one window ``[start_ns, end_ns)``.

    Attributes:
        index: window number k (``start_ns = start + k * hop``); consecutive, from 0.
        start_ns: window start, int ns (inclusive).
        end_ns: window end, int ns (exclusive).
        streams: name -> :class:`StreamSlice`, every configured stream, in
            configuration order. Treat as read-only.
    """

    index: int
    start_ns: int
    end_ns: int
    streams: dict[str, StreamSlice]

    def __getitem__(self, name: str) -> StreamSlice:
        return self.streams[name]

    @property
    def complete(self) -> bool:
        """True when every stream was complete for this window."""
        return all(s.complete for s in self.streams.values())

    @property
    def incomplete_streams(self) -> tuple[str, ...]:
        """Names of the streams emitted without their full data (lateness budget)."""
        return tuple(name for name, s in self.streams.items() if not s.complete)

    @property
    def start_s(self) -> float:
        """``start_ns`` in seconds."""
        return self.start_ns / NS_PER_S

    @property
    def end_s(self) -> float:
        """``end_ns`` in seconds."""
        return self.end_ns / NS_PER_S


@dataclass(frozen=True, slots=True, eq=False)
class LateItem:
    """An item that missed one or more windows it belongs to.

    Late data is data: it is reported here, counted, and never reopens a window.

    Attributes:
        stream: the stream it came on.
        item: the item object, or None when it came in an array (see ``value``).
        start_ns: its time (point) or start (interval), int ns.
        end_ns: its end (interval), or ``start_ns`` for a point.
        reason: ``"watermark"``: its time was before the stream's own watermark
            (the stream broke its promise), so it goes into no window at all;
            ``"emitted"``: windows it belongs to were already emitted (a lateness
            budget ran out), it still went into the open ones when ``included``;
            ``"before_start"``: it lies wholly before window 0.
        missed_windows: indices of the windows it belongs to but is not part of.
        included: True when it was also put into windows still open.
        value: its value row (d,) float32 when it came in an array with values, else None.
    """

    stream: str
    item: Any
    start_ns: int
    end_ns: int
    reason: str
    missed_windows: range
    included: bool = False
    value: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class StreamStats:
    """Counters of one stream (a snapshot).

    Attributes:
        items: items received (array elements count one each), watermarks excluded.
        late: items reported as late (including partly late ones).
        buffered: items held now for windows still open.
        max_buffered: the most items held at once.
        incomplete_windows: windows emitted without this stream's full data.
        watermark_ns: the stream's watermark, or None before its first item or watermark.
        ended: True after ``end_stream`` (or the input's completion).
    """

    items: int
    late: int
    buffered: int
    max_buffered: int
    incomplete_windows: int
    watermark_ns: int | None
    ended: bool


@dataclass(frozen=True, slots=True)
class SyncStats:
    """Counters of a synchronizer (a snapshot).

    Attributes:
        windows: windows emitted.
        incomplete_windows: windows emitted with at least one stream incomplete.
        late: late items reported (all streams).
        late_overflow: late items discarded because nobody took them from a full
            late queue (see ``Synchronizer(max_late=...)``).
        next_window: index of the next window to emit.
        streams: name -> :class:`StreamStats`.
    """

    windows: int
    incomplete_windows: int
    late: int
    late_overflow: int
    next_window: int
    streams: Mapping[str, StreamStats]

    def as_dict(self) -> dict[str, Any]:
        """The counters as plain JSON-able values."""
        return {
            "windows": self.windows,
            "incomplete_windows": self.incomplete_windows,
            "late": self.late,
            "late_overflow": self.late_overflow,
            "next_window": self.next_window,
            "streams": {
                name: {
                    "items": s.items,
                    "late": s.late,
                    "buffered": s.buffered,
                    "max_buffered": s.max_buffered,
                    "incomplete_windows": s.incomplete_windows,
                    "watermark_ns": s.watermark_ns,
                    "ended": s.ended,
                }
                for name, s in self.streams.items()
            },
        }
