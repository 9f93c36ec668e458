"""The grant dispatcher: the one thread that tells asynchronous waiters of their grants.

A lock granted to an asynchronous request (``SharedLock.acquire_async``,
``LockManager.request``) is not announced on the granting thread, which holds
the lock's mutex: the grant is queued here, and callbacks run in grant order
on the dispatcher's thread with no lock mutex held.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from queue import SimpleQueue

from ..errors import LockError

logger = logging.getLogger(__name__)

GrantCallback = Callable[["LockError | None"], None]
"""Told of an asynchronous grant: None once granted, a LockError if the lock was deleted."""


class _Dispatcher:
    """One daemon thread that runs grant callbacks in the order grants were made.

    Granting threads only enqueue (under the lock's mutex, which is cheap and
    safe); callbacks run here with no lock mutex held, so they may call back
    into any lock or manager.
    """

    def __init__(self) -> None:
        self._queue: SimpleQueue[Callable[[], None]] = SimpleQueue()
        self._started = False
        self._start_mutex = threading.Lock()

    def put(self, call: Callable[[], None]) -> None:
        if not self._started:
            self._start()
        self._queue.put(call)

    def _start(self) -> None:
        with self._start_mutex:
            if not self._started:
                threading.Thread(target=self._run, name="jobplane-lock-grants", daemon=True).start()
                self._started = True

    def _run(self) -> None:
        while True:
            call = self._queue.get()
            try:
                call()
            except Exception:
                logger.exception("a lock grant callback failed")


_GRANTS = _Dispatcher()
