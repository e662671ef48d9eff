"""The session timeline: int64 nanoseconds, conversions and ingress repair.

Every item in streamline carries its time as an int number of nanoseconds from
the session origin. Files map ``PTS x time_base`` onto it exactly (rational
arithmetic, rounded to the nearest ns) and rebase so the earliest stream start
is 0. Live devices map their capture timestamps onto the session clock with a
per-source :class:`DeviceClockModel`.

:class:`TimestampRepairer` sits at the ingress of every source and guarantees
that nothing downstream sees a non-increasing time on one stream.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from .errors import ConfigError, TimestampError
from .types import TimestampFlag

__all__ = [
    "NS_PER_S",
    "Clock",
    "monotonic_clock",
    "seconds_to_ns",
    "ns_to_seconds",
    "pts_to_ns",
    "TimestampStats",
    "TimestampRepairer",
    "DeviceClockModel",
]

NS_PER_S = 1_000_000_000

#: A clock returns the current time in int nanoseconds (monotonic, arbitrary origin).
Clock = Callable[[], int]


def is_whole_multiple(x_s: float, step_s: float) -> bool:
    """True when ``x_s`` is one or more whole steps of ``step_s`` (to 1e-6 of a step); False for NaN/inf."""
    n = x_s / step_s
    return math.isfinite(n) and round(n) >= 1 and abs(n - round(n)) < 1e-6


def monotonic_clock() -> int:
    """The default session clock: :func:`time.monotonic_ns`."""
    return time.monotonic_ns()


def seconds_to_ns(seconds: float, *, name: str = "seconds") -> int:
    """Convert float seconds to int nanoseconds (rounded to nearest).

    Raises:
        TimestampError: ``seconds`` is NaN or infinite (``name`` is used in the message).
    """
    if not math.isfinite(seconds):
        raise TimestampError(f"{name} must be a finite number of seconds, got {seconds!r}")
    return int(round(seconds * NS_PER_S))


def ns_to_seconds(ns: int) -> float:
    """Convert int nanoseconds to float seconds."""
    return ns / NS_PER_S


def pts_to_ns(pts: int, time_base: Fraction) -> int:
    """Exact ``pts x time_base`` in nanoseconds, rounded half away from zero.

    Args:
        pts: an integer timestamp in units of ``time_base``.
        time_base: the stream's time base (seconds per unit), e.g. ``Fraction(1, 90000)``.
    """
    value = Fraction(pts) * time_base * NS_PER_S
    # round() on a Fraction rounds half to even; media code expects half away from zero.
    return int(math.floor(value + Fraction(1, 2))) if value >= 0 else -int(math.floor(-value + Fraction(1, 2)))


@dataclass(slots=True)
class TimestampStats:
    """Counts of timestamp anomalies repaired on one stream.

    Attributes:
        items: items seen.
        synthesized: items that had no timestamp (time synthesized from the nominal period).
        duplicates: items whose time equalled the previous one.
        backwards: items whose time went backwards by less than the reset threshold.
        resets: backward steps larger than the reset threshold (the source restarted).
        jumps: forward steps larger than the maximum gap (e.g. a switch to a wall-clock epoch).
    """

    items: int = 0
    synthesized: int = 0
    duplicates: int = 0
    backwards: int = 0
    resets: int = 0
    jumps: int = 0

    @property
    def repaired(self) -> int:
        """Items whose time was changed (all anomalies except synthesis)."""
        return self.duplicates + self.backwards + self.resets + self.jumps

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for JSON and logs)."""
        return {
            "items": self.items,
            "synthesized": self.synthesized,
            "duplicates": self.duplicates,
            "backwards": self.backwards,
            "resets": self.resets,
            "jumps": self.jumps,
        }


