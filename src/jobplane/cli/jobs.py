"""Commands about jobs: submit, list, info, watch, wait, cancel, change-priority, ..."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..client import Client
from ..errors import ValidationError
from ..models import JobPage
from . import args
from .args import JobId, JobIds, Limit, SomeJobIds
from .common import (
    FINAL,
    AsJson,
    Command,
    Token,
    Url,
    client,
    console,
    err,
    print_json,
    print_table,
    shown_priority,
    when,
)

COLUMNS = ("id", "status", "priority", "ops", "summary", "received", "started", "ended")
FIELDS_HELP = (
    "comma-separated fields: id, status, priority (a pending job's current one, a finished "
    "job's that its ops ran with), ops (how many), summary (the op names), received, started, "
    "ended"
)
STATUS_GROUPS = {
    "pending": "queued,waiting",
    "running": "running,canceling",
    "finished": "success,error,canceled",
}


def _params(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if params_json:
        try:
            loaded = args.loads(params_json)
        except ValueError as exc:
            raise ValidationError(f"--params-json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValidationError("--params-json must be a JSON object")
        params.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(f"parameter {pair!r} must be written key=value")
        if key in params:
            raise ValidationError(f"parameter {key!r} is given twice")
        params[key] = args.param_value(key, value)
    return params


def _depends(specs: list[str]) -> list[dict[str, Any]]:
    """``ID`` (go on if it succeeds), ``ID:status,...``, or ``ID:any`` (whatever its end)."""
    result = []
    for spec in specs:
        match = re.fullmatch(r"(\d+)(?::([a-z,]+))?", spec)
        if not match:
            raise ValidationError(f"--depends {spec!r} must be ID, ID:status,status or ID:any")
        given = match.group(2)
        statuses = [] if given == "any" else given.split(",") if given else ["success"]
        if "" in statuses:
            raise ValidationError(f"--depends {spec!r} must be ID, ID:status,status or ID:any")
        result.append(args.dependency(match.group(1), statuses, f"--depends {spec!r}"))
    return result


def _result(result: Any) -> str:
    """An op's result as text; an error ``{"error": ..., "message": ...}`` as ``Error: message``."""
    if isinstance(result, dict) and set(result) == {"error", "message"}:
        return f"{result['error']}: {result['message']}"
    return json.dumps(result)


def _quiet_watch(c: Client, job_id: int) -> int:
    """Wait for the job; exit code 0 on success; an op's error goes to stderr."""
    job = c.wait(job_id)
    for index, op in enumerate(job.ops):
        if op.status in ("error", "canceled") and op.result is not None:
            err.print(f"op {index} ({op.op}) {op.status}: {_result(op.result)}")
            break
    return 0 if job.status == "success" else 1


def _count(page: Callable[[int | None, int], JobPage], below: int) -> int:
    """How many jobs the listing holds below id ``below``, a page of 1000 at a time."""
    count = 0
    cursor: int | None = below
    while cursor is not None:
        found = page(cursor, args.LIST_LIMIT)
        count += len(found.jobs)
        cursor = found.next
    return count


def _span(start: float | None, end: float | None) -> str:
    if start is None:
        return "not started"
    if end is None:
        return f"started {when(start)}, not ended"
    return f"{end - start:.3f} seconds"


