"""The HTTP API: a thin layer over ``JobQueue``, versioned under ``/v1``.

See ``docs/http-api.md`` for every endpoint. Endpoints are plain functions
(FastAPI runs them in its thread pool) except the long poll ``/wait``, which
waits on a thread of its own pool so that watchers never starve other requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..jobs import MAX_ID, OpStatus
from ..queue import MAX_WAIT, JobQueue
from . import auth, errors
from .metrics import Metrics
from .schemas import (
    ArchiveBody,
    BatchSpec,
    DrainBody,
    ErrorBody,
    JobBody,
    PriorityBody,
    StatusList,
    job_json,
    log_json,
    quarantined_json,
    summary_json,
)

JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="a job id")]
MAX_WATCHERS = 200
_ERRORS = {
    400: "the body is not JSON (bad_json)",
    401: "no or unknown token (unauthorized)",
    403: "a read token where a write token is needed, or a non-loopback client "
    "without a tokens file (forbidden)",
    404: "no such job (job_not_found)",
    409: "the job is in the wrong state, e.g. unfinished, or readable (job_state)",
    413: "the body is larger than the limit (body_too_large)",
    422: "a field is invalid; the message names it (invalid_request, invalid_priority, "
    "op_not_found, invalid_dependency)",
    503: "try again later (queue_full, queue_drained, store_error)",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all in the one error shape."""
    return {status: {"model": ErrorBody, "description": _ERRORS[status]} for status in statuses}


