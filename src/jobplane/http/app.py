"""The HTTP API: a thin layer over ``JobQueue``, versioned under ``/v1``.

See ``docs/http-api.md`` for every endpoint. Endpoints are plain functions
(FastAPI runs them in its thread pool) except the long poll ``/wait``, a
coroutine that holds no thread while it waits (``waits.py``). Bodies are
checked before FastAPI reads them, and HEAD is served wherever GET is
(``middleware.py``). Numbers in paths and queries are digits, nothing else.
The ordinary case of the two hottest requests, ``POST /v1/jobs`` and
``GET /v1/jobs/{id}``, is answered inside those checks but in front of FastAPI
by ``FastPaths`` (``fastpath.py``); these routes still define them and answer
the rest.

Every route of the job API declares its answer's model (``jobplane.models``,
which the clients parse answers with), so the OpenAPI document describes each
answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Receive

from .. import __version__, dashboard, models
from ..jobs import MAX_ID, OpStatus
from ..queue import MAX_OP_SEARCH, MAX_WAIT, JobQueue
from . import apidocs, auth, dashboard_api, errors
from .fastpath import FastPaths
from .metrics import Metrics
from .middleware import BodyCheck, HeadAsGet
from .offload import Offload
from .schemas import (
    BATCH_EXAMPLES,
    JOB,
    JOB_EXAMPLES,
    ArchiveBody,
    BatchSpec,
    Digits,
    DrainBody,
    ErrorBody,
    JobBody,
    JobId,
    Order,
    PriorityBody,
    PriorityFilter,
    StatusList,
    TrueFalse,
    job_json,
    log_json,
    priority_range,
    quarantined_json,
    summary_json,
)
from .waits import DEFAULT_LIMIT, LongPolls, WaitOutcome

_ERRORS = {
    400: "the body is not JSON, not UTF-8, nested deeper than 100 levels, or has an "
    "integer of over 4300 digits (bad_json)",
    401: "no or unknown token (unauthorized)",
    403: "a read token where a write token is needed, or a non-loopback client "
    "without a tokens file (forbidden)",
    404: "no such job (job_not_found)",
    409: "the job is in the wrong state, e.g. unfinished, or readable (job_state)",
    413: "the body is larger than the limit (payload_too_large)",
    415: "the body is not sent as JSON (unsupported_media_type)",
    422: "a field is invalid; the message names it (invalid_request, invalid_priority, "
    "op_not_found, invalid_dependency)",
    503: "try again later (queue_full, queue_drained, store_error, shutting_down, too_many_waits)",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all in the one error shape."""
    return {status: {"model": ErrorBody, "description": _ERRORS[status]} for status in statuses}


GUARDED = (401, 403, 503)
"""Every endpoint behind a token may answer these; 503 when the store fails."""
BODY = (400, 413, 415, 422)
JOB_ERRORS = (404, 422)

TAGS = [
    {"name": "jobs", "description": "Submit jobs, read them, wait for them, change them."},
    {"name": "quarantine", "description": "Job records the store cannot read."},
    {"name": "locks", "description": "Who holds which lock and who waits for it."},
    {"name": "control", "description": "Change how the daemon takes and keeps jobs."},
    {"name": "system", "description": "Health, status, metrics and the registered ops."},
    {"name": "dashboard", "description": "What the web dashboard reads beyond the job API."},
]
"""The OpenAPI document's tags: each operation has one."""


