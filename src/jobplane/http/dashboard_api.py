"""Read endpoints the dashboard needs beyond the job API: who am I, workers, recent
op runs, queue depth history, and a long poll for "something changed".

None of them holds a thread while it waits: ``/v1/changes`` parks an asyncio
future that a store listener completes (from whatever thread committed the
change) with ``call_soon_threadsafe``. The queue depth is sampled by a task of
the app's event loop every ``DepthHistory.interval`` seconds (the store read
itself runs on a thread for the few milliseconds it takes).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.params import Depends

from ..activity import DepthHistory, RecentRuns, depth_sample
from ..errors import StoreError
from ..jobs import MAX_ID
from ..queue import MAX_WAIT, JobQueue
from ..workerpool import WorkerState
from . import auth

logger = logging.getLogger(__name__)

RUNS_KEPT = 5000
"""Op runs the timeline remembers (most recent first to go: the oldest)."""


class ChangeFeed:
    """A serial number bumped by every committed job change, and waits for the next one.

    The serial starts at 0 when the daemon starts; a client passes back the
    last serial it saw and is answered as soon as the serial differs (so a
    restarted daemon answers at once too).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # guards _serial and _waiters
        self._serial = 0
        self._waiters: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}
        self._closed = False

    @property
    def serial(self) -> int:
        return self._serial

    def changed(self, job_id: int) -> None:
        """A store listener: called after each committed change, from any thread."""
        with self._mutex:
            self._serial += 1
            if not self._waiters:
                return
            waiters, self._waiters = self._waiters, {}
        for future, loop in waiters.items():
            with suppress(RuntimeError):  # that loop is closed: nobody waits there any more
                loop.call_soon_threadsafe(_wake, future)

    async def wait(self, since: int, timeout: float) -> int:
        """The serial once it is not ``since``, or after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        with self._mutex:
            if self._serial != since or self._closed:
                return self._serial
            future: asyncio.Future[None] = loop.create_future()
            self._waiters[future] = loop
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(future, timeout)
        finally:
            with self._mutex:
                self._waiters.pop(future, None)
        return self._serial

    def close(self) -> None:
        """Answer every waiting request now, and later ones at once (the server is stopping)."""
        with self._mutex:
            self._closed = True
            waiters, self._waiters = self._waiters, {}
        for future, loop in waiters.items():
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def router(
    queue: JobQueue,
    *,
    tokens: auth.TokenStore | None,
    read: Sequence[Depends],
    responses: dict[int | str, dict[str, Any]],
    wall: Callable[[], float] = time.time,
    history: DepthHistory | None = None,
    feed: ChangeFeed | None = None,
) -> APIRouter:
    """The dashboard's read endpoints for ``queue``, behind the ``read`` dependencies.

    ``responses`` documents their error answers. The router's lifespan samples
    the queue depth into ``history`` while the app runs.
    """
    feed = feed or ChangeFeed()
    queue.store.add_listener(feed.changed)
    runs = RecentRuns(RUNS_KEPT)
    queue.add_run_observer(runs.add)
    depth = history or DepthHistory()

    @asynccontextmanager
    async def sampling(app: object) -> AsyncIterator[None]:
        task = asyncio.create_task(_sample(queue, depth, wall), name="jobplane-depth-sampler")
        try:
            yield
        finally:
            feed.close()
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    api = APIRouter(
        dependencies=list(read), responses=responses, lifespan=sampling, tags=["dashboard"]
    )

    @api.get("/v1/whoami", summary="The caller's role")
    def whoami(credentials: auth.Credentials) -> dict[str, Any]:
        """The caller's role: ``write`` may change state, ``read`` may only look."""
        if tokens is None:
            return {"role": "write", "auth": "loopback"}
        token = credentials.credentials if credentials is not None else ""
        return {"role": tokens.role_of(token), "auth": "token"}

    @api.get("/v1/changes", summary="Wait for any job to change")
    async def changes(
        request: Request,
        since: Annotated[
            int | None, Query(ge=0, le=MAX_ID, description="the serial last seen")
        ] = None,
        timeout: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 10.0,
    ) -> dict[str, Any]:
        """Long poll: answers when a job changed after serial ``since`` (at once without it).

        A client that goes away ends its wait at once (a closed browser tab does
        not keep the server from stopping).
        """
        if since is None:
            return {"serial": feed.serial, "changed": True}
        waiting = asyncio.ensure_future(feed.wait(since, timeout))
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait((waiting, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiting, gone):
                task.cancel()
        serial = feed.serial
        return {"serial": serial, "changed": serial != since}

    @api.get("/v1/workers", summary="List the workers")
    def workers() -> dict[str, Any]:
        """The pool's workers and the job and op each one runs."""
        return {
            "now": wall(),
            "workers": [_worker_json(queue, s) for s in queue.pool.worker_states()],
        }

    @api.get("/v1/runs", summary="Recent op runs")
    def recent_runs(
        since: Annotated[
            float | None,
            Query(ge=0, le=1e12, description="wall-clock seconds; default: the last 10 minutes"),
        ] = None,
    ) -> dict[str, Any]:
        """The op runs that ended since ``since`` (the last 5,000 at most), oldest first."""
        now = wall()
        start = now - 600 if since is None else since
        return {"now": now, "runs": [run.to_dict() for run in runs.ended_since(start)]}

    @api.get("/v1/status/history", summary="Queue depth history")
    def status_history() -> dict[str, Any]:
        """Jobs waiting to run by priority (and jobs running), sampled over the last minutes."""
        current = depth_sample(wall(), queue.store.counts())
        return {
            "interval": depth.interval,
            "span": depth.span,
            "samples": [sample.to_dict() for sample in depth.samples()],
            "current": current.to_dict(),
        }

    return api


def _worker_json(queue: JobQueue, state: WorkerState) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": state.name, "busy": state.busy, "job": None}
    if not state.busy or not isinstance(state.task_id, int):
        return entry
    entry["job"] = state.task_id
    job = queue.processor.tracked(state.task_id)
    index = job.current_op() if job is not None else None
    if job is not None and index is not None:
        op = job.ops[index]
        entry.update(
            op_index=index,
            op=op.op,
            status=str(op.status),
            priority=op.priority,
            started_at=op.started_at,
        )
    return entry


async def _disconnected(request: Request) -> None:
    """Return once the client has closed the connection."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _sample(queue: JobQueue, history: DepthHistory, wall: Callable[[], float]) -> None:
    """Add a queue depth sample every ``history.interval`` seconds until cancelled."""
    while True:
        try:
            counts = await anyio.to_thread.run_sync(queue.store.counts)
            history.add(depth_sample(wall(), counts))
        except StoreError as exc:
            logger.warning("could not sample the queue depth: %s", exc)
        await asyncio.sleep(history.interval)