class TimestampRepairer:
    """Make one stream's times strictly increasing, counting what was repaired.

    Each incoming time ``t`` (already on the session timeline) is compared with
    the previous output ``prev`` and ``expected = prev + prev_duration``
    (``prev + 1`` ns when durations are unknown):

    * ``t is None`` (no PTS): output ``expected`` (``0`` for the first item),
      flagged :attr:`TimestampFlag.SYNTHESIZED`.
    * ``t`` equal to the previous *input* (a duplicate), or at most
      ``jitter_ns`` behind ``prev``: output ``prev + 1`` ns. Only that item moves;
      the items after it keep their own times.
    * ``t`` further back, by up to ``reset_threshold_ns``: a backward step (e.g.
      two recordings spliced). Re-anchor so the stream continues at ``expected``
      and later items keep their spacing; counted once.
    * ``t`` back by more than ``reset_threshold_ns``: the source reset; re-anchor
      the same way, counted as a reset.
    * ``t > expected + max_gap_ns``: a jump (e.g. to a wall-clock epoch); re-anchor.
      Smaller forward steps are real holes and are kept.
    * ``|t - expected| <= snap_ns``: snapped to ``expected`` (audio: PTS rounding
      must not make micro-gaps or overlaps between contiguous chunks).

    Moved items are flagged :attr:`TimestampFlag.REPAIRED`. Counters are in
    :attr:`stats`. Not thread-safe: one repairer per stream, used by its producer.

    Args:
        max_gap_ns: largest forward step kept as a real gap (default 10 s).
        reset_threshold_ns: backward steps larger than this count as a reset (default 1 s).
        jitter_ns: backward steps up to this are nudged, not re-anchored (default 1 ms).
        snap_ns: tolerance for snapping to the expected time (default 0: off).
    """

    def __init__(
        self,
        *,
        max_gap_ns: int = 10 * NS_PER_S,
        reset_threshold_ns: int = NS_PER_S,
        jitter_ns: int = 1_000_000,
        snap_ns: int = 0,
    ) -> None:
        if max_gap_ns <= 0 or reset_threshold_ns <= 0 or snap_ns < 0 or jitter_ns < 0:
            raise ConfigError(
                "TimestampRepairer: max_gap_ns and reset_threshold_ns must be > 0; jitter_ns and snap_ns >= 0"
            )
        self._max_gap_ns = max_gap_ns
        self._reset_threshold_ns = reset_threshold_ns
        self._jitter_ns = jitter_ns
        self._snap_ns = snap_ns
        self._offset_ns = 0
        self._prev_ns: int | None = None
        self._prev_in_ns: int | None = None
        self._prev_duration_ns = 0
        self.stats = TimestampStats()

    @property
    def last_ns(self) -> int | None:
        """The last time output, or None before the first item."""
        return self._prev_ns

    def _expected(self) -> int:
        assert self._prev_ns is not None
        return self._prev_ns + max(self._prev_duration_ns, 1)

    def repair(self, t_ns: int | None, duration_ns: int = 0) -> tuple[int, TimestampFlag]:
        """Return the repaired time for the next item and how it was obtained.

        Args:
            t_ns: the item's time on the session timeline, or None if it has none.
            duration_ns: the item's duration (used to synthesize and re-anchor; 0 if unknown).
        """
        self.stats.items += 1
        flag = TimestampFlag.NONE
        if t_ns is None:
            self.stats.synthesized += 1
            out = 0 if self._prev_ns is None else self._expected()
            flag = TimestampFlag.SYNTHESIZED
            self._prev_in_ns = None
        elif self._prev_ns is None:
            out = t_ns + self._offset_ns
            self._prev_in_ns = out
        else:
            t = t_ns + self._offset_ns
            prev, expected = self._prev_ns, self._expected()
            if self._snap_ns and abs(t - expected) <= self._snap_ns:
                out = expected
            elif t <= prev and (t == self._prev_in_ns or prev - t <= self._jitter_ns):
                if t == self._prev_in_ns:
                    self.stats.duplicates += 1
                else:
                    self.stats.backwards += 1
                out, flag = prev + 1, TimestampFlag.REPAIRED
            elif t <= prev:
                if prev - t > self._reset_threshold_ns:
                    self.stats.resets += 1
                else:
                    self.stats.backwards += 1
                self._offset_ns += expected - t
                t = expected
                out, flag = expected, TimestampFlag.REPAIRED
            elif t > expected + self._max_gap_ns:
                self.stats.jumps += 1
                self._offset_ns += expected - t
                t = expected
                out, flag = expected, TimestampFlag.REPAIRED
            else:
                out = t
            self._prev_in_ns = t
        self._prev_ns = out
        self._prev_duration_ns = max(duration_ns, 0)
        return out, flag


