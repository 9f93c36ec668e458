"""Commands about the daemon: locks, ops, status, drain."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..errors import ValidationError
from .common import AsJson, Token, Url, client, console, print_json, when


def register(app: typer.Typer) -> None:
    @app.command()
    def locks(
        all_locks: Annotated[bool, typer.Option("--all", help="also free locks")] = False,
        as_json: AsJson = False,
        url: Url = "",
        token: Token = None,
    ) -> None:
        """Show locks with their holders and waiters (in grant order)."""
        with client(url, token) as c:
            infos = [i.model_dump(mode="json") for i in c.lock_info(busy_only=not all_locks)]
        if as_json:
            print_json(infos)
            return
        table = Table()
        for column in ("lock", "mode", "held by jobs", "since", "waiting (priority, mode, job)"):
            table.add_column(column)
        for info in infos:
            waiting = ", ".join(
                f"{p['priority']} {'S' if p['shared'] else 'X'} {p['job']}" for p in info["pending"]
            )
            owners = ", ".join(str(o) for o in info["owners"])
            table.add_row(
                f"{info['level']}:{info['name']}",
                info["mode"] or "",
                owners,
                when(info["since"]),
                waiting,
            )
        console.print(table)

    @app.command()
    def ops(as_json: AsJson = False, url: Url = "", token: Token = None) -> None:
        """List the registered ops and their parameters."""
        with client(url, token) as c:
            registered = [op.model_dump(mode="json") for op in c.ops()]
        if as_json:
            print_json(registered)
            return
        table = Table()
        for column in ("op", "parameters", "big lock", "description"):
            table.add_column(column)
        for op in registered:
            params = ", ".join(op["params_schema"].get("properties", {}))
            table.add_row(op["name"], params, op["big_lock"], op["description"])
        console.print(table)

    @app.command()
    def status(as_json: AsJson = False, url: Url = "", token: Token = None) -> None:
        """Show workers, queue depth by status and priority, and the drain flag."""
        with client(url, token) as c:
            state = c.status().model_dump(mode="json")
        if as_json:
            print_json(state)
            return
        console.print(
            f"jobplane {state['version']}: {state['workers']} workers, "
            f"{state['running_ops']} running"
        )
        console.print(
            "jobs: " + ", ".join(f"{n} {s}" for s, n in state["jobs_by_status"].items() if n)
        )
        if state["jobs_by_priority"]:
            console.print(
                "pending by priority: "
                + ", ".join(f"{p}: {n}" for p, n in state["jobs_by_priority"].items())
            )
        if state["oldest_queued_age"] is not None:
            console.print(f"oldest queued job has waited {state['oldest_queued_age']:.1f} s")
        console.print(
            "drained: submissions refused" if state["drained"] else "accepting submissions"
        )

    @app.command()
    def drain(
        state: Annotated[str, typer.Argument(help="on or off")], url: Url = "", token: Token = None
    ) -> None:
        """Refuse (on) or accept again (off) new submissions."""
        if state not in ("on", "off"):
            raise ValidationError("drain takes on or off")
        with client(url, token) as c:
            c.set_drained(state == "on")
        console.print(
            "drained: new submissions are refused" if state == "on" else "accepting submissions"
        )
