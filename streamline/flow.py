"""Bounded hand-offs between threads: streamline's backpressure.

reactivex has no backpressure: an Observable pushes as fast as its producer
runs. streamline puts a bounded queue with an explicit overflow policy at every
hand-off between threads, so a slow consumer either slows the producer (files:
nothing lost) or loses the oldest items, counted (live video: the newest frame
matters most). Live audio uses ``BLOCK`` with a bound of many seconds: it is
never dropped, and a consumer that cannot keep up at all shows up as a growing
``depth`` in the stats long before the bound is reached.

:class:`Handoff` is the public operator::

    frames.pipe(Handoff(maxsize=2, policy=OverflowPolicy.KEEP_LATEST, name="face"))

re-emits every item on a thread of its own. Like trio's memory channels, the
bound has no default: the caller decides.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from .errors import ClosedError, ConfigError

__all__ = ["OverflowPolicy", "HandoffStats", "BoundedQueue", "Handoff", "handoff", "engine_operator"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class OverflowPolicy(enum.Enum):
    """What a full queue does with one more item."""

    #: The producer waits until there is room: nothing is lost (files, live audio).
    BLOCK = "block"
    #: The oldest queued item is dropped and counted: the newest wins (live video).
    KEEP_LATEST = "keep_latest"


@dataclass(slots=True)
class HandoffStats:
    """Counters of one queue (updated under its lock; read them any time).

    End-of-stream markers (completion, an error) are not items: they count in
    neither ``put`` nor ``delivered``, so a queue that lost nothing ends with
    ``delivered == put - dropped``.

    Attributes:
        put: items offered by the producer.
        delivered: items taken by the consumer.
        dropped: items discarded by ``KEEP_LATEST``.
        depth: items queued now.
        max_depth: the largest ``depth`` seen.
        blocked_s: total seconds the producer spent waiting for room (``BLOCK``).
    """

    put: int = 0
    delivered: int = 0
    dropped: int = 0
    depth: int = 0
    max_depth: int = 0
    blocked_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return {
            "put": self.put,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "depth": self.depth,
            "max_depth": self.max_depth,
            "blocked_s": round(self.blocked_s, 6),
        }


class BoundedQueue(Generic[T]):
    """A thread-safe FIFO with a bound and an overflow policy.

    Args:
        maxsize: the bound (>= 1 items).
        policy: what :meth:`put` does when the queue is full.
        stats: a stats object to update (a fresh one by default).

    Raises:
        ConfigError: ``maxsize < 1``.
    """

    def __init__(self, maxsize: int, policy: OverflowPolicy, *, stats: HandoffStats | None = None) -> None:
        if not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigError(f"queue maxsize must be an int >= 1, got {maxsize!r}")
        if not isinstance(policy, OverflowPolicy):
            raise ConfigError(f"queue policy must be an OverflowPolicy, got {policy!r}")
        self._maxsize = maxsize
        self._policy = policy
        self._items: deque[tuple[T, bool]] = deque()  # (item, counted: not an end-of-stream marker)
        self._cond = threading.Condition()
        self._closed = False
        self.stats = stats if stats is not None else HandoffStats()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def put(self, item: T, *, force: bool = False) -> bool:
        """Queue ``item``; returns False if the queue was closed meanwhile.

        Args:
            item: the item.
            force: queue it even when full (used for end-of-stream markers,
                which must never be dropped or wait, and are not counted in
                the stats' ``put`` and ``delivered``).
        """
        with self._cond:
            if not force:
                self.stats.put += 1
            if not force and len(self._items) >= self._maxsize:
                if self._policy is OverflowPolicy.KEEP_LATEST:
                    self._items.popleft()
                    self.stats.dropped += 1
                else:
                    started = time.perf_counter()
                    while len(self._items) >= self._maxsize and not self._closed:
                        self._cond.wait()
                    self.stats.blocked_s += time.perf_counter() - started
            if self._closed:
                return False
            self._items.append((item, not force))
            depth = len(self._items)
            self.stats.depth = depth
            self.stats.max_depth = max(self.stats.max_depth, depth)
            self._cond.notify_all()
            return True

    def get(self) -> T:
        """Take the oldest item, waiting for one.

        Raises:
            ClosedError: the queue was closed and is empty.
        """
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if not self._items:
                raise ClosedError("queue closed")
            item, counted = self._items.popleft()
            if counted:
                self.stats.delivered += 1
            self.stats.depth = len(self._items)
            self._cond.notify_all()
            return item

    def close(self, *, discard: bool = True) -> None:
        """Close the queue: wake every waiter; ``discard`` drops what is queued."""
        with self._cond:
            self._closed = True
            if discard:
                self._items.clear()
                self.stats.depth = 0
            self._cond.notify_all()


# End-of-stream markers queued behind the items (shared with the sources' outlets).
_COMPLETED = object()


class _Error:
    """An upstream error, queued so it is delivered after the items before it."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class Handoff:
    """Operator: re-emit items on a thread of its own through a bounded queue.

    Each subscription gets its own queue and delivery thread (named
    ``streamline-<name>``); the thread ends after delivering completion or an
    error, or when the subscription is disposed. An exception raised by the
    downstream observer is sent to it as ``on_error`` and the upstream is
    disposed. :attr:`stats` accumulates over all subscriptions.

    Args:
        maxsize: the queue bound in items (no default: a decision for the caller).
        policy: :class:`OverflowPolicy` when the queue is full.
        name: a label for the thread and the logs.

    Raises:
        ConfigError: ``maxsize < 1`` or an unknown policy.
    """

    def __init__(self, maxsize: int, policy: OverflowPolicy, *, name: str = "handoff") -> None:
        BoundedQueue(maxsize, policy)  # validate now, not at subscribe time
        self.maxsize = maxsize
        self.policy = policy
        self.name = name
        self.stats = HandoffStats()

    def __repr__(self) -> str:
        return f"Handoff(maxsize={self.maxsize}, policy={self.policy.name}, name={self.name!r})"

    def __call__(self, source: Observable[T]) -> Observable[T]:
        def subscribe(observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
            queue: BoundedQueue[Any] = BoundedQueue(self.maxsize, self.policy, stats=self.stats)
            upstream = reactivex.disposable.SingleAssignmentDisposable()

            def deliver() -> None:
                while True:
                    try:
                        item = queue.get()
                    except ClosedError:
                        return
                    try:
                        if item is _COMPLETED:
                            observer.on_completed()
                            return
                        if isinstance(item, _Error):
                            observer.on_error(item.error)
                            return
                        observer.on_next(item)
                    except Exception as exc:  # the downstream observer failed
                        log.debug("%s: downstream raised %r", self.name, exc)
                        queue.close()
                        upstream.dispose()
                        try:
                            observer.on_error(exc)
                        except Exception:
                            log.exception("%s: on_error raised", self.name)
                        return

            thread = threading.Thread(target=deliver, name=f"streamline-{self.name}", daemon=True)
            thread.start()
            upstream.disposable = source.subscribe(
                on_next=queue.put,
                on_error=lambda e: queue.put(_Error(e), force=True),
                on_completed=lambda: queue.put(_COMPLETED, force=True),
                scheduler=scheduler,
            )

            def dispose() -> None:
                upstream.dispose()
                queue.close()
                if thread is not threading.current_thread():
                    thread.join(timeout=5.0)

            return CompositeDisposable(Disposable(dispose))

        return Observable(subscribe)


def handoff(maxsize: int, policy: OverflowPolicy, *, name: str = "handoff") -> Callable[[Observable[T]], Observable[T]]:
    """Functional spelling of :class:`Handoff` (same arguments)."""
    return Handoff(maxsize, policy, name=name)


E = TypeVar("E")
A = TypeVar("A")
B = TypeVar("B")


def engine_operator(
    make_engine: Callable[[], E],
    push: Callable[[E, A], Any],
    finish: Callable[[E], Any],
    *,
    close: Callable[[E], None] = lambda engine: engine.close(),  # type: ignore[attr-defined]
    upstream: Callable[[Observable[A]], Observable[A]] | None = None,
) -> Callable[[Observable[A]], Observable[B]]:
    """Operator around a push/pull engine: one engine per subscription.

    The shape every streaming stage of streamline shares (a VAD, a transcriber,
    a feature extractor): ``push(engine, item)`` returns the outputs an input
    item completes, ``finish(engine)`` the outputs still pending at the end.

    - The engine is made at subscription; a failure (a missing model or extra)
      arrives as ``on_error``.
    - An exception from ``push`` or ``finish`` ends the stream with ``on_error``,
      disposes the upstream and closes the engine; so does an upstream error.
    - Completion emits what ``finish`` returns, closes the engine, then completes.
    - Disposal closes the engine.

    Args:
        make_engine: builds the engine.
        push: feeds one input item; returns an iterable of outputs.
        finish: flushes at end of stream; returns an iterable of outputs.
        close: releases the engine (default: its ``close()``); called exactly once.
        upstream: an operator applied to the input first, e.g. a :class:`Handoff`
            that moves the engine off the producer's thread.
    """

    def operator(source: Observable[A]) -> Observable[B]:
        def subscribe(observer: abc.ObserverBase[B], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
            try:
                engine = make_engine()
            except Exception as exc:  # noqa: BLE001 - reported through the stream
                observer.on_error(exc)
                return Disposable()
            subscription = reactivex.disposable.SingleAssignmentDisposable()
            state = {"done": False, "closed": False}
            lock = threading.Lock()

            def release() -> None:
                with lock:
                    if state["closed"]:
                        return
                    state["closed"] = True
                close(engine)

            def fail(exc: Exception) -> None:
                if state["done"]:
                    return
                state["done"] = True
                release()
                observer.on_error(exc)
                subscription.dispose()

            def on_next(item: A) -> None:
                if state["done"]:
                    return
                try:
                    outputs = list(push(engine, item))
                except Exception as exc:  # noqa: BLE001 - bad input ends the stream as on_error
                    fail(exc)
                    return
                for output in outputs:
                    observer.on_next(output)

            def on_completed() -> None:
                if state["done"]:
                    return
                try:
                    outputs = list(finish(engine))
                except Exception as exc:  # noqa: BLE001
                    fail(exc)
                    return
                state["done"] = True
                release()
                for output in outputs:
                    observer.on_next(output)
                observer.on_completed()

            stream = source.pipe(upstream) if upstream is not None else source
            subscription.disposable = stream.subscribe(on_next, fail, on_completed, scheduler=scheduler)
            return CompositeDisposable(subscription, Disposable(release))

        return Observable(subscribe)

    return operator
