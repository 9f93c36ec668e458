"""Commands about jobs: submit, list, info, watch, wait, cancel, change-priority, ..."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..client import Client
from ..errors import ValidationError
from . import args
from .args import JobId, JobIds, Limit, SomeJobIds
from .common import FINAL, AsJson, Token, Url, client, console, err, print_json, when

COLUMNS = ("id", "status", "priority", "ops", "summary", "received", "ended")
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


def _watch(c: Client, job_id: int, *, show_log: bool) -> int:
    job = c.get(job_id)
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
                if show_log:
                    console.print(f"job {job_id} is {status}")
            if status in FINAL:
                break
            change = c.wait(job_id, serial, 30, status=status)
            if change is not None:
                job = change["job"]
    if status != "success":
        for index, op in enumerate(job["ops"]):
            if op["status"] in ("error", "canceled") and op["result"] is not None:
                err.print(f"op {index} ({op['op']}) {op['status']}: {op['result']}")
                break
    console.print(f"job {job_id} {status}")
    return 0 if status == "success" else 1


def register(app: typer.Typer) -> None:
    @app.command()
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
            for job_id in ids:
                console.print(f"submitted job {job_id}")
            if wait:
                codes = [_watch(c, job_id, show_log=False) for job_id in ids]
                raise typer.Exit(max(codes))

    @app.command("list")
    def list_(
        status: Annotated[str | None, typer.Option(help="comma-separated statuses")] = None,
        pending: Annotated[bool, typer.Option("--pending")] = False,
        running: Annotated[bool, typer.Option("--running")] = False,
        finished: Annotated[bool, typer.Option("--finished")] = False,
        output: Annotated[
            str, typer.Option("-o", "--output", help="columns")
        ] = "id,status,priority,summary,received",
        limit: Limit = 100,
        archived: Annotated[bool, typer.Option(help="list archived jobs")] = False,
        as_json: AsJson = False,
        url: Url = "",
        token: Token = None,
    ) -> None:
        """List jobs."""
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
            jobs = c.list(status=statuses, limit=limit, archived=archived)["jobs"]
        if as_json:
            print_json(jobs)
            return
        table = Table()
        for column in columns:
            table.add_column(column)
        for job in jobs:
            cells = {
                "id": str(job["id"]),
                "status": job["status"],
                "priority": str(job["priority"]),
                "ops": str(job["ops"]),
                "summary": ", ".join(job["op_names"]),
                "received": when(job["received_at"]),
                "ended": when(job["ended_at"]),
            }
            table.add_row(*(cells[c] for c in columns))
        console.print(table)

    @app.command()
    def info(job_id: JobId, as_json: AsJson = False, url: Url = "", token: Token = None) -> None:
        """Show one job: its ops, results and log."""
        with client(url, token) as c:
            job = c.get(job_id)
        if as_json:
            print_json(job)
            return
        console.print(f"job {job['id']}: {job['status']}, priority {job['priority']}")
        console.print(
            f"received {when(job['received_at'])}, started {when(job['started_at'])}, "
            f"ended {when(job['ended_at'])}"
        )
        for dep in job["depends"]:
            accepted = ", ".join(dep["statuses"]) or "any final status"
            console.print(f"depends on job {dep['job']} ({accepted})")
        for index, op in enumerate(job["ops"]):
            console.print(
                f"  op {index} {op['op']} {op['status']} priority {op['priority']} "
                f"params {json.dumps(op['params'])}"
            )
            if op["result"] is not None:
                console.print(f"    result: {json.dumps(op['result'])}")
            for entry in op["log"]:
                console.print(f"    {when(entry['time'])} {entry['message']}")

    @app.command()
    def watch(job_id: JobId, url: Url = "", token: Token = None) -> None:
        """Stream a job's log until it ends (exit 0 on success, 1 otherwise)."""
        with client(url, token) as c:
            raise typer.Exit(_watch(c, job_id, show_log=True))

    @app.command()
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
            page = c.list(status=statuses, limit=1000, after=after)
            found.extend(job["id"] for job in page["jobs"])
            after = page["next"]
            if after is None:
                return found

    def _each(results: list[tuple[int, bool, str]]) -> None:
        for _job_id, ok, message in results:
            console.print(f"{'ok' if ok else 'refused'}: {message}")
        raise typer.Exit(0 if all(ok for _, ok, _ in results) else 1)

    @app.command()
    def cancel(
        ids: SomeJobIds = None,
        pending: Annotated[bool, typer.Option("--pending")] = False,
        queued: Annotated[bool, typer.Option("--queued")] = False,
        waiting: Annotated[bool, typer.Option("--waiting")] = False,
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

    @app.command("change-priority")
    def change_priority(
        priority: Annotated[str, typer.Option(help="high, normal, low or -20..19")],
        ids: SomeJobIds = None,
        pending: Annotated[bool, typer.Option("--pending")] = False,
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

    @app.command()
    def explain(job_id: JobId, as_json: AsJson = False, url: Url = "", token: Token = None) -> None:
        """Say why a job is not running."""
        with client(url, token) as c:
            answer = c.explain(job_id)
        if as_json:
            print_json(answer)
            return
        for reason in answer["reasons"]:
            console.print(reason)

    @app.command()
    def archive(ids: JobIds, url: Url = "", token: Token = None) -> None:
        """Archive finished jobs."""
        with client(url, token) as c:
            for job_id in ids:
                c.archive(job_id)
                console.print(f"archived job {job_id}")

    @app.command()
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
