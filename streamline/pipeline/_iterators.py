"""Consuming a hot Observable three more ways: blocking iterator, async iterator, safe callbacks.

All three subscribe at creation, so nothing emitted after that is missed; each
keeps its own unbounded buffer (estimates are small: about 1 KB each, two per
second at the default hop), so a consumer that falls behind never slows the
pipeline down, and one that never reads grows that buffer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from typing import Any, Callable, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

__all__ = ["EventIterator", "AsyncEventIterator", "SafeObserver"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_ITEM, _ERROR, _DONE = 0, 1, 2


class EventIterator(Generic[T]):
    """A blocking iterator over a hot Observable (subscribed when made).

    ``for item in it`` blocks until the next item, ends when the Observable
    completes, and raises its error. :meth:`get` waits at most ``timeout_s``
    (returns None on timeout), so a UI or a progress bar can poll it.
    """

    def __init__(self, observable: Observable[T]) -> None:
        self._items: deque[tuple[int, Any]] = deque()
        self._cond = threading.Condition()
        self._finished = False
        self._subscription: abc.DisposableBase = Disposable()
        self._subscription = observable.subscribe(self._on_next, self._on_error, self._on_completed)

    def _push(self, kind: int, value: Any) -> None:
        with self._cond:
            self._items.append((kind, value))
            self._cond.notify_all()

    def _on_next(self, value: T) -> None:
        self._push(_ITEM, value)

    def _on_error(self, error: Exception) -> None:
        self._push(_ERROR, error)

    def _on_completed(self) -> None:
        self._push(_DONE, None)

    def __iter__(self) -> "EventIterator[T]":
        return self

    def __next__(self) -> T:
        while True:
            item = self.get(None)
            if item is not None:
                return item

    def get(self, timeout_s: float | None = None) -> T | None:
        """The next item, waiting at most ``timeout_s`` seconds (None: forever).

        Returns:
            The item, or None when the timeout passed first.

        Raises:
            StopIteration: the Observable completed (or the iterator was closed).
            Exception: the Observable's error.
        """
        with self._cond:
            if not self._items and not self._finished:
                self._cond.wait_for(lambda: bool(self._items) or self._finished, timeout_s)
            if not self._items:
                if self._finished:
                    raise StopIteration
                return None
            kind, value = self._items.popleft()
            if kind == _ITEM:
                return value
            self._finished = True
            self._items.clear()
        self._subscription.dispose()
        if kind == _ERROR:
            raise value
        raise StopIteration

    @property
    def pending(self) -> int:
        """Items buffered and not yet taken."""
        with self._cond:
            return len(self._items)

    def close(self) -> None:
        """Stop listening; iteration ends after the items already buffered."""
        self._subscription.dispose()
        with self._cond:
            self._items.append((_DONE, None))
            self._cond.notify_all()


class AsyncEventIterator(Generic[T]):
    """An async iterator over a hot Observable (subscribed when made)::

        async for estimate in pipeline.aiter_estimates():
            ...

    Items are buffered by the delivering thread and handed to the event loop with
    ``loop.call_soon_threadsafe``; no executor thread is used.
    """

    def __init__(self, observable: Observable[T]) -> None:
        self._items: deque[tuple[int, Any]] = deque()
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finished = False
        self._subscription: abc.DisposableBase = Disposable()
        self._subscription = observable.subscribe(
            lambda v: self._push(_ITEM, v), lambda e: self._push(_ERROR, e), lambda: self._push(_DONE, None)
        )

    def _push(self, kind: int, value: Any) -> None:
        with self._lock:
            self._items.append((kind, value))
            waiter, loop, self._waiter = self._waiter, self._loop, None
        if waiter is not None and loop is not None:
            try:
                loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # the loop was closed meanwhile
                pass

    def __aiter__(self) -> "AsyncEventIterator[T]":
        return self

    async def __anext__(self) -> T:
        while True:
            with self._lock:
                if self._items:
                    kind, value = self._items.popleft()
                    if kind != _ITEM:
                        self._finished = True
                        self._items.clear()
                    waiter = None
                elif self._finished:
                    raise StopAsyncIteration
                else:
                    self._loop = asyncio.get_running_loop()
                    waiter = self._loop.create_future()
                    self._waiter = waiter
            if waiter is not None:
                await waiter
                continue
            if kind == _ITEM:
                return value
            self._subscription.dispose()
            if kind == _ERROR:
                raise value
            raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop listening; iteration ends after the items already buffered."""
        self._subscription.dispose()
        self._push(_DONE, None)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class SafeObserver:
    """Wrap user callbacks: an exception is logged, sent to ``on_error``, and the callbacks detached.

    Used for :meth:`Pipeline.subscribe` so that a failing UI callback can never
    break the delivery thread or the other consumers.
    """

    def __init__(self, on_next: Callable[[Any], None] | None, on_error: Callable[[Exception], None] | None,
                 on_completed: Callable[[], None] | None) -> None:
        self._on_next = on_next
        self._on_error = on_error
        self._on_completed = on_completed
        self._stopped = False
        self.subscription: abc.DisposableBase | None = None

    def _fail(self, exc: Exception) -> None:
        self._stopped = True
        log.error("a pipeline callback raised %r; it is detached", exc, exc_info=exc)
        if self.subscription is not None:
            self.subscription.dispose()
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:  # noqa: BLE001 - nothing more can be done
                log.exception("the on_error callback raised too")

    def on_next(self, value: Any) -> None:
        if self._stopped or self._on_next is None:
            return
        try:
            self._on_next(value)
        except Exception as exc:  # noqa: BLE001 - user code
            self._fail(exc)

    def on_error(self, error: Exception) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._on_error is None:
            log.error("pipeline failed: %s", error)
            return
        try:
            self._on_error(error)
        except Exception:  # noqa: BLE001
            log.exception("the on_error callback raised")

    def on_completed(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._on_completed is not None:
            try:
                self._on_completed()
            except Exception:  # noqa: BLE001
                log.exception("the on_completed callback raised")
