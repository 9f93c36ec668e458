"""What ``Client`` and ``AsyncClient`` share: the requests behind each method, how an
answer is read (into ``jobplane.models``) or raised (as ``jobplane.errors``), and when a
call whose connection failed is repeated.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
import pydantic
import tenacity

from .. import errors
from ..jobs import OpStatus
from ..models import (
    Archived,
    DaemonStatus,
    Explanation,
    JobInfo,
    JobPage,
    JobUpdate,
    LockState,
    OpDescription,
    Outcome,
    QuarantinedJob,
    QuarantineList,
    Submitted,
    SubmittedBatch,
    WaitAnswer,
)

DEFAULT_URL = "http://127.0.0.1:8470"
MAX_WAIT = 30.0
"""The daemon answers a long poll after at most this many seconds."""
POLL_SLACK = 10.0
"""How much longer than the long poll itself its HTTP request may take."""

_T = TypeVar("_T")
logger = logging.getLogger("jobplane.client")


def _codes() -> dict[str, type[errors.JobplaneError]]:
    found: dict[str, type[errors.JobplaneError]] = {}
    pending: list[type[errors.JobplaneError]] = [errors.JobplaneError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    found.update(
        {
            "invalid_request": errors.ValidationError,
            "bad_json": errors.ValidationError,
            "not_found": errors.JobNotFound,
            "payload_too_large": errors.ValidationError,
            "unsupported_media_type": errors.ValidationError,
        }
    )
    return found


ERRORS = _codes()
"""The error class of each error ``code`` the daemon answers with."""

_UNREACHED = (httpx.ConnectError, httpx.ConnectTimeout)
"""The request never reached the daemon: repeating it is always safe."""
_BROKEN = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
"""The connection broke, maybe after the daemon acted: repeat only idempotent calls."""


@dataclass(frozen=True, slots=True)
class _Call(Generic[_T]):
    """One request, and how to read its answer. Built once; sent by either client."""

    method: str
    path: str
    parse: Callable[[bytes], _T]
    params: dict[str, Any] | None = None
    json: Any = None
    timeout: float | None = None
    idempotent: bool = True


@dataclass(frozen=True, slots=True)
class _Retry:
    """When and how a client repeats a call whose connection failed."""

    attempts: int
    backoff: float
    max_backoff: float
    sleep: Callable[[float], Any] = field(default=time.sleep)

    def policy(self, call: _Call[Any]) -> dict[str, Any]:
        """The arguments of a tenacity ``Retrying`` (or ``AsyncRetrying``) for ``call``."""
        retryable = _UNREACHED + _BROKEN if call.idempotent else _UNREACHED
        return {
            "retry": tenacity.retry_if_exception_type(retryable),
            "stop": tenacity.stop_after_attempt(self.attempts),
            "wait": tenacity.wait_exponential(multiplier=self.backoff, max=self.max_backoff)
            + tenacity.wait_random(0, self.backoff),
            "sleep": self.sleep,
            "before_sleep": _logger_of_retries(call, self.attempts),
            "reraise": True,
        }


def _logger_of_retries(
    call: _Call[Any], attempts: int
) -> Callable[[tenacity.RetryCallState], None]:
    def log(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        pause = state.next_action.sleep if state.next_action is not None else 0.0
        logger.info(
            "%s %s failed (%s: %s); attempt %d of %d in %.2f s",
            call.method,
            call.path,
            type(error).__name__,
            error,
            state.attempt_number + 1,
            attempts,
            pause,
        )

    return log


def _job(raw: bytes) -> JobInfo:
    return JobInfo.model_validate_json(raw)


def _outcome(raw: bytes) -> tuple[bool, str]:
    answer = Outcome.model_validate_json(raw)
    return answer.ok, answer.message


def _update(raw: bytes) -> JobUpdate | None:
    answer = WaitAnswer.model_validate_json(raw)
    if not answer.changed or answer.job is None:
        return None
    return JobUpdate(job=answer.job, log=answer.log or [])


def _ignore(raw: bytes) -> None:
    return None


_LOCKS = pydantic.TypeAdapter(list[LockState])
_OPS = pydantic.TypeAdapter(list[OpDescription])


PriorityFilter = int | str | tuple[int | str, int | str]
"""One priority (a number or a name) or an inclusive ``(from, to)`` range, as ``JobQueue.list``."""


@dataclass(frozen=True, slots=True)
class ListFilters:
    """``list``'s order and filters beyond status: as ``JobQueue.list`` takes them."""

    newest_first: bool = False
    before: int | None = None
    priority: PriorityFilter | None = None
    op: str | None = None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.newest_first:
            params["order"] = "desc"
        if self.before is not None:
            params["before"] = self.before
        if isinstance(self.priority, tuple):
            params["priority"] = f"{self.priority[0]}..{self.priority[1]}"
        elif self.priority is not None:
            params["priority"] = str(self.priority)
        if self.op is not None:
            params["op"] = self.op
        return params


