"""Options and helpers shared by the client commands."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from ..client import DEFAULT_URL, Client
from . import args

EPILOG = (
    "Exit codes: 0 ok; 1 job failed or canceled, or action refused; 2 invalid input; "
    "3 daemon unreachable or store in use; 4 authentication failed; 5 no such job; "
    "70 internal error."
)

Url = Annotated[str, typer.Option("--url", envvar="JOBPLANE_URL", help="the daemon's address")]
Token = Annotated[str | None, typer.Option("--token", envvar="JOBPLANE_TOKEN", help="an API token")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]

console = Console()
err = Console(stderr=True)


@contextmanager
def client(url: str, token: str | None) -> Iterator[Client]:
    """A client of the daemon at ``url``; the address and token are checked first."""
    with Client(args.url(url or DEFAULT_URL), token=args.token(token), timeout=40) as c:
        yield c


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


FINAL = ("success", "error", "canceled")
