"""Helpers for tests of code that uses jobplane (and for jobplane's own tests).

:class:`ManualClock` is a monotonic clock that moves only when told, with
timers that fire as it moves. Give it to a queue as both its clock and its
timers, and lock-attempt timeouts, escalation, aging and the retries of a
write the store refused happen exactly when the test moves the clock::

    clock = ManualClock()
    q = JobQueue.open(url, clock=clock, timers=clock)
    ...
    clock.advance(1.5)  # runs every timer due by then, on this thread, in deadline order
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable

from .timers import TimerHandle

__all__ = ["ManualClock"]


class ManualClock:
    """A clock and a timer queue in one; time moves only in :meth:`advance`.

    Thread-safe: the code under test schedules timers from any thread; due
    timers run on the thread that calls :meth:`advance`.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._mutex = threading.Lock()
        self._scheduled = threading.Condition(self._mutex)
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self._now

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(deadline, callback)
        with self._mutex:
            heapq.heappush(self._heap, (deadline, next(self._seq), handle))
            self._scheduled.notify_all()
        return handle

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at(self._now + delay, callback)

    def stop(self, timeout: float = 5.0) -> None:
        with self._mutex:
            self._heap.clear()

    def advance(self, seconds: float) -> int:
        """Move the clock forward and run every timer due, oldest deadline first.

        Timers that the callbacks schedule run too if they are due. Returns how
        many callbacks ran.
        """
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        ran = 0
        with self._mutex:
            self._now += seconds
        while True:
            with self._mutex:
                self._drop_canceled_unlocked()
                if not self._heap or self._heap[0][0] > self._now:
                    return ran
                handle = heapq.heappop(self._heap)[2]
            handle.callback()
            ran += 1

    def pending(self) -> list[float]:
        """The deadlines of the timers not run or canceled yet, soonest first."""
        with self._mutex:
            return sorted(deadline for deadline, _, h in self._heap if not h.canceled)

    def wait_for_timers(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait (on a condition, up to ``timeout`` s) until ``count`` live timers are scheduled."""
        with self._mutex:
            return self._scheduled.wait_for(
                lambda: sum(not h.canceled for _, _, h in self._heap) >= count, timeout
            )

    def _drop_canceled_unlocked(self) -> None:
        while self._heap and self._heap[0][2].canceled:
            heapq.heappop(self._heap)