class _Calls:
    """The requests behind each method, shared by ``Client`` and ``AsyncClient``."""

    @staticmethod
    def submit(
        ops: Sequence[Mapping[str, Any]], priority: int | str | None, depends: Iterable[Any]
    ) -> _Call[int]:
        body = {"ops": list(ops), "priority": priority, "depends": _depends(depends)}
        return _Call(
            "POST",
            "/v1/jobs",
            lambda raw: Submitted.model_validate_json(raw).id,
            json=body,
            idempotent=False,
        )

    @staticmethod
    def submit_many(jobs: Sequence[Mapping[str, Any]]) -> _Call[builtins.list[int]]:
        batch = [
            {**job, "depends": _depends(job["depends"])} if "depends" in job else dict(job)
            for job in jobs
        ]
        return _Call(
            "POST",
            "/v1/jobs/batch",
            lambda raw: SubmittedBatch.model_validate_json(raw).ids,
            json={"jobs": batch},
            idempotent=False,
        )

    @staticmethod
    def get(job_id: int) -> _Call[JobInfo]:
        return _Call("GET", f"/v1/jobs/{job_id}", _job)

    @staticmethod
    def list_page(
        status: OpStatus | str | Iterable[OpStatus | str] | None,
        limit: int,
        after: int | None,
        archived: bool | None,
        filters: ListFilters,
    ) -> _Call[JobPage]:
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status if isinstance(status, str) else ",".join(status)
        if after is not None:
            params["after"] = after
        if archived is not None:
            params["archived"] = str(archived).lower()
        params.update(filters.params())
        return _Call("GET", "/v1/jobs", JobPage.model_validate_json, params=params)

    @staticmethod
    def wait_for_change(
        job_id: int, since_log_serial: int, timeout: float, since_status: OpStatus | str | None
    ) -> _Call[JobUpdate | None]:
        params: dict[str, Any] = {"since_serial": since_log_serial, "timeout": timeout}
        if since_status is not None:
            params["status"] = str(since_status)
        return _Call(
            "GET",
            f"/v1/jobs/{job_id}/wait",
            _update,
            params=params,
            timeout=min(timeout, MAX_WAIT) + POLL_SLACK,
        )

    @staticmethod
    def cancel(job_id: int) -> _Call[tuple[bool, str]]:
        return _Call("POST", f"/v1/jobs/{job_id}/cancel", _outcome)

    @staticmethod
    def change_priority(job_id: int, priority: int | str) -> _Call[tuple[bool, str]]:
        return _Call("PUT", f"/v1/jobs/{job_id}/priority", _outcome, json={"priority": priority})

    @staticmethod
    def explain(job_id: int) -> _Call[Explanation]:
        return _Call("GET", f"/v1/jobs/{job_id}/explain", Explanation.model_validate_json)

    @staticmethod
    def archive(job_id: int) -> _Call[None]:
        return _Call("POST", f"/v1/jobs/{job_id}/archive", _ignore)

    @staticmethod
    def quarantined(scan: bool) -> _Call[builtins.list[QuarantinedJob]]:
        return _Call(
            "GET",
            "/v1/quarantine",
            lambda raw: QuarantineList.model_validate_json(raw).jobs,
            params={"scan": str(scan).lower()},
        )

    @staticmethod
    def remove_quarantined(job_id: int) -> _Call[None]:
        return _Call("DELETE", f"/v1/quarantine/{job_id}", _ignore)

    @staticmethod
    def auto_archive(older_than_s: float) -> _Call[builtins.list[int]]:
        return _Call(
            "POST",
            "/v1/archive",
            lambda raw: Archived.model_validate_json(raw).archived,
            json={"older_than": older_than_s},
        )

    @staticmethod
    def lock_info(busy_only: bool) -> _Call[builtins.list[LockState]]:
        params = {"all": str(not busy_only).lower()}
        return _Call("GET", "/v1/locks", _LOCKS.validate_json, params=params)

    @staticmethod
    def ops() -> _Call[builtins.list[OpDescription]]:
        return _Call("GET", "/v1/ops", _OPS.validate_json)

    @staticmethod
    def status() -> _Call[DaemonStatus]:
        return _Call("GET", "/v1/status", DaemonStatus.model_validate_json)

    @staticmethod
    def set_drained(drained: bool) -> _Call[None]:
        return _Call("PUT", "/v1/drain", _ignore, json={"drained": drained})


class _Base:
    """What both clients share: the address, the headers, the retry policy, the errors."""

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float,
        retries: int,
        backoff: float,
        sleep: Callable[[float], Any],
    ) -> None:
        if retries < 0:
            raise errors.ValidationError(f"retries must be 0 or more, not {retries!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._retry = _Retry(retries + 1, backoff, max(backoff, 2.0), sleep)

    def _unreachable(self, exc: httpx.TransportError) -> errors.DaemonUnavailable:
        return errors.DaemonUnavailable(
            f"could not reach the jobplane daemon at {self.url}: {exc or type(exc).__name__}"
        )

    @staticmethod
    def _answer(call: _Call[_T], response: httpx.Response) -> _T:
        if response.status_code < 400:
            return call.parse(response.content)
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "error", f"HTTP {response.status_code}: {response.text[:200]}"
        raise ERRORS.get(code, errors.JobplaneError)(message)

    @staticmethod
    def _deadline(timeout: float | None) -> float | None:
        return None if timeout is None else time.monotonic() + timeout

    @staticmethod
    def _left(job: JobInfo, deadline: float | None, timeout: float | None) -> float:
        """Seconds left to wait for ``job`` to finish; WaitTimeout when none are."""
        left = MAX_WAIT if deadline is None else deadline - time.monotonic()
        if left <= 0:
            raise errors.WaitTimeout(
                f"job {job.id} did not finish within {timeout} s (it is {job.status})"
            )
        return min(left, MAX_WAIT)


def _depends(depends: Iterable[Any]) -> builtins.list[dict[str, Any]]:
    """Dependencies as the API takes them: ``{"job", "statuses"}`` from pairs or mappings."""
    result = []
    for dep in depends:
        if isinstance(dep, Mapping):
            result.append(dict(dep))
        else:
            job, statuses = dep
            result.append({"job": job, "statuses": [str(s) for s in statuses]})
    return result
