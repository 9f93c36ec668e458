"""The mutex every lock's state sits behind: taken only by threads that can run.

``_Mutex`` is a drop-in ``threading.Lock`` (also usable as a Condition's
lock) that avoids the lock convoy a plain ``threading.Lock`` forms under the
GIL; its docstring says why, and ``jobplane.locking`` states the lock rules.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque


class _Mutex:
    """A mutex that a thread only ever takes while it is running Python code.

    A blocked ``threading.Lock.acquire`` takes the lock inside the kernel, on a
    thread that does not hold the GIL yet. The thread that released the lock
    still holds the GIL, comes back for the lock a moment later, finds it
    taken by a thread that cannot run, and blocks in turn: every critical
    section then costs two context switches, and the convoy lasts. Here a
    waiter parks on a gate of its own instead; a release opens the oldest
    gate, and the woken thread tries again once it runs. So the lock always
    belongs to a thread that can run; the running thread keeps taking it
    without waiting until its GIL turn ends.

    The hot paths inline ``lock.acquire(False)`` / :meth:`acquire_parked` and
    ``lock.release()`` / ``if parked: wake_one()``; anything else may use the
    mutex like a ``threading.Lock`` (including as a Condition's lock). Every
    step is one atomic operation on a lock or deque, so no wake-up is lost: a
    waiter tries again after parking, and a release opens a gate whenever one
    is parked.
    """

    __slots__ = ("lock", "parked")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.parked: deque[threading.Lock] = deque()  # closed gates, oldest first

    def acquire(self, blocking: bool = True) -> bool:
        if self.lock.acquire(False):
            return True
        if not blocking:
            return False
        self.acquire_parked()
        return True

    def release(self) -> None:
        self.lock.release()
        if self.parked:
            self.wake_one()

    __enter__ = acquire

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire_parked(self) -> None:
        """Wait for the mutex (a try just failed); returns holding it."""
        lock, parked = self.lock, self.parked
        while True:
            gate = threading.Lock()
            gate.acquire()
            parked.append(gate)
            if lock.acquire(False):  # it was released before we parked: withdraw the gate
                # (ValueError: a release opened it already; ours will open the next one)
                with contextlib.suppress(ValueError):
                    parked.remove(gate)
                return
            try:
                gate.acquire()
            except BaseException:  # e.g. KeyboardInterrupt: leave, passing on any wake-up
                try:
                    parked.remove(gate)
                except ValueError:
                    self.wake_one()
                raise
            if lock.acquire(False):
                return

    def wake_one(self) -> None:
        """Open the oldest gate (the mutex was just released)."""
        try:
            gate = self.parked.popleft()
        except IndexError:
            return
        gate.release()
