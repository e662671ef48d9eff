"""One stream's exit from a source: a bounded queue drained by a delivery thread."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Generic, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ..errors import ClosedError
from ..flow import _COMPLETED, BoundedQueue, HandoffStats, OverflowPolicy, _Error

log = logging.getLogger(__name__)

T = TypeVar("T")

class Outlet(Generic[T]):
    """Deliver one stream's items to its subscribers on a thread of its own.

    The producer (the source's decode thread) calls :meth:`put`, which applies
    the queue's overflow policy; the delivery thread fans each item out to the
    current subscribers in order. An exception raised by a subscriber goes back
    to that subscriber as ``on_error`` and it is unsubscribed; the others go on.

    The outlet is hot: items go to whoever is subscribed when they are delivered.
    ``on_subscribe`` lets the owner start producing once everyone is listening.
    """

    def __init__(
        self,
        name: str,
        *,
        maxsize: int,
        policy: OverflowPolicy,
        on_subscribe: Callable[[], None],
    ) -> None:
        self.name = name
        self.stats = HandoffStats()
        self._queue: BoundedQueue[Any] = BoundedQueue(maxsize, policy, stats=self.stats)
        self._observers: list[abc.ObserverBase[T]] = []
        self._lock = threading.Lock()
        self._on_subscribe = on_subscribe
        self._thread = threading.Thread(target=self._deliver, name=f"streamline-{name}", daemon=True)
        self._started = False
        self._finished = False
        self.observable: Observable[T] = reactivex.create(self._subscribe)

    @property
    def subscribed(self) -> bool:
        """True while at least one observer is subscribed."""
        with self._lock:
            return bool(self._observers)

    def _subscribe(self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        with self._lock:
            if self._finished:
                observer.on_error(
                    ClosedError(f"stream {self.name!r} has already delivered its items; subscribe before it starts")
                )
                return Disposable()
            self._observers.append(observer)
            if not self._started:
                self._started = True
                self._thread.start()
        self._on_subscribe()

        def unsubscribe() -> None:
            with self._lock:
                if observer in self._observers:
                    self._observers.remove(observer)

        return Disposable(unsubscribe)

    def put(self, item: T) -> bool:
        """Queue one item (may block or drop by policy); False once the outlet is closed."""
        return self._queue.put(item)

    def complete(self) -> None:
        """Queue end-of-stream (never dropped)."""
        self._queue.put(_COMPLETED, force=True)

    def fail(self, error: Exception) -> None:
        """Queue an error for every subscriber (never dropped); it ends the stream."""
        self._queue.put(_Error(error), force=True)

    def shutdown(self) -> None:
        """Discard what is queued and wake every waiter (producer and delivery thread)."""
        self._queue.close(discard=True)

    def close(self, *, end_subscribers: bool = True, join_timeout_s: float = 5.0) -> None:
        """Stop delivering: discard what is queued and end the delivery thread.

        Subscribers still attached get ``on_completed`` (the stream ended because its
        owner closed it), so nobody waits for a terminal event that never comes.
        """
        self._queue.close(discard=True)
        if self._started and self._thread is not threading.current_thread():
            self._thread.join(timeout=join_timeout_s)
        with self._lock:
            self._finished = True
            observers, self._observers = list(self._observers), []
        if end_subscribers:
            for observer in observers:
                try:
                    observer.on_completed()
                except Exception:  # noqa: BLE001 - closing must not raise
                    log.exception("%s: subscriber raised in on_completed", self.name)

    def _deliver(self) -> None:
        while True:
            try:
                item = self._queue.get()
            except ClosedError:
                return
            with self._lock:
                observers = list(self._observers)
            if item is _COMPLETED or isinstance(item, _Error):
                with self._lock:
                    self._finished = True
                    self._observers.clear()
                for observer in observers:
                    try:
                        if item is _COMPLETED:
                            observer.on_completed()
                        else:
                            observer.on_error(item.error)
                    except Exception:  # noqa: BLE001 - a terminal callback failing must not kill the others
                        log.exception("%s: subscriber raised in its terminal callback", self.name)
                return
            for observer in observers:
                try:
                    observer.on_next(item)
                except Exception as exc:  # the subscriber failed: tell it, drop it, go on
                    with self._lock:
                        if observer in self._observers:
                            self._observers.remove(observer)
                    try:
                        observer.on_error(exc)
                    except Exception:  # noqa: BLE001
                        log.exception("%s: subscriber raised in on_error", self.name)
