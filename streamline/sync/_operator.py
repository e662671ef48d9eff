"""The reactive face of the synchronizer: ``synchronize({...}) -> Synchronized``."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Iterable, Mapping

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.subject import Subject

from ..errors import ConfigError
from ..timeline import NS_PER_S, Clock
from ._core import Synchronizer, synchronizer_for
from ._types import AlignedWindow, LateItem, StreamSpec, SyncStats, WindowSpec

__all__ = ["Synchronized", "synchronize"]

log = logging.getLogger(__name__)

_WINDOW, _LATE, _DONE, _ERROR = 0, 1, 2, 3
#: Default period of the budget poll (live mode), seconds.
DEFAULT_POLL_INTERVAL_S = 0.05


def _virtual_clock(scheduler: VirtualTimeScheduler) -> Clock:
    def now_ns() -> int:
        return int(round(scheduler.to_seconds(scheduler.now) * NS_PER_S))

    return now_ns


class _Run:
    """One subscription: a Synchronizer, the input subscriptions, an ordered emitter."""

    def __init__(self, core: Synchronizer, observer: abc.ObserverBase[AlignedWindow], late: Subject,
                 on_finish: Any) -> None:
        self.core = core
        self.observer = observer
        self.late = late
        self.on_finish = on_finish
        self.lock = threading.Lock()
        self.queue: deque[tuple[int, Any]] = deque()
        self.emitting = False
        self.done = False
        self.subscriptions = CompositeDisposable()
        self.poller: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.stopped = False

    # -- inputs -------------------------------------------------------------------

    def on_next(self, name: str, item: Any) -> None:
        if self.done:
            return
        try:
            self.core.push(name, item)
        except Exception as exc:  # bad item, value_fn failure: the output fails
            self.fail(exc)
            return
        self.pump()

    def on_completed(self, name: str) -> None:
        if self.done:
            return
        self.core.end_stream(name)
        self.pump()

    def fail(self, error: Exception) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
            self.queue.append((_ERROR, error))
        self.drain()

    def pump(self) -> None:
        """Poll the core and queue what it gives, atomically (so the order holds)."""
        with self.lock:
            if self.done:
                return
            try:
                windows = self.core.poll()
            except Exception as exc:  # a clock that raises, or epoch times (TimestampError)
                self.done = True
                self.queue.append((_ERROR, exc))
                windows = None
            if windows is not None:
                if self.core.has_late:
                    self.queue.extend((_LATE, x) for x in self.core.take_late())
                if windows:
                    self.queue.extend((_WINDOW, w) for w in windows)
                if self.core.finished:
                    self.done = True
                    self.queue.append((_DONE, None))
            if not self.queue or self.emitting:
                return
        self.drain()

    # -- output -------------------------------------------------------------------

    def drain(self) -> None:
        """Deliver queued notifications in order; one thread at a time does it."""
        with self.lock:
            if self.emitting or not self.queue:
                return
            self.emitting = True
        while True:
            with self.lock:
                if not self.queue:
                    self.emitting = False
                    return
                batch = list(self.queue)
                self.queue.clear()
            for kind, value in batch:
                if kind == _WINDOW:
                    try:
                        self.observer.on_next(value)
                    except Exception as exc:  # the subscriber failed: end with its error
                        with self.lock:
                            self.queue.clear()
                            self.done = True
                            self.queue.append((_ERROR, exc))
                        break
                elif kind == _LATE:
                    try:
                        self.late.on_next(value)
                    except Exception:  # noqa: BLE001 - a late subscriber must not break the windows
                        log.exception("synchronize: a late-item subscriber raised")
                else:
                    self.stop()
                    self.on_finish()
                    if kind == _DONE:
                        self.late.on_completed()
                        self.observer.on_completed()
                    else:
                        self.late.on_error(value)
                        self.observer.on_error(value)
                    with self.lock:
                        self.queue.clear()
                        self.emitting = False
                    return

    # -- life cycle ---------------------------------------------------------------

    def start_poller(self, scheduler: abc.SchedulerBase | None, interval_s: float) -> None:
        if scheduler is not None:
            periodic = getattr(scheduler, "schedule_periodic", None)
            if periodic is None:
                raise ConfigError(f"scheduler {scheduler!r} cannot schedule periodic work")

            def tick(state: Any = None) -> Any:
                self.pump()
                return state

            self.subscriptions.add(periodic(interval_s, tick))
            return

        def loop() -> None:
            while not self.stop_event.wait(interval_s):
                self.pump()

        self.poller = threading.Thread(target=loop, name="streamline-sync-poll", daemon=True)
        self.poller.start()

    def stop(self) -> None:
        """Dispose the inputs and stop the poller (joined unless we are on it)."""
        if self.stopped:
            return
        self.stopped = True
        self.stop_event.set()
        self.subscriptions.dispose()
        poller = self.poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=5.0)

    def dispose(self) -> None:
        with self.lock:
            self.done = True
            self.queue.clear()
        self.stop()
        self.on_finish()


class Synchronized:
    """The result of :func:`synchronize`: windows, late items and counters.

    Attributes:
        window: the window settings.
        specs: the stream settings, in input order.
        windows: Observable[AlignedWindow]. Each subscription subscribes to every
            input and runs its own :class:`Synchronizer`; windows come out in index
            order, serialized, on whichever input (or poll) thread made them ready.
            It completes after the last window once every input has completed, and
            fails with the first input error (or a bad item, or a ``value_fn``
            error), disposing the other inputs.
        late: Observable[LateItem]: the late items of the running subscription
            (subscribe to it before ``windows``); it completes or fails with it.
    """

    def __init__(
        self,
        sources: Mapping[str, Observable[Any]],
        window: WindowSpec,
        specs: Iterable[StreamSpec],
        *,
        clock: Clock | None,
        scheduler: abc.SchedulerBase | None,
        poll_interval_s: float | None,
        max_late: int,
    ) -> None:
        if not isinstance(sources, Mapping) or not sources:
            raise ConfigError("synchronize needs a non-empty mapping of stream name -> Observable")
        for name, source in sources.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"stream names must be non-empty strings, got {name!r}")
            if not callable(getattr(source, "subscribe", None)):
                raise ConfigError(f"input {name!r} is not an Observable: {source!r}")
        self._sources = dict(sources)
        self.window = window
        if clock is None and isinstance(scheduler, VirtualTimeScheduler):
            clock = _virtual_clock(scheduler)
        # Build one synchronizer now: it checks the settings (errors at call time,
        # not at subscription) and compiles the kernels.
        probe = synchronizer_for(window, list(self._sources), specs, clock=clock, max_late=max_late)
        self.specs: tuple[StreamSpec, ...] = probe.specs
        self._budgeted = any(s.lateness_budget_s is not None for s in self.specs)
        if self._budgeted and scheduler is not None and not callable(getattr(scheduler, "schedule_periodic", None)):
            raise ConfigError(f"scheduler {scheduler!r} cannot schedule periodic work (schedule_periodic)")
        if poll_interval_s is None:
            poll_interval_s = min(DEFAULT_POLL_INTERVAL_S, window.hop_s / 2)
        if isinstance(poll_interval_s, bool) or not isinstance(poll_interval_s, (int, float)) \
                or not poll_interval_s > 0:
            raise ConfigError(f"poll_interval_s must be a number > 0, got {poll_interval_s!r}")
        self._poll_interval_s = float(poll_interval_s)
        self._clock = clock
        self._scheduler = scheduler
        self._max_late = max_late
        self._lock = threading.Lock()
        self._late_subject: Subject = Subject()
        self._core: Synchronizer | None = probe
        self._fresh = True  # the probe has not been used yet
        self.windows: Observable[AlignedWindow] = reactivex.create(self._subscribe)
        self.late: Observable[LateItem] = reactivex.create(self._subscribe_late)

    @property
    def stats(self) -> SyncStats | None:
        """Counters of the running (or last) subscription."""
        core = self._core
        return None if core is None else core.stats

    def _subscribe_late(self, observer: abc.ObserverBase[LateItem], scheduler: Any = None) -> abc.DisposableBase:
        with self._lock:
            subject = self._late_subject
        return subject.subscribe(observer)

    def _subscribe(self, observer: abc.ObserverBase[AlignedWindow], scheduler: Any = None) -> abc.DisposableBase:
        with self._lock:
            if self._fresh and self._core is not None:
                core = self._core
                self._fresh = False
            else:
                core = Synchronizer(self.window, self.specs, clock=self._clock, max_late=self._max_late)
                self._core = core
            late = self._late_subject
        finished = threading.Event()

        def on_finish() -> None:
            if finished.is_set():
                return
            finished.set()
            with self._lock:
                if self._late_subject is late:
                    self._late_subject = Subject()

        run = _Run(core, observer, late, on_finish)
        sched = self._scheduler or scheduler
        if self._budgeted:
            run.start_poller(self._scheduler, self._poll_interval_s)
        for name, source in self._sources.items():
            if run.done:
                break

            def on_next(item: Any, _name: str = name) -> None:
                run.on_next(_name, item)

            def on_completed(_name: str = name) -> None:
                run.on_completed(_name)

            try:
                sub = source.subscribe(on_next, run.fail, on_completed, scheduler=sched)
            except Exception as exc:  # a source that fails to subscribe
                run.fail(exc)
                break
            run.subscriptions.add(sub)
        if run.done and run.stopped:
            run.subscriptions.dispose()
        return Disposable(run.dispose)


def synchronize(
    sources: Mapping[str, Observable[Any]],
    *,
    length_s: float,
    hop_s: float,
    start_s: float = 0.0,
    streams: Iterable[StreamSpec] = (),
    clock: Clock | None = None,
    scheduler: abc.SchedulerBase | None = None,
    poll_interval_s: float | None = None,
    max_late: int = 10_000,
) -> Synchronized:
    """Align named Observables of timestamped items into sliding windows.

    Example::

        synced = synchronize(
            {"face": face_features, "voice": voice_features, "words": words},
            length_s=2.0, hop_s=0.5,
            streams=[StreamSpec("words", lateness_budget_s=3.0),
                     StreamSpec("face", value_fn=lambda f: f.blendshapes, grid_hz=15)],
        )
        synced.late.subscribe(print)          # late items, before windows
        synced.windows.subscribe(on_window)   # AlignedWindow, in index order

    An input may interleave :class:`Watermark` items with its data to advance its
    watermark during silences. Windows follow the :class:`Synchronizer` semantics;
    without lateness budgets they depend only on each input's own sequence (never
    on thread timing), so replaying a recording gives the live run's windows.

    Args:
        sources: stream name -> Observable of items (and optional Watermarks).
        length_s: window length in seconds.
        hop_s: hop between window starts in seconds (``<= length_s``).
        start_s: start of window 0 on the session timeline, seconds.
        streams: :class:`StreamSpec` for the inputs that need more than the defaults
            (lateness budget, values, grid).
        clock: the session clock (int ns) for lateness budgets. Default: the virtual
            time of ``scheduler`` when it is a VirtualTimeScheduler (tests), else the
            live session clock (:func:`streamline.sources.default_session_clock`).
        scheduler: runs the periodic budget polls (``schedule_periodic``) and is
            passed on when subscribing to the inputs. Default: a private poll
            thread, started with each subscription and joined when it ends; only
            when some stream has a lateness budget.
        poll_interval_s: period of the budget polls (default ``min(0.05, hop_s / 2)``).
        max_late: bound of the per-subscription late queue between polls.

    Returns:
        A :class:`Synchronized` with ``.windows``, ``.late`` and ``.stats``.

    Raises:
        ConfigError: bad window or stream settings, a StreamSpec for an unknown
            input, an input that is not an Observable.
    """
    window = WindowSpec(length_s, hop_s, start_s)
    return Synchronized(
        sources,
        window,
        streams,
        clock=clock,
        scheduler=scheduler,
        poll_interval_s=poll_interval_s,
        max_late=max_late,
    )