GUARDED = (401, 403, 503)
"""Every endpoint behind a token may answer these; 503 when the store fails."""
BODY = (400, 413, 422)
JOB = (404, 422)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = errors.error_response(
            413, "body_too_large", f"the request body is larger than {self.limit} bytes"
        )
        await response({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(
    queue: JobQueue,
    *,
    tokens: auth.TokenStore | None = None,
    max_body_bytes: int = 1_048_576,
) -> FastAPI:
    """The API for ``queue``; with ``tokens`` every endpoint but /healthz needs a token."""
    app = FastAPI(
        title="jobplane",
        version=__version__,
        description="A persistent job queue with priorities and locks.",
    )
    errors.install(app)
    metrics = Metrics(queue)
    watchers = anyio.CapacityLimiter(MAX_WATCHERS)

    async def reader(request: Request) -> None:  # cheap: no thread hop
        client = request.client.host if request.client else None
        auth.check(tokens, request.headers.get("authorization"), client, write=False)

    async def writer(request: Request) -> None:  # cheap: no thread hop
        client = request.client.host if request.client else None
        auth.check(tokens, request.headers.get("authorization"), client, write=True)

    read = [Depends(reader)]
    write = [Depends(writer)]

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/metrics",
        dependencies=read,
        response_class=PlainTextResponse,
        responses=_errors(*GUARDED),
    )
    def get_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/jobs", status_code=201, dependencies=write, responses=_errors(*GUARDED, *BODY))
    def submit(body: JobBody) -> dict[str, int]:
        return {"id": queue.submit_many([body.to_queue()])[0]}

    @app.post(
        "/v1/jobs/batch", status_code=201, dependencies=write, responses=_errors(*GUARDED, *BODY)
    )
    def submit_batch(body: BatchSpec) -> dict[str, list[int]]:
        return {"ids": queue.submit_many([job.to_queue() for job in body.jobs])}

    @app.get("/v1/jobs", dependencies=read, responses=_errors(*GUARDED, 422))
    def list_jobs(
        status: Annotated[StatusList | None, Query(description="comma-separated statuses")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
        archived: Annotated[bool | None, Query()] = False,
    ) -> dict[str, Any]:
        statuses = [s.strip(" ") for s in status.split(",") if s.strip(" ")] if status else None
        jobs = queue.list(status=statuses, limit=limit, after=after or None, archived=archived)
        return {
            "jobs": [summary_json(job) for job in jobs],
            "next": jobs[-1].id if len(jobs) == limit else None,
        }

    @app.get("/v1/jobs/{job_id}", dependencies=read, responses=_errors(*GUARDED, *JOB))
    def get_job(job_id: JobId) -> dict[str, Any]:
        return job_json(queue.get(job_id))

    @app.get("/v1/jobs/{job_id}/wait", dependencies=read, responses=_errors(*GUARDED, *JOB))
    async def wait(
        job_id: JobId,
        since_serial: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        timeout: Annotated[float, Query(ge=0, le=3600)] = 10.0,
        status: Annotated[OpStatus | None, Query(description="the status the caller knows")] = None,
    ) -> dict[str, Any]:
        def block() -> Any:
            return queue.wait_for_change(
                job_id, since_serial, min(timeout, MAX_WAIT), since_status=status
            )

        change = await anyio.to_thread.run_sync(block, limiter=watchers)
        if change is None:
            return {"changed": False}
        return {
            "changed": True,
            "job": job_json(change.job),
            "log": [log_json(e) for e in change.log],
        }

    @app.post("/v1/jobs/{job_id}/cancel", dependencies=write, responses=_errors(*GUARDED, *JOB))
    def cancel(job_id: JobId) -> dict[str, Any]:
        ok, message = queue.cancel(job_id)
        return {"ok": ok, "message": message}

    @app.put(
        "/v1/jobs/{job_id}/priority",
        dependencies=write,
        responses=_errors(*GUARDED, *JOB, *BODY),
    )
    def change_priority(job_id: JobId, body: PriorityBody) -> dict[str, Any]:
        ok, message = queue.change_priority(job_id, body.priority)
        return {"ok": ok, "message": message}

    @app.get("/v1/jobs/{job_id}/explain", dependencies=read, responses=_errors(*GUARDED, *JOB))
    def explain(job_id: JobId) -> dict[str, Any]:
        return queue.explain(job_id).to_dict()

    @app.post(
        "/v1/jobs/{job_id}/archive", dependencies=write, responses=_errors(*GUARDED, *JOB, 409)
    )
    def archive(job_id: JobId) -> dict[str, bool]:
        queue.archive(job_id)
        return {"ok": True}

    @app.get("/v1/quarantine", dependencies=read, responses=_errors(*GUARDED, 422))
    def quarantine(
        scan: Annotated[bool, Query(description="read every record first, to find all")] = False,
    ) -> dict[str, Any]:
        return {"jobs": [quarantined_json(found) for found in queue.quarantined(scan=scan)]}

    @app.delete(
        "/v1/quarantine/{job_id}", dependencies=write, responses=_errors(*GUARDED, *JOB, 409)
    )
    def remove_quarantined(job_id: JobId) -> dict[str, bool]:
        queue.remove_quarantined(job_id)
        return {"ok": True}

    @app.post("/v1/archive", dependencies=write, responses=_errors(*GUARDED, *BODY))
    def auto_archive(body: ArchiveBody) -> dict[str, list[int]]:
        return {"archived": queue.auto_archive(body.older_than)}

    @app.get("/v1/locks", dependencies=read, responses=_errors(*GUARDED, 422))
    def locks(all: bool = False) -> list[dict[str, Any]]:
        return [
            {
                "level": info.level,
                "name": info.name,
                "mode": info.mode,
                "owners": list(info.owners),
                "since": info.since,
                "pending": [
                    {"priority": p, "shared": shared, "job": owner}
                    for p, shared, owner in info.pending
                ],
            }
            for info in queue.lock_info()
            if all or info.owners or info.pending
        ]

    @app.get("/v1/ops", dependencies=read, responses=_errors(*GUARDED))
    def ops() -> list[dict[str, Any]]:
        return [
            {
                "name": op.name,
                "description": op.description,
                "params_schema": op.params_model.model_json_schema(),
                "big_lock": op.big_lock,
                "retry_on_crash": op.retry_on_crash,
            }
            for op in queue.registry.ops()
        ]

    @app.get("/v1/status", dependencies=read, responses=_errors(*GUARDED))
    def status() -> dict[str, Any]:
        state = queue.status()
        return {
            "workers": state.workers,
            "running_ops": state.running_ops,
            "jobs_by_status": state.jobs_by_status,
            "jobs_by_priority": {str(k): v for k, v in state.jobs_by_priority.items()},
            "drained": state.drained,
            "version": state.version,
            "oldest_queued_age": queue.oldest_queued_age(),
        }

    @app.put("/v1/drain", dependencies=write, responses=_errors(*GUARDED, *BODY))
    def drain(body: DrainBody) -> dict[str, bool]:
        queue.set_drained(body.drained)
        return {"drained": body.drained}

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    op_names = [op.name for op in queue.registry.ops()]
    app.openapi = _naming_ops(app, op_names)  # type: ignore[method-assign]
    return app


def _naming_ops(app: FastAPI, names: list[str]) -> Callable[[], dict[str, Any]]:
    """FastAPI's OpenAPI document, with the registered op names as the values of ``op``.

    Only documented: an unknown name still gets 422 op_not_found from the queue.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document["components"]["schemas"]["OpSpec"]["properties"]["op"]["enum"] = names
            app.openapi_schema = document
        return app.openapi_schema

    return openapi
