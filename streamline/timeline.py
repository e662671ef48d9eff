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

    Rules, applied to each incoming time ``t`` (already on the session timeline)
    against the previous output ``prev`` and the expected next time
    ``expected = prev + prev_duration`` (``prev + 1`` ns when durations are unknown):

    * ``t is None`` (no PTS): output ``expected`` (``0`` for the first item), flagged
      :attr:`TimestampFlag.SYNTHESIZED`.
    * ``t == prev``: a duplicate; output ``expected``.
    * ``prev - reset_threshold_ns <= t < prev``: a backward step; output ``expected``.
    * ``t < prev - reset_threshold_ns``: the source reset; re-anchor so the stream
      continues at ``expected`` and later items keep their spacing.
    * ``t > expected + max_gap_ns``: a jump (e.g. to a wall-clock epoch); re-anchor
      the same way. Smaller gaps are real holes and are kept.
    * ``|t - expected| <= snap_ns``: snapped to ``expected`` (audio uses this so
      rounding in PTS does not make overlaps or micro-gaps between chunks).

    Repaired items are flagged :attr:`TimestampFlag.REPAIRED`. Counters are in
    :attr:`stats`. Not thread-safe: one repairer per stream, used by its producer.

    Args:
        max_gap_ns: largest forward step kept as a real gap (default 10 s).
        reset_threshold_ns: backward steps larger than this count as a reset (default 1 s).
        snap_ns: tolerance for snapping to the expected time (default 0: off).
    """

    def __init__(
        self,
        *,
        max_gap_ns: int = 10 * NS_PER_S,
        reset_threshold_ns: int = NS_PER_S,
        snap_ns: int = 0,
    ) -> None:
        if max_gap_ns <= 0 or reset_threshold_ns <= 0 or snap_ns < 0:
            raise ConfigError(
                "TimestampRepairer: max_gap_ns and reset_threshold_ns must be > 0 and snap_ns >= 0"
            )
        self._max_gap_ns = max_gap_ns
        self._reset_threshold_ns = reset_threshold_ns
        self._snap_ns = snap_ns
        self._offset_ns = 0
        self._prev_ns: int | None = None
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
            duration_ns: the item's duration (audio chunks; 0 for frames when unknown).
        """
        self.stats.items += 1
        flag = TimestampFlag.NONE
        if t_ns is None:
            self.stats.synthesized += 1
            out = 0 if self._prev_ns is None else self._expected()
            flag = TimestampFlag.SYNTHESIZED
        elif self._prev_ns is None:
            out = t_ns + self._offset_ns
        else:
            t = t_ns + self._offset_ns
            expected = self._expected()
            if self._snap_ns and abs(t - expected) <= self._snap_ns:
                out = expected
            elif t == self._prev_ns:
                self.stats.duplicates += 1
                out, flag = expected, TimestampFlag.REPAIRED
            elif t < self._prev_ns - self._reset_threshold_ns:
                self.stats.resets += 1
                self._offset_ns += expected - t
                out, flag = expected, TimestampFlag.REPAIRED
            elif t < self._prev_ns:
                self.stats.backwards += 1
                out, flag = expected, TimestampFlag.REPAIRED
            elif t > expected + self._max_gap_ns:
                self.stats.jumps += 1
                self._offset_ns += expected - t
                out, flag = expected, TimestampFlag.REPAIRED
            else:
                out = t
        self._prev_ns = out
        self._prev_duration_ns = max(duration_ns, 0)
        return out, flag


class DeviceClockModel:
    """Map a device's capture timestamps onto the session clock.

    A device stamps items on its own clock (a v4l2 buffer time, an ALSA sample
    count, a lavfi PTS). The session sees them arrive at ``arrival_ns`` on its
    own clock, always *after* capture. The model keeps

        session_ns = device_ns * (1 + drift) + offset_ns

    where ``offset_ns`` tracks the lower envelope of ``arrival - device`` (the
    smallest observed delivery delay, which is the closest to pure clock offset)
    and ``drift`` is the slope of that envelope over the last ``window`` items
    (so audio and video from different crystals stay aligned over long sessions).
    This is the approach of Lab Streaming Layer's clock offsets, reduced to one
    process.

    Args:
        window: how many recent (device, arrival) pairs the fit uses.
    """

    def __init__(self, *, window: int = 256) -> None:
        if window < 2:
            raise ConfigError(f"DeviceClockModel: window must be >= 2, got {window}")
        self._pairs: deque[tuple[int, int]] = deque(maxlen=window)
        self._offset_ns: int | None = None
        self._drift = 0.0
        self._anchor_device_ns = 0

    @property
    def offset_ns(self) -> int | None:
        """Current offset (session - device) at the anchor, or None before the first item."""
        return self._offset_ns

    @property
    def drift_ppm(self) -> float:
        """Estimated drift of the device clock against the session clock, parts per million."""
        return self._drift * 1e6

    def map(self, device_ns: int, arrival_ns: int) -> int:
        """Return the session time of an item stamped ``device_ns`` that arrived at ``arrival_ns``."""
        if self._offset_ns is None:
            self._anchor_device_ns = device_ns
            self._offset_ns = arrival_ns - device_ns
        self._pairs.append((device_ns, arrival_ns - device_ns))
        # Lower envelope: the smallest delay seen is the best offset estimate.
        min_delay = min(delay for _, delay in self._pairs)
        if min_delay < self._offset_ns:
            self._offset_ns = min_delay
        if len(self._pairs) == self._pairs.maxlen:
            first_dev, first_delay = self._pairs[0]
            last_dev, _ = self._pairs[-1]
            span = last_dev - first_dev
            if span > NS_PER_S:
                half = len(self._pairs) // 2
                early = min(d for _, d in list(self._pairs)[:half])
                late = min(d for _, d in list(self._pairs)[half:])
                self._drift = (late - early) / (span / 2)
        return int(device_ns + self._offset_ns + self._drift * (device_ns - self._anchor_device_ns))
