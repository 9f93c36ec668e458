"""``AsyncClient``: the client for asyncio (or trio) programs, on ``httpx.AsyncClient``."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio
import httpx
import tenacity

from ..jobs import OpStatus
from ..models import (
    DaemonStatus,
    Explanation,
    JobInfo,
    JobPage,
    JobSummary,
    JobUpdate,
    LockState,
    OpDescription,
    QuarantinedJob,
)
from .base import _T, DEFAULT_URL, MAX_WAIT, ListFilters, PriorityFilter, _Base, _Call, _Calls


class AsyncClient(_Base):
    """``Client`` for asyncio (or trio) programs, on ``httpx.AsyncClient``: the same
    methods, awaited. Use it as an async context manager, or ``await aclose()`` it."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        timeout: float = 10.0,
        *,
        retries: int = 3,
        backoff: float = 0.1,
    ) -> None:
        super().__init__(url, token, timeout, retries, backoff, anyio.sleep)
        self._http = httpx.AsyncClient(base_url=self.url, headers=self._headers, timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- jobs ----------------------------------------------------------------------------------

    async def submit(
        self,
        ops: Sequence[Mapping[str, Any]],
        *,
        priority: int | str | None = None,
        depends: Iterable[Any] = (),
    ) -> int:
        """Submit one job; its id once it is committed. ``depends``: ``(job, statuses)`` pairs."""
        return await self._send(_Calls.submit(ops, priority, depends))

    async def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> builtins.list[int]:
        """Submit a batch atomically (all or none); negative ``depends`` name earlier jobs."""
        return await self._send(_Calls.submit_many(jobs))

    async def get(self, job_id: int) -> JobInfo:
        """The job as committed, with its ops and log. Raises JobNotFound."""
        return await self._send(_Calls.get(job_id))

    async def list(
        self,
        *,
        status: OpStatus | str | Iterable[OpStatus | str] | None = None,
        limit: int = 100,
        after: int | None = None,
        archived: bool | None = False,
        before: int | None = None,
        newest_first: bool = False,
        priority: PriorityFilter | None = None,
        op: str | None = None,
    ) -> builtins.list[JobSummary]:
        """Jobs by ascending id, or descending with ``newest_first``, as ``JobQueue.list``.

        ``after`` and ``before`` page (ids above / below them); ``status``,
        ``priority`` (one, or an inclusive ``(from, to)`` range) and ``op`` (text
        that one op's name contains) filter.
        """
        page = await self.list_page(
            status=status,
            limit=limit,
            after=after,
            archived=archived,
            before=before,
            newest_first=newest_first,
            priority=priority,
            op=op,
        )
        return page.jobs

    async def list_page(
        self,
        *,
        status: OpStatus | str | Iterable[OpStatus | str] | None = None,
        limit: int = 100,
        after: int | None = None,
        archived: bool | None = False,
        before: int | None = None,
        newest_first: bool = False,
        priority: PriorityFilter | None = None,
        op: str | None = None,
    ) -> JobPage:
        """Like ``list``, with ``next``: the ``after`` (newest first: the ``before``) of
        the next page, None on the last."""
        filters = ListFilters(newest_first, before, priority, op)
        return await self._send(_Calls.list_page(status, limit, after, archived, filters))

    async def wait_for_change(
        self,
        job_id: int,
        since_log_serial: int = 0,
        timeout: float = MAX_WAIT,
        *,
        since_status: OpStatus | str | None = None,
    ) -> JobUpdate | None:
        """Wait until the job's status or log changes; None after ``timeout`` (at most 30 s)."""
        return await self._send(
            _Calls.wait_for_change(job_id, since_log_serial, timeout, since_status)
        )

    async def wait(self, job_id: int, timeout: float | None = None) -> JobInfo:
        """Wait until the job is final and return it; WaitTimeout after ``timeout`` seconds."""
        deadline = self._deadline(timeout)
        job = await self.get(job_id)
        while not job.is_final:
            left = self._left(job, deadline, timeout)
            update = await self.wait_for_change(
                job_id, job.last_serial, left, since_status=job.status
            )
            if update is not None:
                job = update.job
        return job

    async def cancel(self, job_id: int) -> tuple[bool, str]:
        """Cancel a job: (done, what happened). Queued at once, running if it cooperates."""
        return await self._send(_Calls.cancel(job_id))

    async def change_priority(self, job_id: int, priority: int | str) -> tuple[bool, str]:
        """Give the job's pending ops a new priority: (done, what happened)."""
        return await self._send(_Calls.change_priority(job_id, priority))

    async def explain(self, job_id: int) -> Explanation:
        """Why the job is not running (or what it is doing), in plain words."""
        return await self._send(_Calls.explain(job_id))

    async def archive(self, job_id: int) -> None:
        """Archive a finished job (it stays readable). JobStateError if it is not finished."""
        await self._send(_Calls.archive(job_id))

    async def quarantined(self, *, scan: bool = False) -> builtins.list[QuarantinedJob]:
        """Jobs whose stored record cannot be read; ``scan`` reads every record to find all."""
        return await self._send(_Calls.quarantined(scan))

    async def remove_quarantined(self, job_id: int) -> None:
        """Delete a job whose stored record cannot be read (JobStateError for any other)."""
        await self._send(_Calls.remove_quarantined(job_id))

    async def auto_archive(self, older_than_s: float) -> builtins.list[int]:
        """Archive every job that ended more than ``older_than_s`` seconds ago; their ids."""
        return await self._send(_Calls.auto_archive(older_than_s))

    # -- the daemon ----------------------------------------------------------------------------

    async def lock_info(self, *, busy_only: bool = False) -> builtins.list[LockState]:
        """Locks with holders and waiters in grant order; ``busy_only``: only those in use."""
        return await self._send(_Calls.lock_info(busy_only))

    async def ops(self) -> builtins.list[OpDescription]:
        """The registered ops, with the JSON Schema of their parameters."""
        return await self._send(_Calls.ops())

    async def status(self) -> DaemonStatus:
        """Workers, running ops, jobs by status and priority, the drain flag."""
        return await self._send(_Calls.status())

    async def set_drained(self, drained: bool) -> None:
        """While drained, the daemon refuses submissions (the flag is persisted)."""
        await self._send(_Calls.set_drained(drained))

    # -- plumbing ------------------------------------------------------------------------------

    async def _send(self, call: _Call[_T]) -> _T:
        timeout = self.timeout if call.timeout is None else call.timeout
        try:
            async for attempt in tenacity.AsyncRetrying(**self._retry.policy(call)):
                with attempt:
                    response = await self._http.request(
                        call.method, call.path, params=call.params, json=call.json, timeout=timeout
                    )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return self._answer(call, response)
