"""Helpers for tests of code that uses jobplane (and for jobplane's own tests).

* :class:`ManualClock` is a monotonic clock, a wall clock and a timer queue
  in one; time moves only when a test calls ``advance(seconds)``, and the
  timers due by then run on the calling thread, in deadline order. Give it
  to a queue as both its clock and its timers, and lock-attempt timeouts,
  escalation, aging and the retries of a write the store refused happen
  exactly when the test moves the clock::

      clock = ManualClock()
      q = JobQueue.open(url, clock=clock, timers=clock)
      ...
      clock.advance(1.5)  # runs every timer due by then, on this thread, in deadline order

  ``clock.wall`` is the matching wall clock, for a store's leases and aging
  (``open_store(url, clock=clock.wall)``).
* :class:`InMemoryStore` keeps the whole store contract
  (:mod:`jobplane.stores.base`) in a :class:`MemoryDatabase`, a plain Python
  object. Several stores may share one database: they then behave like
  several daemons on one PostgreSQL database (each store's listeners hear of
  the others' changes). It passes the same contract suite as the SQLite
  store, which shows the contract does not lean on SQLite. It is meant for
  tests: reads are copies, claims look at every job (O(n)), nothing survives
  the process.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable

from .stores.memory import InMemoryStore, MemoryDatabase
from .timers import TimerHandle

__all__ = ["InMemoryStore", "ManualClock", "MemoryDatabase"]


class ManualClock:
    """A clock and a timer queue in one; time moves only in :meth:`advance`.

    ``clock()`` (or ``monotonic()``) starts at ``start``; ``wall()`` at
    ``wall_start``; both move together. Thread-safe: the code under test
    schedules timers from any thread; due timers run on the thread that
    calls :meth:`advance`, outside the clock's mutex, each seeing the time
    of its own deadline.
    """

    def __init__(self, start: float = 1000.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._mutex = threading.Lock()
        self._scheduled = threading.Condition(self._mutex)
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        """The wall-clock time (seconds since the epoch) that goes with ``clock()``."""
        return self._now + self._wall_offset

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(deadline, callback)
        with self._mutex:
            heapq.heappush(self._heap, (deadline, next(self._seq), handle))
            self._scheduled.notify_all()
        return handle

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at(self._now + delay, callback)

    def stop(self, timeout: float = 5.0) -> None:
        """Drop every pending timer (what stopping a TimerThread does to them)."""
        with self._mutex:
            self._heap.clear()

    def advance(self, seconds: float) -> int:
        """Move the clock forward and run every timer due, oldest deadline first.

        Timers that the callbacks schedule run too if they are due. Returns how
        many callbacks ran.
        """
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back: time only moves forward")
        ran = 0
        with self._mutex:
            target = self._now + seconds
        while True:
            with self._mutex:
                self._drop_canceled_unlocked()
                if not self._heap or self._heap[0][0] > target:
                    self._now = max(self._now, target)
                    return ran
                deadline, _, handle = heapq.heappop(self._heap)
                self._now = max(self._now, deadline)
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
