"""``jobplane serve``: run the daemon."""

from __future__ import annotations

from typing import Annotated

import typer

from ..daemon import Settings, resolve
from ..daemon import serve as run_daemon
from .common import Command

D = Settings.model_construct()  # the defaults, without reading the environment


def register(app: typer.Typer) -> None:
    @app.command(cls=Command)
    def serve(
        db: Annotated[
            str | None,
            typer.Option(metavar="URL", help=f"store URL [default: {D.db}]"),
        ] = None,
        workers: Annotated[
            str | None,
            typer.Option(
                metavar="INTEGER",
                help=f"worker threads [default: {D.workers}]",
            ),
        ] = None,
        ops: Annotated[
            str | None,
            typer.Option(metavar="MODULE", help="Python module with your ops"),
        ] = None,
        host: Annotated[
            str | None,
            typer.Option(metavar="HOST", help=f"[default: {D.host}]"),
        ] = None,
        port: Annotated[
            str | None,
            typer.Option(metavar="INTEGER", help=f"[default: {D.port}]"),
        ] = None,
        tokens: Annotated[
            str | None,
            typer.Option(
                metavar="PATH",
                help="tokens file: one 'TOKEN read|write' a line",
            ),
        ] = None,
        lock_timeouts: Annotated[
            str | None,
            typer.Option(
                metavar="MIN,MAX,TOTAL",
                help="MIN,MAX,STEP_TOTAL seconds of lock attempts [default: 1,5,30]",
            ),
        ] = None,
        aging_interval: Annotated[
            str | None,
            typer.Option(
                metavar="SECONDS",
                help=f"seconds per aging step, 0 disables [default: {D.aging_interval:g}]",
            ),
        ] = None,
        prefetch: Annotated[
            str | None,
            typer.Option(
                metavar="INTEGER",
                help="jobs claimed beyond the free workers [default: 16 per worker]",
            ),
        ] = None,
        max_parked: Annotated[
            str | None,
            typer.Option(
                metavar="INTEGER",
                help="jobs waiting for locks at which no more are claimed [default: 20 per worker]",
            ),
        ] = None,
        lease: Annotated[
            str | None,
            typer.Option(
                metavar="SECONDS",
                help=f"the daemon's lease, renewed every third of it [default: {D.lease:g}]",
            ),
        ] = None,
        durability: Annotated[
            str | None,
            typer.Option(
                metavar="normal|full",
                help="normal or full [default: normal]",
            ),
        ] = None,
        log_format: Annotated[
            str | None,
            typer.Option(
                metavar="text|json",
                help="text or json [default: text]",
            ),
        ] = None,
        max_waits: Annotated[
            str | None,
            typer.Option(
                metavar="INTEGER",
                help=f"open long polls at most, 503 beyond [default: {D.max_waits}]",
            ),
        ] = None,
        max_connections: Annotated[
            str | None,
            typer.Option(
                metavar="INTEGER",
                help=f"connections served at once, 503 beyond [default: {D.max_connections}]",
            ),
        ] = None,
        read_timeout: Annotated[
            str | None,
            typer.Option(
                metavar="SECONDS",
                help=f"seconds a client has to send a whole request [default: {D.read_timeout:g}]",
            ),
        ] = None,
        config: Annotated[
            str | None,
            typer.Option(metavar="PATH", help="a TOML settings file"),
        ] = None,
    ) -> None:
        """Run the daemon: the job queue and its HTTP API (stops cleanly on SIGTERM/SIGINT).

        Each option can also be set as JOBPLANE_ and its name (JOBPLANE_WORKERS=4,
        JOBPLANE_CONFIG=jobplane.toml) or in the --config TOML file (workers = 4);
        an option wins over the environment, which wins over the file.
        """
        given = {
            "db": db,
            "workers": workers,
            "ops": ops,
            "host": host,
            "port": port,
            "tokens": tokens,
            "lock_timeouts": lock_timeouts,
            "aging_interval": aging_interval,
            "prefetch": prefetch,
            "max_parked": max_parked,
            "lease": lease,
            "durability": durability,
            "log_format": log_format,
            "max_waits": max_waits,
            "max_connections": max_connections,
            "read_timeout": read_timeout,
            "config": config,
        }
        run_daemon(resolve(given))
