"""A single timer thread: run a callback at a monotonic deadline.

The processor uses it for lock-attempt timeouts and for retrying a write the
store refused, so that a job waiting for either occupies no worker and no
thread of its own. Anything with ``call_at``/``call_later``/``stop`` will do
(:class:`Timers`); tests use :class:`jobplane.testing.ManualClock`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)


class TimerHandle:
    """A scheduled call; ``cancel()`` stops it if it has not run yet."""

    __slots__ = ("callback", "canceled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.canceled = False

    def cancel(self) -> None:
        self.canceled = True


class Timers(Protocol):
    """Runs callbacks at deadlines of the clock the processor was given."""

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    def stop(self, timeout: float = 5.0) -> None: ...


class TimerThread:
    """Runs callbacks at their deadlines, in deadline order, on one daemon thread.

    A callback must be short; one that raises is logged and the thread goes on.
    """

    def __init__(self, name: str = "timers", clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._mutex = threading.Lock()
        self._changed = threading.Condition(self._mutex)
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"jobplane-{name}", daemon=True)
        self._thread.start()

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(deadline, callback)
        with self._mutex:
            heapq.heappush(self._heap, (deadline, next(self._seq), handle))
            if self._heap[0][2] is handle:
                self._changed.notify()
        return handle

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at(self._clock() + delay, callback)

    def stop(self, timeout: float = 5.0) -> None:
        with self._mutex:
            self._stopping = True
            self._changed.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._mutex:
                while True:
                    if self._stopping:
                        return
                    while self._heap and self._heap[0][2].canceled:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._changed.wait()
                        continue
                    wait = self._heap[0][0] - self._clock()
                    if wait <= 0:
                        handle = heapq.heappop(self._heap)[2]
                        break
                    self._changed.wait(wait)
            if handle.canceled:
                continue
            try:
                handle.callback()
            except Exception:
                logger.exception("timer callback failed")