def create_app(
    queue: JobQueue,
    *,
    tokens: auth.TokenStore | None = None,
    max_body_bytes: int = 1_048_576,
    max_waits: int = DEFAULT_LIMIT,
    fast_paths: bool = True,
) -> FastAPI:
    """The API for ``queue``; with ``tokens`` every endpoint but /healthz needs a token.

    ``app.state.long_polls`` holds the open waits and ``app.state.change_feed`` the
    dashboard's: the daemon closes both when it stops. ``fast_paths=False`` leaves
    every request to FastAPI (tests compare the two).
    """
    offload = Offload()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        offload.close()

    app = FastAPI(
        title="jobplane",
        version=__version__,
        description="A persistent job queue with priorities and locks. Every endpoint but "
        "`/healthz` needs a bearer token when the daemon has a tokens file: a `read` token "
        "for reads, a `write` token for changes. Errors share one shape, `ErrorBody`.",
        openapi_tags=TAGS,
        openapi_url=None,  # served below, behind the read role
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    errors.install(app)
    long_polls = LongPolls(queue, max_waits)
    app.state.long_polls = long_polls
    metrics = Metrics(queue, open_waits=lambda: long_polls.open)

    async def reader(request: Request, credentials: auth.Credentials) -> None:  # no thread hop
        client = request.client.host if request.client else None
        auth.check(tokens, credentials, client, write=False)

    async def writer(request: Request, credentials: auth.Credentials) -> None:  # no thread hop
        client = request.client.host if request.client else None
        auth.check(tokens, credentials, client, write=True)

    read = [Depends(reader)]
    write = [Depends(writer)]

    @app.get("/healthz", response_model=models.Health, tags=["system"], summary="Liveness")
    async def healthz() -> dict[str, str]:  # no I/O: answered on the event loop, no thread hop
        """Answers while the daemon serves requests; needs no token."""
        return {"status": "ok"}

    # The document names the registered ops, as /v1/ops does: it needs the read role.
    @app.get("/openapi.json", dependencies=read, include_in_schema=False)
    def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    # Their code comes from the package, not a CDN (apidocs.py): they work offline.
    @app.get("/docs", dependencies=read, include_in_schema=False)
    def swagger_page() -> HTMLResponse:
        return apidocs.swagger_page("/openapi.json")

    @app.get("/redoc", dependencies=read, include_in_schema=False)
    def redoc_page() -> HTMLResponse:
        return apidocs.redoc_page("/openapi.json")

    @app.get(
        "/metrics",
        dependencies=read,
        # Not PlainTextResponse: FastAPI would document the errors as text too.
        response_class=Response,
        responses={
            200: {
                "description": "the metrics",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **_errors(*GUARDED),
        },
        tags=["system"],
        summary="Prometheus metrics",
    )
    def get_metrics() -> Response:
        """Job counts, queue depth, op runs and open waits, in Prometheus' text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/jobs",
        status_code=201,
        response_model=models.Submitted,
        dependencies=write,
        responses=_errors(*GUARDED, *BODY),
        tags=["jobs"],
        summary="Submit a job",
    )
    def submit(body: Annotated[JobBody, Body(openapi_examples=JOB_EXAMPLES)]) -> dict[str, int]:
        """Queue one job of one or more ops, run in order; answers once it is committed.

        Ops wait for the jobs in ``depends`` to end in one of the given statuses and
        for the locks they need; ``priority`` (of the job, or of one op) says who goes
        first: -20 (first) to 19, or ``high`` (-10), ``normal`` (0), ``low`` (10).
        """
        return {"id": queue.submit_many([body.to_queue()])[0]}

    @app.post(
        "/v1/jobs/batch",
        status_code=201,
        response_model=models.SubmittedBatch,
        dependencies=write,
        responses=_errors(*GUARDED, *BODY),
        tags=["jobs"],
        summary="Submit several jobs at once",
    )
    def submit_batch(
        body: Annotated[BatchSpec, Body(openapi_examples=BATCH_EXAMPLES)],
    ) -> dict[str, list[int]]:
        """Queue several jobs in one commit: all of them or, on any error, none.

        A negative ``depends`` id names an earlier job of the same batch (-1: the one
        just before). The ids come back in the order of ``jobs``.
        """
        return {"ids": queue.submit_many([job.to_queue() for job in body.jobs])}

    @app.get(
        "/v1/jobs",
        response_model=models.JobPage,
        dependencies=read,
        responses=_errors(*GUARDED, 422),
        tags=["jobs"],
        summary="List jobs",
    )
    def list_jobs(
        status: Annotated[StatusList | None, Query(description="comma-separated statuses")] = None,
        limit: Annotated[int, Digits, Query(ge=1, le=1000)] = 100,
        after: Annotated[int | None, Digits, Query(ge=0, le=MAX_ID)] = None,
        archived: Annotated[bool | None, TrueFalse, Query()] = False,
        order: Annotated[Order, Query(description="asc: oldest first; desc: newest")] = "asc",
        before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="ids below")] = None,
        priority: Annotated[PriorityFilter | None, Query()] = None,
        op: Annotated[str | None, Query(min_length=1, max_length=MAX_OP_SEARCH)] = None,
    ) -> dict[str, Any]:
        """A page of job summaries, filtered by status, priority, op name or archive.

        ``next`` is the id to pass as ``after`` (``order=asc``) or ``before``
        (``order=desc``) for the following page; null on the last page.
        """
        statuses = [s.strip(" ") for s in status.split(",") if s.strip(" ")] if status else None
        jobs = queue.list(
            status=statuses,
            limit=limit,
            after=after or None,
            archived=archived,
            before=before,
            newest_first=order == "desc",
            priority=priority_range(priority),
            op=op,
        )
        return {
            "jobs": [summary_json(job) for job in jobs],
            "next": jobs[-1].id if len(jobs) == limit else None,
        }

    @app.get(
        JOB,
        response_model=models.JobInfo,
        dependencies=read,
        responses=_errors(*GUARDED, *JOB_ERRORS),
        tags=["jobs"],
        summary="Read a job",
    )
    def get_job(job_id: JobId) -> dict[str, Any]:
        """A job with its ops: status, priority, params, results, errors and times."""
        return job_json(queue.get(job_id))

    @app.get(
        f"{JOB}/wait",
        response_model=models.WaitAnswer,
        response_model_exclude_unset=True,
        dependencies=read,
        responses=_errors(*GUARDED, *JOB_ERRORS),
        tags=["jobs"],
        summary="Wait for a job to change",
    )
    async def wait(
        request: Request,
        job_id: JobId,
        since_serial: Annotated[int, Digits, Query(ge=0, le=MAX_ID)] = 0,
        timeout: Annotated[float, Query(ge=0, le=3600)] = 10.0,
        status: Annotated[OpStatus | None, Query(description="the status the caller knows")] = None,
    ) -> dict[str, Any]:
        """Long poll: answers when the job changes after ``since_serial`` or ``status``.

        Or after ``timeout`` seconds (``changed`` false), or at once if the daemon is
        stopping (``stopping`` true). ``log`` holds the job's log entries since then.
        """
        watch = queue.watch(job_id, since_serial, since_status=status)
        outcome = await long_polls.wait(
            watch, min(timeout, MAX_WAIT), lambda: _disconnected(request.receive)
        )
        return _wait_json(outcome)

    @app.post(
        f"{JOB}/cancel",
        response_model=models.Outcome,
        dependencies=write,
        responses=_errors(*GUARDED, *JOB_ERRORS),
        tags=["jobs"],
        summary="Cancel a job",
    )
    def cancel(job_id: JobId) -> dict[str, Any]:
        """Cancel a job: a queued one at once, a waiting one at its next turn.

        A running one stops if its op cooperates. ``ok`` false, with the reason
        in ``message``, if the job cannot be canceled.
        """
        ok, message = queue.cancel(job_id)
        return {"ok": ok, "message": message}

    @app.put(
        f"{JOB}/priority",
        response_model=models.Outcome,
        dependencies=write,
        responses=_errors(*GUARDED, *JOB_ERRORS, *BODY),
        tags=["jobs"],
        summary="Change a job's priority",
    )
    def change_priority(job_id: JobId, body: PriorityBody) -> dict[str, Any]:
        """Give the job's pending ops a new priority (it overrides escalation and aging).

        ``ok`` false, with the reason in ``message``, if the job has none left.
        """
        ok, message = queue.change_priority(job_id, body.priority)
        return {"ok": ok, "message": message}

    @app.get(
        f"{JOB}/explain",
        response_model=models.Explanation,
        dependencies=read,
        responses=_errors(*GUARDED, *JOB_ERRORS),
        tags=["jobs"],
        summary="Explain why a job waits",
    )
    def explain(job_id: JobId) -> dict[str, Any]:
        """Why the job is not running, or what it is doing, in plain words.

        The locks it waits for and who holds them, the job it depends on, the
        jobs ahead of it, and the escalations of its priority so far.
        """
        return queue.explain(job_id).to_dict()

    @app.post(
        f"{JOB}/archive",
        response_model=models.ArchiveDone,
        dependencies=write,
        responses=_errors(*GUARDED, *JOB_ERRORS, 409),
        tags=["jobs"],
        summary="Archive a finished job",
    )
    def archive(job_id: JobId) -> dict[str, bool]:
        """Move a finished job out of the default listing; it stays readable.

        409 ``job_state`` if the job has not ended.
        """
        queue.archive(job_id)
        return {"ok": True}

    @app.get(
        "/v1/quarantine",
        response_model=models.QuarantineList,
        dependencies=read,
        responses=_errors(*GUARDED, 422),
        tags=["quarantine"],
        summary="List unreadable job records",
    )
    def quarantine(
        scan: Annotated[bool, Query(description="read every record first, to find all")] = False,
    ) -> dict[str, Any]:
        """Jobs whose stored record cannot be read, found so far.

        ``scan`` reads every record first (archived ones too), to find them all.
        """
        return {"jobs": [quarantined_json(found) for found in queue.quarantined(scan=scan)]}

    @app.delete(
        "/v1/quarantine/{job_id}",
        response_model=models.ArchiveDone,
        dependencies=write,
        responses=_errors(*GUARDED, *JOB_ERRORS, 409),
        tags=["quarantine"],
        summary="Remove an unreadable job record",
    )
    def remove_quarantined(job_id: JobId) -> dict[str, bool]:
        """Delete a quarantined record (409 ``job_state`` if the record is readable after all)."""
        queue.remove_quarantined(job_id)
        return {"ok": True}

    @app.post(
        "/v1/archive",
        response_model=models.Archived,
        dependencies=write,
        responses=_errors(*GUARDED, *BODY),
        tags=["control"],
        summary="Archive old finished jobs",
    )
    def auto_archive(body: ArchiveBody) -> dict[str, list[int]]:
        """Archive every job that ended more than ``older_than`` seconds ago; answers their ids."""
        return {"archived": queue.auto_archive(body.older_than)}

    @app.get(
        "/v1/locks",
        response_model=list[models.LockState],
        dependencies=read,
        responses=_errors(*GUARDED, 422),
        tags=["locks"],
        summary="List locks",
    )
    def locks(all: Annotated[bool, TrueFalse, Query()] = False) -> list[dict[str, Any]]:
        """Locks held or waited for (every known lock with ``all``).

        Each with its mode, owners, since when, and its waiters by priority.
        """
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

    @app.get(
        "/v1/ops",
        response_model=list[models.OpDescription],
        dependencies=read,
        responses=_errors(*GUARDED),
        tags=["system"],
        summary="List the registered ops",
    )
    def ops() -> list[dict[str, Any]]:
        """Every op a job may name, with its description and the JSON Schema of its params."""
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

    @app.get(
        "/v1/status",
        response_model=models.DaemonStatus,
        dependencies=read,
        responses=_errors(*GUARDED),
        tags=["system"],
        summary="Daemon status",
    )
    def status() -> dict[str, Any]:
        """Workers, running ops, jobs by status and by priority, drained or not, version."""
        state = queue.status()
        return {
            "workers": state.workers,
            "running_ops": state.running_ops,
            "jobs_by_status": state.jobs_by_status,
            "jobs_by_priority": {str(k): v for k, v in state.jobs_by_priority.items()},
            "drained": state.drained,
            "version": state.version,
            "oldest_queued_age": queue.oldest_queued_age(),
            "open_waits": long_polls.open,
        }

    @app.put(
        "/v1/drain",
        response_model=models.DrainState,
        dependencies=write,
        responses=_errors(*GUARDED, *BODY),
        tags=["control"],
        summary="Drain or undrain the queue",
    )
    def drain(body: DrainBody) -> dict[str, bool]:
        """A drained queue refuses new jobs (503 ``queue_drained``) and finishes those it has."""
        queue.set_drained(body.drained)
        return {"drained": body.drained}

    feed = app.state.change_feed = dashboard_api.ChangeFeed()
    app.include_router(
        dashboard_api.router(
            queue, tokens=tokens, read=read, responses=_errors(*GUARDED, 422), feed=feed
        )
    )
    dashboard.mount(app)
    if fast_paths:  # inside BodyCheck and HeadAsGet: it sees only bodies they let through
        app.add_middleware(FastPaths, queue=queue, tokens=tokens, offload=offload)
    app.add_middleware(BodyCheck, limit=max_body_bytes)
    app.add_middleware(HeadAsGet)
    op_names = [op.name for op in queue.registry.ops()]
    app.openapi = _naming_ops(app, op_names)  # type: ignore[method-assign]
    return app


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone away (the request's body is already read)."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a server that cannot say: treat it as gone
        return


def _wait_json(outcome: WaitOutcome) -> dict[str, Any]:
    answer: dict[str, Any] = {"changed": outcome.change is not None}
    if outcome.change is not None:
        answer["job"] = job_json(outcome.change.job)
        answer["log"] = [log_json(e) for e in outcome.change.log]
    elif outcome.job is not None:
        answer["job"] = job_json(outcome.job)
    if outcome.stopping:
        answer["stopping"] = True
    return answer


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