def _print_info(job: dict[str, Any]) -> None:
    priority = shown_priority(job["status"], job["priority"], [op["priority"] for op in job["ops"]])
    console.print(f"job {job['id']}: {job['status']}, priority {priority}")
    console.print(f"  Received: {when(job['received_at'])}")
    console.print(f"  Processing start: {when(job['started_at']) or 'not started'}")
    console.print(f"  Processing end: {when(job['ended_at']) or 'not ended'}")
    console.print(f"  Total processing time: {_span(job['started_at'], job['ended_at'])}")
    for dep in job["depends"]:
        accepted = ", ".join(dep["statuses"]) or "any final status"
        console.print(f"  depends on job {dep['job']} ({accepted})")
    for index, op in enumerate(job["ops"]):
        console.print(
            f"  op {index} {op['op']}: {op['status']}, priority {op['priority']}, "
            f"params {json.dumps(op['params'])}"
        )
        console.print(f"    Execution start: {when(op['started_at']) or 'not started'}")
        console.print(f"    Execution end: {when(op['ended_at']) or 'not ended'}")
        if op["result"] is not None:
            label = "error" if op["status"] in ("error", "canceled") else "result"
            console.print(f"    {label}: {_result(op['result'])}")
        for entry in op["log"]:
            console.print(f"    {when(entry['time'])} {entry['message']}")


def _watch(c: Client, job_id: int, *, show_log: bool) -> int:
    job = c.get(job_id).model_dump(mode="json")
    serial = 0
    status = None
    with console.status(f"job {job_id}: {job['status']}") as spinner:
        while True:
            for op_index, op in enumerate(job["ops"]):
                for entry in op["log"]:
                    if entry["serial"] > serial and show_log:
                        console.print(f"{when(entry['time'])} op {op_index}: {entry['message']}")
            serial = max([serial] + [e["serial"] for op in job["ops"] for e in op["log"]])
            if job["status"] != status:
                status = job["status"]
                spinner.update(f"job {job_id}: {status}")
                if show_log and status not in FINAL:  # the end is printed once, below
                    console.print(f"job {job_id} is {status}")
            if status in FINAL:
                break
            change = c.wait_for_change(job_id, serial, 30, since_status=status)
            if change is not None:
                job = change.job.model_dump(mode="json")
    if status != "success":
        for index, op in enumerate(job["ops"]):
            if op["status"] in ("error", "canceled") and op["result"] is not None:
                err.print(f"op {index} ({op['op']}) {op['status']}: {_result(op['result'])}")
                break
    console.print(f"job {job_id} {status}")
    return 0 if status == "success" else 1


