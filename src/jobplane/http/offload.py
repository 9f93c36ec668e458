"""``Offload``: blocking calls (the store's commits and reads) off the event loop, cheaply.

The hot endpoints (``POST /v1/jobs``, ``GET /v1/jobs/{id}``) are coroutines:
the request is parsed and answered on the event loop, and only the call into
the queue, which may block (on SQLite, on the store's writer lock held by a
worker's commit, on an fsync with durability full), runs on one of a few
threads of this class's own. Never on the loop: a loop blocked behind a
commit serves nobody meanwhile.

Why not FastAPI's thread pool (``anyio.to_thread.run_sync``, what a plain
``def`` endpoint gets) or ``loop.run_in_executor``? They cost about 110 and
50 µs of CPU per call on the benchmark machine; this costs about 10
(``bench/offload.py``): a call is one ``SimpleQueue.put``, and its result
comes back through ``call_soon_threadsafe``, whose wake-ups uvloop coalesces
while the loop is busy. Several threads let concurrent submits share one
group commit (see ``stores/sqlite.py``).

A call whose request is canceled (the client went away) still runs to the
end: a job being submitted is committed all the same, as with any thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_Item = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]

THREADS = 4
"""Enough for concurrent submits to share commits; more only contend for the GIL."""


class Offload:
    """A few named threads that run blocking calls for coroutines; started on first use.

    ``close()`` stops them (one sentinel per thread) once the calls before it are done.
    """

    def __init__(self, threads: int = THREADS, name: str = "jobplane-http") -> None:
        self._size = threads
        self._name = name
        self._inbox: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._mutex = threading.Lock()  # guards _threads and _closed
        self._closed = False

    async def run(self, call: Callable[..., _T], *args: Any) -> _T:
        """``call(*args)`` on one of the threads; its result, or its exception, raised here."""
        return await self.start(call, *args)

    def start(self, call: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """Start ``call(*args)`` on one of the threads; the future of its outcome.

        Called on the event loop, whose future it is.
        """
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._inbox.put((call, args, loop, future))
        return future

    def close(self) -> None:
        with self._mutex:
            self._closed = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._inbox.put(None)
        for thread in threads:
            thread.join()

    def _start(self) -> None:
        with self._mutex:
            if self._closed:
                raise RuntimeError("this Offload is closed")
            if self._threads:
                return
            for number in range(self._size):
                thread = threading.Thread(
                    target=self._serve, name=f"{self._name}-{number}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        while (item := self._inbox.get()) is not None:
            call, args, loop, future = item
            try:
                result = call(*args)
            except Exception as exc:
                _call_soon(loop, _fail, future, exc)
            except BaseException as exc:  # still answer the request, then let it end us
                _call_soon(loop, _fail, future, exc)
                raise
            else:
                _call_soon(loop, _succeed, future, result)


def _call_soon(loop: asyncio.AbstractEventLoop, *what: Any) -> None:
    try:
        loop.call_soon_threadsafe(*what)
    except RuntimeError:  # the loop has closed: nobody waits for the answer any more
        logger.debug("an offloaded call ended after its event loop closed")


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # canceled meanwhile
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
