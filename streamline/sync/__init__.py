"""The synchronizer: sliding windows over named timestamped streams.

Windows ``[start + k*hop, start + k*hop + length)`` on the session timeline
collect, per stream, the points they contain and the intervals they overlap.
Each stream advances a watermark (implied by its in-order items, or explicit with
:class:`Watermark`); a window is emitted once every watermark has passed its end,
or, live, when a stream's lateness budget runs out (the window then says which
streams were incomplete). Items for windows already emitted go to a separate late
stream. Without budgets the output depends only on each stream's own items and
watermarks, so a replayed recording gives the live run's windows. See
``docs/sync.md``.

- :class:`Synchronizer`: push items (or arrays), pull windows; no reactivex needed.
- :func:`synchronize`: the reactive operator over a dict of Observables.
- :class:`WindowSpec`, :class:`StreamSpec`: settings.
- :class:`AlignedWindow`, :class:`StreamSlice`, :class:`LateItem`, :class:`SyncStats`,
  :class:`StreamStats`, :class:`Watermark`: values.

The hot work runs in private numba kernels, compiled (or loaded from numba's cache)
when the first Synchronizer is built; :func:`warmup` does it ahead of time.
"""

from __future__ import annotations

from ._core import Synchronizer
from ._kernels import warmup
from ._operator import Synchronized, synchronize
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

__all__ = [
    "AlignedWindow",
    "LateItem",
    "StreamSlice",
    "StreamSpec",
    "StreamStats",
    "SyncStats",
    "Synchronized",
    "Synchronizer",
    "Watermark",
    "WindowSpec",
    "synchronize",
    "warmup",
]
