"""Options and helpers shared by the client commands."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand

from ..client import DEFAULT_URL, Client
from . import args

EPILOG = (
    "Exit codes: 0 ok; 1 job failed or canceled, or action refused; 2 invalid input; "
    "3 daemon unreachable or store in use; 4 authentication failed; 5 no such job; "
    "70 internal error."
)

Url = Annotated[
    str,
    typer.Option(
        "--url", metavar="URL", help="the daemon's address (also before the command; JOBPLANE_URL)"
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", metavar="TOKEN", help="an API token (also before the command; JOBPLANE_TOKEN)"
    ),
]
"""``--url`` / ``--token`` after the command; ``jobplane --url ... COMMAND`` and the
environment are read by the root command (``cli.root``), and the one after the command wins."""
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


def _type_name(param: Any) -> str:
    """click's names for a value (``INTEGER``, ``PATH``), not typer's ``<int>``."""
    kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    names = {int: "INTEGER", float: "NUMBER", Path: "PATH"}
    return next((name for cls, name in names.items() if kind is cls), "TEXT")


def _record(param: Any) -> tuple[str, str]:
    """One line of help: ``--limit INTEGER  at most this many jobs  [default: 100]``."""
    help_text = getattr(param, "help", None) or ""
    if param.param_type_name == "option":
        name = ", ".join(param.opts)
        if not getattr(param, "is_flag", False):
            name += f" {param.metavar or _type_name(param)}"
        default = param.default
        if getattr(param, "show_default", None) is not False and default not in (
            None,
            False,
            "",
            (),
        ):
            help_text += f"  [default: {default}]"
        return name, help_text.strip()
    name = (param.metavar or (param.name or "").upper()) + ("..." if param.nargs != 1 else "")
    return name, help_text


class Command(TyperCommand):
    """A command whose help names values as click does (``--workers INTEGER``, ``IDS...``)."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            if getattr(param, "hidden", False):
                continue
            record = _record(param)
            (options if param.param_type_name == "option" else arguments).append(record)
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


BEFORE_COMMAND: dict[str, str | None] = {}
"""``--url`` and ``--token`` given before the command (or from the environment)."""

console = Console(markup=False, soft_wrap=True)
"""Lines are never wrapped (scripts read them); tables go through ``print_table``."""
err = Console(stderr=True, markup=False, soft_wrap=True)


@contextmanager
def client(url: str, token: str | None) -> Iterator[Client]:
    """A client of the daemon at ``url``; the address and token are checked first."""
    url = url or BEFORE_COMMAND.get("url") or DEFAULT_URL
    token = token or BEFORE_COMMAND.get("token")
    with Client(args.url(url), token=args.token(token), timeout=40) as c:
        yield c


def print_table(
    columns: list[str], rows: list[list[str]], *, headers: bool = True, separator: str | None = None
) -> None:
    """A table: drawn by rich on a terminal; plain, never cut or wrapped, for a pipe.

    With ``separator`` the fields are joined with it (no padding), as ``gnt-job list
    --separator``; ``headers=False`` leaves the title row out.
    """
    if separator is None and headers and console.is_terminal:
        table = Table()
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    lines = ([columns] if headers else []) + rows
    if separator is not None:
        out = [separator.join(line) for line in lines]
    else:
        widths = [max(len(line[i]) for line in lines) for i in range(len(columns))] if lines else []
        out = [
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        ]
    for line in out:
        sys.stdout.write(line + "\n")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def shown_priority(status: str, current: int, op_priorities: list[int]) -> int:
    """A pending job's current priority; a finished one's is the priority its ops ran with
    (the derived priority of a job with no unfinished op says nothing: always normal)."""
    if status in FINAL and op_priorities:
        return min(op_priorities)
    return current


FINAL = ("success", "error", "canceled")
