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
from typing import Final

from ..errors import LockError

logger = logging.getLogger(__name__)

GrantCallback = Callable[["LockError | None"], None]
"""Told of an asynchronous grant: None once granted, a LockError if the lock was deleted."""


class GrantDispatcher:
    """One daemon thread that runs grant callbacks in the order grants were made.

    Granting threads only enqueue (under the lock's mutex, which is cheap and
    safe); callbacks run here with no lock mutex held, so they may call back
    into any lock or manager. The thread starts with the first grant. Each
    :class:`LockManager` owns one and stops it in ``close()``; locks made on
    their own share :data:`DEFAULT_DISPATCHER`, which runs for the life of the
    process.
    """

    def __init__(self) -> None:
        self._queue: SimpleQueue[Callable[[], None]] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._start_mutex = threading.Lock()

    def put(self, call: Callable[[], None]) -> None:
        """Run ``call`` on the dispatcher thread after those put before it (never after close)."""
        if self._thread is None:
            self._start()
        self._queue.put(call)

    def close(self, timeout: float | None = None) -> None:
        """Run the callbacks put so far, then stop the thread; wait up to ``timeout`` for it.

        Callbacks put after this are never run. Closing twice is harmless.
        """
        with self._start_mutex:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _start(self) -> None:
        with self._start_mutex:
            if self._thread is None and not self._closed:
                thread = threading.Thread(
                    target=self._run, name="jobplane-lock-grants", daemon=True
                )
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            call = self._queue.get()
            if call is _STOP:
                return
            try:
                call()
            except Exception:
                logger.exception("a lock grant callback failed")


def _stop() -> None:
    """Put by ``close()``: the dispatcher thread ends when it gets here."""


_STOP: Final = _stop

DEFAULT_DISPATCHER: Final = GrantDispatcher()
"""Tells the grants of locks made outside a manager (``SharedLock(name)``)."""