def register(app: typer.Typer) -> None:
    @app.command(cls=Command)
    def submit(
        op: Annotated[str | None, typer.Argument(help="the op to run, e.g. test.delay")] = None,
        params: Annotated[list[str] | None, typer.Argument(help="key=value parameters")] = None,
        params_json: Annotated[str | None, typer.Option(help="parameters as a JSON object")] = None,
        priority: Annotated[str | None, typer.Option(help="high, normal, low or -20..19")] = None,
        depends: Annotated[
            list[str] | None, typer.Option(help="ID, ID:status,... or ID:any (any final status)")
        ] = None,
        file: Annotated[Path | None, typer.Option(help="a JSON job, or a batch")] = None,
        wait: Annotated[bool, typer.Option(help="wait for the job to finish")] = False,
        as_json: Annotated[bool, typer.Option("--json", help='print {"ids": [...]}')] = False,
        url: Url = "",
        token: Token = None,
    ) -> None:
        """Submit a job (one op from the command line, or jobs from a JSON file)."""
        if (op is None) == (file is None):
            raise ValidationError("give an OP with key=value parameters, or --file, not both")
        if file is not None:
            for name, given in (
                ("--priority", priority),
                ("--depends", depends),
                ("--params-json", params_json),
            ):
                if given is not None:
                    raise ValidationError(f"{name} goes with OP; in --file, put it in each job")
            batch = args.job_file(file)
        else:
            assert op is not None
            body = {"op": op, "params": _params(params or [], params_json)}
            level = None if priority is None else args.priority(priority)
            after = _depends(depends or [])
        with client(url, token) as c:
            if file is not None:
                ids = c.submit_many(batch)
            else:
                ids = [c.submit([body], priority=level, depends=after)]
            if as_json:
                print_json({"ids": ids})
                if wait:
                    raise typer.Exit(max(_quiet_watch(c, job_id) for job_id in ids))
                return
            for job_id in ids:
                console.print(f"submitted job {job_id}")
            if wait:
                codes = [_watch(c, job_id, show_log=False) for job_id in ids]
                raise typer.Exit(max(codes))

    @app.command("list", cls=Command)
    def list_(
        status: Annotated[
            str | None, typer.Option(metavar="STATUSES", help="comma-separated statuses")
        ] = None,
        pending: Annotated[bool, typer.Option("--pending", help="queued or waiting jobs")] = False,
        running: Annotated[
            bool, typer.Option("--running", help="running or canceling jobs")
        ] = False,
        finished: Annotated[
            bool, typer.Option("--finished", help="jobs that ended: success, error, canceled")
        ] = False,
        output: Annotated[
            str, typer.Option("-o", "--output", metavar="FIELDS", help=FIELDS_HELP)
        ] = "id,status,priority,summary,received",
        limit: Limit = 100,
        before: Annotated[
            int | None, typer.Option(min=1, metavar="ID", help="only jobs older than ID")
        ] = None,
        after: Annotated[
            int | None, typer.Option(min=0, metavar="ID", help="only jobs newer than ID")
        ] = None,
        every: Annotated[bool, typer.Option("--all", help="every job, page after page")] = False,
        archived: Annotated[bool, typer.Option(help="list archived jobs")] = False,
        no_headers: Annotated[bool, typer.Option("--no-headers", help="no title row")] = False,
        separator: Annotated[
            str | None, typer.Option(metavar="TEXT", help="join fields with TEXT, unpadded")
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help='print {"jobs": [...], "next": ID or null}')
        ] = False,
        url: Url = "",
        token: Token = None,
    ) -> None:
        """List jobs, the newest first (as gnt-job list, with --before ID to page on)."""
        chosen = [
            name
            for name, flag in (("pending", pending), ("running", running), ("finished", finished))
            if flag
        ]
        statuses = (
            ",".join(
                [STATUS_GROUPS[n] for n in chosen] + ([args.statuses(status)] if status else [])
            )
            or None
        )
        columns = [c.strip() for c in output.split(",") if c.strip()]
        bad = [c for c in columns if c not in COLUMNS]
        if bad:
            raise ValidationError(
                f"unknown column(s) {', '.join(bad)}; columns: {', '.join(COLUMNS)}"
            )
        with client(url, token) as c:

            def page(below: int | None, size: int) -> JobPage:
                return c.list_page(
                    status=statuses,
                    limit=size,
                    after=after,
                    before=below,
                    archived=archived,
                    newest_first=True,
                )

            found = page(before, limit)
            jobs = list(found.jobs)
            while every and found.next is not None:
                found = page(found.next, limit)
                jobs.extend(found.jobs)
            more = 0 if found.next is None else _count(page, found.next)
        if as_json:
            print_json({"jobs": [job.model_dump(mode="json") for job in jobs], "next": found.next})
            return
        rows = []
        for job in jobs:
            cells = {
                "id": str(job.id),
                "status": job.status.value,
                "priority": str(shown_priority(job.status, job.priority, job.op_priorities)),
                "ops": str(job.ops),
                "summary": ", ".join(job.op_names),
                "received": when(job.received_at),
                "started": when(job.started_at),
                "ended": when(job.ended_at),
            }
            rows.append([cells[c] for c in columns])
        print_table(columns, rows, headers=not no_headers, separator=separator)
        if more:
            err.print(f"{more} more \u2014 use --all or --before {found.next}")

    @app.command(cls=Command)
    def info(ids: JobIds, as_json: AsJson = False, url: Url = "", token: Token = None) -> None:
        """Show jobs: their ops with start and end times, results and log (as gnt-job info)."""
        with client(url, token) as c:
            jobs = [c.get(job_id).model_dump(mode="json") for job_id in ids]
        if as_json:
            print_json(jobs if len(ids) > 1 else jobs[0])
            return
        for job in jobs:
            _print_info(job)

    @app.command(cls=Command)
    def watch(job_id: JobId, url: Url = "", token: Token = None) -> None:
        """Stream a job's log until it ends (exit 0 on success, 1 otherwise)."""
        with client(url, token) as c:
            raise typer.Exit(_watch(c, job_id, show_log=True))

    @app.command(cls=Command)
    def wait(job_id: JobId, url: Url = "", token: Token = None) -> None:
        """Wait until a job ends (exit 0 on success, 1 otherwise)."""
        with client(url, token) as c:
            raise typer.Exit(_watch(c, job_id, show_log=False))

    def _targets(c: Client, ids: list[int], statuses: str | None) -> list[int]:
        if statuses is None:
            return ids
        found: list[int] = []
        after = None
        while True:
            page = c.list_page(status=statuses, limit=1000, after=after)
            found.extend(job.id for job in page.jobs)
            after = page.next
            if after is None:
                return found

    def _each(results: list[tuple[int, bool, str]]) -> None:
        for _job_id, ok, message in results:
            console.print(f"{'ok' if ok else 'refused'}: {message}")
        raise typer.Exit(0 if all(ok for _, ok, _ in results) else 1)

    @app.command(cls=Command)
    def cancel(
        ids: SomeJobIds = None,
        pending: Annotated[
            bool, typer.Option("--pending", help="every queued or waiting job")
        ] = False,
        queued: Annotated[bool, typer.Option("--queued", help="every queued job")] = False,
        waiting: Annotated[
            bool, typer.Option("--waiting", help="every job waiting for a lock or a job")
        ] = False,
        url: Url = "",
        token: Token = None,
    ) -> None:
        """Cancel jobs by id, or every pending / queued / waiting job."""
        statuses = (
            "queued,waiting" if pending else "queued" if queued else "waiting" if waiting else None
        )
        if bool(ids) + pending + queued + waiting != 1:
            raise ValidationError("give job ids, or one of --pending, --queued or --waiting")
        with client(url, token) as c:
            _each([(i, *c.cancel(i)) for i in _targets(c, ids or [], statuses)])

    @app.command("change-priority", cls=Command)
    def change_priority(
        priority: Annotated[str, typer.Option(help="high, normal, low or -20..19")],
        ids: SomeJobIds = None,
        pending: Annotated[
            bool, typer.Option("--pending", help="every queued or waiting job")
        ] = False,
        url: Url = "",
        token: Token = None,
    ) -> None:
        """Change the priority of jobs' pending ops."""
        if bool(ids) == pending:
            raise ValidationError("give job ids or --pending, not both")
        level = args.priority(priority)
        with client(url, token) as c:
            targets = _targets(c, ids or [], "queued,waiting" if pending else None)
            _each([(i, *c.change_priority(i, level)) for i in targets])

    @app.command(cls=Command)
    def explain(job_id: JobId, as_json: AsJson = False, url: Url = "", token: Token = None) -> None:
        """Say why a job is not running."""
        with client(url, token) as c:
            answer = c.explain(job_id).model_dump(mode="json")
        if as_json:
            print_json(answer)
            return
        for reason in answer["reasons"]:
            console.print(reason)

    @app.command(cls=Command)
    def archive(ids: JobIds, url: Url = "", token: Token = None) -> None:
        """Archive finished jobs."""
        with client(url, token) as c:
            for job_id in ids:
                c.archive(job_id)
                console.print(f"archived job {job_id}")

    @app.command(cls=Command)
    def autoarchive(
        age: Annotated[str, typer.Argument(help="1d, 1w, 12h, 30m, all or SECONDS")],
        url: Url = "",
        token: Token = None,
    ) -> None:
        """Archive every job that finished longer ago than AGE."""
        seconds = args.age(age)
        with client(url, token) as c:
            archived = c.auto_archive(seconds)
        console.print(f"archived {len(archived)} job(s)")
