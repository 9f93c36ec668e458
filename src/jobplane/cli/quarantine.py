"""``jobplane quarantine``: jobs whose stored record cannot be read."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from .. import errors
from .common import AsJson, Token, Url, client, console, print_json, when

app = typer.Typer(
    name="quarantine",
    help="Jobs whose stored record cannot be read: they show as error and never run.",
    no_args_is_help=True,
)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app)


@app.command("list")
def list_quarantined(
    scan: Annotated[
        bool, typer.Option("--scan", help="read every job first (archived too) to find all")
    ] = False,
    as_json: AsJson = False,
    url: Url = "",
    token: Token = None,
) -> None:
    """List the jobs found so far whose stored record cannot be read."""
    with client(url, token) as c:
        found = c.quarantined(scan=scan)
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("no unreadable job records" + ("" if scan else " found yet (try --scan)"))
        return
    table = Table()
    for column in ("id", "archived", "received", "size", "what is wrong"):
        table.add_column(column)
    for job in found:
        table.add_row(
            str(job["id"]),
            "yes" if job["archived"] else "",
            when(job["received_at"]),
            str(job["size"]),
            job["reason"],
        )
    console.print(table)


@app.command("remove")
def remove(
    ids: Annotated[list[int], typer.Argument(help="job ids")],
    url: Url = "",
    token: Token = None,
) -> None:
    """Delete jobs whose stored record cannot be read (readable jobs are refused).

    Every id is tried; the exit code is that of the first one refused.
    """
    from . import EXIT_CODES

    first_error: errors.JobplaneError | None = None
    with client(url, token) as c:
        for job_id in ids:
            try:
                c.remove_quarantined(job_id)
            except (errors.DaemonUnavailable, errors.AuthError):
                raise
            except errors.JobplaneError as exc:
                print(f"jobplane: {exc}", file=sys.stderr)
                first_error = first_error or exc
                continue
            console.print(f"removed job {job_id}")
    if first_error is not None:
        raise SystemExit(next(code for cls, code in EXIT_CODES if isinstance(first_error, cls)))
