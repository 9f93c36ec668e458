"""Test helpers for jobplane's tests and for users' tests: a manual clock and a store in memory.

* :class:`ManualClock` is a monotonic clock, a wall clock and a timer
  service in one. Time stands still until a test calls ``advance(seconds)``;
  the timers whose deadline has come then run, in deadline order, on the
  calling thread. So lock timeouts, escalation, aging and leases can be
  tested without sleeping: pass ``clock=c.monotonic, wall=c.wall`` to the
  engine and ``c`` wherever a ``TimerThread`` goes.
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
    """Time that moves only when told to, with timers that fire as it moves.

    ``monotonic()`` starts at 0 and ``wall()`` at ``wall_start``; both advance
    together. Thread-safe. Timer callbacks run on the thread that calls
    ``advance``, outside the clock's mutex, so they may schedule new timers
    (which fire in the same ``advance`` if their deadline has come too).
    """

    def __init__(self, *, wall_start: float = 1_700_000_000.0) -> None:
        self._mutex = threading.Lock()
        self._now = 0.0
        self._wall_offset = wall_start
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._stopped = False

    def monotonic(self) -> float:
        with self._mutex:
            return self._now

    def wall(self) -> float:
        with self._mutex:
            return self._now + self._wall_offset

    __call__ = monotonic

    def advance(self, seconds: float) -> int:
        """Move time forward and run every timer now due; returns how many ran."""
        if seconds < 0:
            raise ValueError(f"time only moves forward, not by {seconds}")
        with self._mutex:
            target = self._now + seconds
        ran = 0
        while True:
            with self._mutex:
                while self._heap and self._heap[0][2].canceled:
                    heapq.heappop(self._heap)
                if self._stopped or not self._heap or self._heap[0][0] > target:
                    self._now = target
                    return ran
                deadline, _, handle = heapq.heappop(self._heap)
                self._now = max(self._now, deadline)
            handle.callback()
            ran += 1

    # -- the timer service (what a TimerThread offers) --------------------

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once ``advance`` reaches ``deadline`` (monotonic)."""
        handle = TimerHandle(deadline, callback)
        with self._mutex:
            heapq.heappush(self._heap, (deadline, next(self._seq), handle))
        return handle

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at(self.monotonic() + delay, callback)

    def pending_timers(self) -> int:
        """Timers scheduled and not canceled."""
        with self._mutex:
            return sum(1 for _, _, handle in self._heap if not handle.canceled)

    def stop(self, timeout: float = 5.0) -> None:
        """Drop every pending timer; later ``advance`` calls only move time."""
        with self._mutex:
            self._stopped = True
            self._heap.clear()