class DeviceClockModel:
    """Map a device's capture timestamps onto the session clock.

    A device stamps items on its own clock (a v4l2 buffer time, ALSA wall-clock
    microseconds, a lavfi PTS). The session sees them arrive at ``arrival_ns`` on
    its own clock, always *after* capture. The model is

        session_ns = device_ns + offset_ns + drift * (device_ns - anchor_ns)

    * ``drift``: the slope of a least-squares line through the per-second minima
      of ``arrival - device`` over the last ``history_s`` seconds (the smallest
      delivery delay in each second is the closest to pure clock offset);
    * ``offset_ns``: the smallest drift-corrected delay among the last ``window``
      items (so a late burst never moves the mapping, and a clock step is
      followed within ``window`` items).

    This is Lab Streaming Layer's idea of clock offsets from the delay envelope,
    reduced to one process. The fixed part of the delivery latency cannot be
    observed and stays in the mapping (items look that much late).

    Args:
        window: recent items used for the offset.
        history_s: seconds of per-second minima used for the drift.
    """

    def __init__(self, *, window: int = 256, history_s: int = 300) -> None:
        if window < 2 or history_s < 4:
            raise ConfigError(f"DeviceClockModel: need window >= 2 and history_s >= 4, got {window}, {history_s}")
        self._pairs: deque[tuple[int, int]] = deque(maxlen=window)
        self._envelope: deque[tuple[int, int]] = deque(maxlen=history_s)
        self._bucket: int | None = None
        self._bucket_min: tuple[int, int] | None = None
        self._offset_ns: int | None = None
        self._drift = 0.0
        self._anchor_device_ns = 0

    @property
    def offset_ns(self) -> int | None:
        """Current offset (session - device) at the anchor, or None before the first item."""
        return self._offset_ns

    @property
    def drift_ppm(self) -> float:
        """Estimated rate error of the device clock against the session clock, parts per million."""
        return self._drift * 1e6

    def _update_drift(self, device_ns: int, delay_ns: int) -> None:
        bucket = device_ns // NS_PER_S
        if bucket != self._bucket:
            if self._bucket_min is not None:
                self._envelope.append(self._bucket_min)
                if len(self._envelope) >= 5 and self._envelope[-1][0] - self._envelope[0][0] >= 4 * NS_PER_S:
                    t0 = self._envelope[0][0]
                    xs = [(t - t0) / NS_PER_S for t, _ in self._envelope]
                    ys = [float(d) for _, d in self._envelope]
                    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
                    sxx = sum((x - mx) ** 2 for x in xs)
                    if sxx > 0:
                        slope_ns_per_s = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
                        self._drift = slope_ns_per_s / NS_PER_S
            self._bucket, self._bucket_min = bucket, (device_ns, delay_ns)
        elif self._bucket_min is None or delay_ns < self._bucket_min[1]:
            self._bucket_min = (device_ns, delay_ns)

    def map(self, device_ns: int, arrival_ns: int) -> int:
        """Return the session time of an item stamped ``device_ns`` that arrived at ``arrival_ns``."""
        if self._offset_ns is None:
            self._anchor_device_ns = device_ns
        delay_ns = arrival_ns - device_ns
        self._pairs.append((device_ns, delay_ns))
        self._update_drift(device_ns, delay_ns)
        anchor, drift = self._anchor_device_ns, self._drift
        self._offset_ns = int(min(delay - drift * (dev - anchor) for dev, delay in self._pairs))
        return int(device_ns + self._offset_ns + drift * (device_ns - anchor))
