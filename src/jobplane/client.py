"""``Client``: the HTTP API from Python, raising the same errors as ``JobQueue``.

Methods return the API's JSON (dicts and lists) as it is documented in
``docs/http-api.md``.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from . import errors
from .jobs import FINAL

DEFAULT_URL = "http://127.0.0.1:8470"


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
            "body_too_large": errors.ValidationError,
        }
    )
    return found


ERRORS = _codes()


class Client:
    """A connection to a jobplane daemon. Use as a context manager, or ``close()`` it."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 10.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

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

    # -- jobs ---------------------------------------------------------------

    def submit(
        self,
        ops: Sequence[Mapping[str, Any]],
        *,
        priority: int | str | None = None,
        depends: Iterable[Any] = (),
    ) -> int:
        body = {"ops": list(ops), "priority": priority, "depends": _depends(depends)}
        return int(self._call("POST", "/v1/jobs", json=body)["id"])

    def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> builtins.list[int]:
        batch = [
            {**job, "depends": _depends(job.get("depends", ()))} if "depends" in job else dict(job)
            for job in jobs
        ]
        return [int(i) for i in self._call("POST", "/v1/jobs/batch", json={"jobs": batch})["ids"]]

    def get(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/jobs/{job_id}"))

    def list(
        self,
        status: str | Iterable[str] | None = None,
        limit: int = 100,
        after: int | None = None,
        archived: bool | None = False,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status if isinstance(status, str) else ",".join(status)
        if after is not None:
            params["after"] = after
        if archived is not None:
            params["archived"] = str(archived).lower()
        return dict(self._call("GET", "/v1/jobs", params=params))

    def wait(
        self, job_id: int, since_serial: int = 0, timeout: float = 10.0, status: str | None = None
    ) -> dict[str, Any] | None:
        """The job and its new log lines once it changes; None after ``timeout`` without change."""
        params: dict[str, Any] = {"since_serial": since_serial, "timeout": timeout}
        if status is not None:
            params["status"] = status
        answer = self._call(
            "GET", f"/v1/jobs/{job_id}/wait", params=params, timeout=min(timeout, 30) + 10
        )
        return dict(answer) if answer.get("changed") else None

    def wait_final(self, job_id: int, timeout: float | None = None) -> dict[str, Any]:
        """Block until the job is final; JobStateError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.get(job_id)
        while job["status"] not in FINAL:
            left = 30.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise errors.JobStateError(f"job {job_id} did not finish within {timeout} s")
            change = self.wait(job_id, _last_serial(job), min(left, 30.0), status=job["status"])
            if change is not None:
                job = change["job"]
        return job

    def cancel(self, job_id: int) -> tuple[bool, str]:
        answer = self._call("POST", f"/v1/jobs/{job_id}/cancel")
        return bool(answer["ok"]), str(answer["message"])

    def change_priority(self, job_id: int, priority: int | str) -> tuple[bool, str]:
        answer = self._call("PUT", f"/v1/jobs/{job_id}/priority", json={"priority": priority})
        return bool(answer["ok"]), str(answer["message"])

    def explain(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/jobs/{job_id}/explain"))

    def archive(self, job_id: int) -> None:
        self._call("POST", f"/v1/jobs/{job_id}/archive")

    def quarantined(self, scan: bool = False) -> builtins.list[dict[str, Any]]:
        """Jobs whose stored record cannot be read; ``scan`` reads every record to find all."""
        answer = self._call("GET", "/v1/quarantine", params={"scan": str(scan).lower()})
        return list(answer["jobs"])

    def remove_quarantined(self, job_id: int) -> None:
        """Delete a job whose stored record cannot be read (JobStateError for any other)."""
        self._call("DELETE", f"/v1/quarantine/{job_id}")

    def auto_archive(self, older_than: float) -> builtins.list[int]:
        return [
            int(i)
            for i in self._call("POST", "/v1/archive", json={"older_than": older_than})["archived"]
        ]

    # -- the daemon ------------------------------------------------------------

    def locks(self, all: bool = False) -> builtins.list[dict[str, Any]]:
        return list(self._call("GET", "/v1/locks", params={"all": str(all).lower()}))

    def ops(self) -> builtins.list[dict[str, Any]]:
        return list(self._call("GET", "/v1/ops"))

    def status(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/status"))

    def set_drained(self, drained: bool) -> None:
        self._call("PUT", "/v1/drain", json={"drained": drained})

    # -- plumbing ------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise errors.DaemonUnavailable(
                f"could not reach the jobplane daemon at {self.url}: {exc or type(exc).__name__}"
            ) from None
        if response.status_code < 400:
            return response.json()
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "error", f"HTTP {response.status_code}: {response.text[:200]}"
        raise ERRORS.get(code, errors.JobplaneError)(message)


def _depends(depends: Iterable[Any]) -> list[dict[str, Any]]:
    result = []
    for dep in depends:
        if isinstance(dep, Mapping):
            result.append(dict(dep))
        else:
            job, statuses = dep
            result.append({"job": job, "statuses": list(statuses)})
    return result


def _last_serial(job: Mapping[str, Any]) -> int:
    return max((e["serial"] for op in job["ops"] for e in op["log"]), default=0)
