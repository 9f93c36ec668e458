"""The ``jobplane`` command line: the daemon (``serve``) and a client for it.

Exit codes: 0 done; 1 a job ended in error or was canceled, or an action was
refused; 2 bad usage or invalid input; 3 the daemon is unreachable, or its
store is in use by another daemon; 4 authentication failed; 5 no such job;
70 an unexpected internal error (please report it).
"""

from __future__ import annotations

import sys

import typer

from .. import errors
from . import jobs, quarantine, serve, system
from .common import EPILOG

app = typer.Typer(
    name="jobplane",
    help="jobplane: a persistent job queue with priorities and locks.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
serve.register(app)
jobs.register(app)
system.register(app)
quarantine.register(app)

EXIT_CODES: list[tuple[type[errors.JobplaneError], int]] = [
    (errors.StoreLocked, 3),
    (errors.DaemonUnavailable, 3),
    (errors.AuthError, 4),
    (errors.JobNotFound, 5),
    (errors.ValidationError, 2),
    (errors.JobplaneError, 1),
]


def main() -> None:
    """Entry point of the ``jobplane`` command: errors become one line and an exit code."""
    try:
        app()
    except errors.JobplaneError as exc:
        print(f"jobplane: {exc}", file=sys.stderr)
        code = next(code for cls, code in EXIT_CODES if isinstance(exc, cls))
        raise SystemExit(code) from None
    except KeyboardInterrupt:
        print("jobplane: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:  # a bug: one line, not a traceback
        print(
            f"jobplane: internal error ({type(exc).__name__}: {exc}); please report it",
            file=sys.stderr,
        )
        raise SystemExit(70) from None
