"""``Client``: the blocking client, on ``httpx.Client``."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

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


class Client(_Base):
    """A connection to a jobplane daemon. Use it as a context manager, or ``close()`` it.

    Args:
        url: the daemon's address.
        token: an API token (sent as ``Authorization: Bearer``), if the daemon needs one.
        timeout: seconds for one HTTP request (a long poll gets its own, longer one).
        retries: how many times a call is repeated after a connection error (see above).
        backoff: seconds before the first repeat; doubled each time, up to 2 s or this.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        timeout: float = 10.0,
        *,
        retries: int = 3,
        backoff: float = 0.1,
    ) -> None:
        super().__init__(url, token, timeout, retries, backoff, time.sleep)
        self._http = httpx.Client(base_url=self.url, headers=self._headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- jobs ----------------------------------------------------------------------------------

    def submit(
        self,
        ops: Sequence[Mapping[str, Any]],
        *,
        priority: int | str | None = None,
        depends: Iterable[Any] = (),
    ) -> int:
        """Submit one job; its id once it is committed. ``depends``: ``(job, statuses)`` pairs."""
        return self._send(_Calls.submit(ops, priority, depends))

    def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> builtins.list[int]:
        """Submit a batch atomically (all or none); negative ``depends`` name earlier jobs."""
        return self._send(_Calls.submit_many(jobs))

    def get(self, job_id: int) -> JobInfo:
        """The job as committed, with its ops and log. Raises JobNotFound."""
        return self._send(_Calls.get(job_id))

    def list(
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
        page = self.list_page(
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

    def list_page(
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
        return self._send(_Calls.list_page(status, limit, after, archived, filters))

    def wait_for_change(
        self,
        job_id: int,
        since_log_serial: int = 0,
        timeout: float = MAX_WAIT,
        *,
        since_status: OpStatus | str | None = None,
    ) -> JobUpdate | None:
        """Block until the job's status or log changes; None after ``timeout`` (at most 30 s).

        A change is a log line after ``since_log_serial`` or a status other than
        ``since_status`` (default: the status when the daemon gets the call). A
        finished job never changes: for one, None comes at once.
        """
        return self._send(_Calls.wait_for_change(job_id, since_log_serial, timeout, since_status))

    def wait(self, job_id: int, timeout: float | None = None) -> JobInfo:
        """Block until the job is final and return it; WaitTimeout after ``timeout`` seconds."""
        deadline = self._deadline(timeout)
        job = self.get(job_id)
        while not job.is_final:
            left = self._left(job, deadline, timeout)
            update = self.wait_for_change(job_id, job.last_serial, left, since_status=job.status)
            if update is not None:
                job = update.job
        return job

    def cancel(self, job_id: int) -> tuple[bool, str]:
        """Cancel a job: (done, what happened). Queued at once, running if it cooperates."""
        return self._send(_Calls.cancel(job_id))

    def change_priority(self, job_id: int, priority: int | str) -> tuple[bool, str]:
        """Give the job's pending ops a new priority: (done, what happened)."""
        return self._send(_Calls.change_priority(job_id, priority))

    def explain(self, job_id: int) -> Explanation:
        """Why the job is not running (or what it is doing), in plain words."""
        return self._send(_Calls.explain(job_id))

    def archive(self, job_id: int) -> None:
        """Archive a finished job (it stays readable). JobStateError if it is not finished."""
        self._send(_Calls.archive(job_id))

    def quarantined(self, *, scan: bool = False) -> builtins.list[QuarantinedJob]:
        """Jobs whose stored record cannot be read; ``scan`` reads every record to find all."""
        return self._send(_Calls.quarantined(scan))

    def remove_quarantined(self, job_id: int) -> None:
        """Delete a job whose stored record cannot be read (JobStateError for any other)."""
        self._send(_Calls.remove_quarantined(job_id))

    def auto_archive(self, older_than_s: float) -> builtins.list[int]:
        """Archive every job that ended more than ``older_than_s`` seconds ago; their ids."""
        return self._send(_Calls.auto_archive(older_than_s))

    # -- the daemon ----------------------------------------------------------------------------

    def lock_info(self, *, busy_only: bool = False) -> builtins.list[LockState]:
        """Locks with holders and waiters in grant order; ``busy_only``: only those in use."""
        return self._send(_Calls.lock_info(busy_only))

    def ops(self) -> builtins.list[OpDescription]:
        """The registered ops, with the JSON Schema of their parameters."""
        return self._send(_Calls.ops())

    def status(self) -> DaemonStatus:
        """Workers, running ops, jobs by status and priority, the drain flag."""
        return self._send(_Calls.status())

    def set_drained(self, drained: bool) -> None:
        """While drained, the daemon refuses submissions (the flag is persisted)."""
        self._send(_Calls.set_drained(drained))

    # -- plumbing ------------------------------------------------------------------------------

    def _send(self, call: _Call[_T]) -> _T:
        timeout = self.timeout if call.timeout is None else call.timeout
        try:
            for attempt in tenacity.Retrying(**self._retry.policy(call)):
                with attempt:
                    response = self._http.request(
                        call.method, call.path, params=call.params, json=call.json, timeout=timeout
                    )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return self._answer(call, response)
