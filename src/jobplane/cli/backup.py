"""``jobplane backup``: copy the SQLite store while the daemon runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..stores import DEFAULT_URL
from ..stores.backup import backup as backup_store
from .common import Command


def register(app: typer.Typer) -> None:
    @app.command(cls=Command)
    def backup(
        path: Annotated[Path, typer.Argument(help="the file to write the copy to")],
        db: Annotated[
            str,
            typer.Option(envvar="JOBPLANE_DB", help="the store URL, as given to serve"),
        ] = DEFAULT_URL,
        replace: Annotated[
            bool, typer.Option("--replace", help="overwrite PATH if it exists")
        ] = False,
    ) -> None:
        """Copy the store to PATH, consistently, while the daemon runs (SQLite's online backup).

        Reads the database file itself: run it on the daemon's machine, as its user.
        """
        done = backup_store(db, path, replace=replace)
        typer.echo(  # one line, never wrapped: scripts read it
            f"backed up {done.source} to {done.destination}: {done.jobs} jobs, "
            f"schema version {done.schema_version}, {done.size_bytes / 1e6:.1f} MB "
            f"in {done.seconds:.2f} s"
        )
