"""``Submits``: single submits that arrive together go to the queue together.

Under load, ``POST /v1/jobs`` requests come faster than one at a time could
be committed. Alone, each costs a hop to an ``Offload`` thread and back and a
transaction of its own (BEGIN, the queue's state, the insert, the count,
COMMIT), and the threads wake each other and contend for the GIL. Here the
jobs of the requests that arrive while earlier ones are being committed are
gathered and handed over together (``JobQueue.submit_each``): one hop and,
usually, one commit for all of them, while each job is still accepted or
refused on its own, with the answer it would get alone.

At most ``in_flight`` hand-overs run at once. A submit that finds fewer
running goes at the next turn of the event loop, with whatever arrives in the
same turn, so a lone submit waits for nobody; the others go when a hand-over
ends. A request is answered only once its own job is committed: a 201 means
the job is in the database. A request whose client goes away still has its
job committed (the hand-over runs on), as with any thread.

Everything here runs on the event loop: no lock is needed.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any

from ..errors import JobplaneError
from ..queue import JobQueue
from .offload import Offload

IN_FLIGHT = 2
"""Hand-overs at once: one commits while the next one is being built."""

_Gathered = list[tuple[Mapping[str, Any], "asyncio.Future[int]"]]


class Submits:
    """Gathers the single submits of the event loop and hands them to ``queue`` in groups."""

    def __init__(self, queue: JobQueue, offload: Offload, in_flight: int = IN_FLIGHT) -> None:
        self._queue = queue
        self._offload = offload
        self._in_flight = in_flight
        self._running = 0
        self._gathered: _Gathered = []
        self._hand_over_due = False

    async def submit(self, spec: Mapping[str, Any]) -> int:
        """Commit and queue one job; its id. Raises what ``JobQueue.submit`` would for it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._gathered.append((spec, future))
        if self._running < self._in_flight and not self._hand_over_due:
            self._hand_over_due = True
            loop.call_soon(self._hand_over)
        return await future

    def _hand_over(self) -> None:
        self._hand_over_due = False
        if not self._gathered or self._running >= self._in_flight:
            return
        gathered, self._gathered = self._gathered, []
        try:
            outcome = self._offload.start(self._queue.submit_each, [spec for spec, _ in gathered])
        except Exception as exc:  # the daemon is closing its threads: nobody commits these
            _answer(gathered, exc)
            return
        self._running += 1
        outcome.add_done_callback(functools.partial(self._handed_over, gathered))

    def _handed_over(
        self, gathered: _Gathered, outcome: asyncio.Future[list[int | JobplaneError]]
    ) -> None:
        self._running -= 1
        self._hand_over()  # what gathered meanwhile goes now
        error = outcome.exception()
        _answer(gathered, error if error is not None else outcome.result())


def _answer(gathered: _Gathered, outcome: BaseException | list[int | JobplaneError]) -> None:
    """Wake each waiting submit with its job's id or error (or the error of them all)."""
    for index, (_, future) in enumerate(gathered):
        if future.done():  # canceled: the client went away
            continue
        result = outcome if isinstance(outcome, BaseException) else outcome[index]
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
