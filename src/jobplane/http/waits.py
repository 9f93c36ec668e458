"""Long polls (``GET /v1/jobs/{id}/wait``) that hold no thread.

An open wait is a coroutine parked on an ``asyncio.Event``: it costs memory,
not a thread, so thousands of idle waits do not slow anything else. The
store calls :meth:`LongPolls.on_change` with a job id on whichever thread
committed a change. When nobody waits for that job it returns at once (one
dict lookup: no lock, no hop to another thread); otherwise it hands the id to
the event loop (``call_soon_threadsafe``), which sets the events of that
job's waits. A woken wait reads the job (briefly, on a worker thread) and
answers if it changed, else parks again, until its own timeout.

No change is missed: a wait registers its event before it first reads the
job, and the store tells its listeners only after a change is committed, so
a change is either seen by the read or wakes the event. Every read happens
after the event is cleared.

At most ``limit`` waits are open (beyond it: ``TooManyWaits``, 503). A wait
whose client disconnects ends at once and frees its place. When the daemon
stops, :meth:`LongPolls.close` answers every open wait at once with its job
as it is, and new waits get ``ShuttingDown`` (503).

The events and counts are touched only on the event loop's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import anyio

from ..errors import ShuttingDown, TooManyWaits
from ..jobs import Job
from ..queue import JobChange, JobQueue, JobWatch

DEFAULT_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class WaitOutcome:
    """How a wait ended: with a change, or without (timeout, or the daemon stopping)."""

    change: JobChange | None
    stopping: bool = False
    job: Job | None = None
    """When stopping: the job as it is, with its log."""


class LongPolls:
    """The open waits of one daemon (see the module docstring)."""

    def __init__(self, queue: JobQueue, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError("the limit of open waits must be at least 1")
        self.limit = limit
        self._events: dict[int, set[asyncio.Event]] = {}
        self._open = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        queue.store.add_listener(self.on_change)

    @property
    def open(self) -> int:
        """How many waits are open now."""
        return self._open

    def on_change(self, job_id: int) -> None:
        """The store's listener: called on the thread that committed a change of the job."""
        if job_id not in self._events:
            return
        loop = self._loop
        if loop is None:
            return
        with suppress(RuntimeError):  # the loop is closed: the daemon has stopped serving
            loop.call_soon_threadsafe(self._wake, job_id)

    def close(self) -> None:
        """The daemon is stopping: answer every open wait now; refuse new ones.

        Call it on the event loop's thread.
        """
        self._closed = True
        for events in self._events.values():
            for event in events:
                event.set()

    async def wait(
        self,
        watch: JobWatch,
        timeout: float,
        disconnected: Callable[[], Awaitable[object]],
    ) -> WaitOutcome:
        """Wait up to ``timeout`` seconds for a change of the watched job.

        Args:
            watch: what the client has seen (``JobQueue.watch``).
            timeout: seconds.
            disconnected: returns once the client has gone away.

        Raises:
            TooManyWaits: ``limit`` waits are open.
            ShuttingDown: the daemon is stopping.
            JobNotFound: no such job.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with self._slot(watch.job_id, loop) as event:
            gone = asyncio.ensure_future(disconnected())
            gone.add_done_callback(lambda _: event.set())
            try:
                while True:
                    event.clear()
                    if self._closed:
                        job, change = await anyio.to_thread.run_sync(watch.last_look)
                        return WaitOutcome(change, stopping=True, job=job)
                    job, change = await anyio.to_thread.run_sync(watch.look)
                    if change is not None:
                        return WaitOutcome(change)
                    if job.is_final or loop.time() >= deadline:
                        return WaitOutcome(None)
                    try:
                        async with asyncio.timeout_at(deadline):
                            await event.wait()
                    except TimeoutError:
                        return WaitOutcome(None)
                    if gone.done():  # nobody to answer
                        return WaitOutcome(None)
            finally:
                gone.cancel()

    @contextmanager
    def _slot(self, job_id: int, loop: asyncio.AbstractEventLoop) -> Iterator[asyncio.Event]:
        if self._closed:
            raise ShuttingDown("the daemon is stopping: it takes no new waits")
        if self._open >= self.limit:
            raise TooManyWaits(
                f"this daemon already holds {self.limit} open waits, its limit; try again later"
            )
        self._loop = loop
        event = asyncio.Event()
        self._open += 1
        self._events.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            self._open -= 1
            events = self._events[job_id]
            events.discard(event)
            if not events:
                del self._events[job_id]

    def _wake(self, job_id: int) -> None:
        for event in self._events.get(job_id, ()):
            event.set()
