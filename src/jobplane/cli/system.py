"""Commands about the daemon: locks, ops, status, drain."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer

from ..errors import ValidationError
from .common import AsJson, Command, Token, Url, client, console, print_json, print_table, when


def _plain(text: str) -> str:
    """A docstring's text without reStructuredText markup (``code``, :role:`name`)."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "").replace("`", "")


def _schema_type(prop: dict[str, Any]) -> str:
    """A JSON Schema type in words: ``number``, ``list of string``, ``string or null``."""
    if "anyOf" in prop:
        return " or ".join(_schema_type(p) for p in prop["anyOf"])
    kind = str(prop.get("type", "any"))
    if kind == "array":
        return f"list of {_schema_type(prop.get('items', {}))}"
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    return kind


def register(app: typer.Typer) -> None:
    @app.command(cls=Command)
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
        rows = []
        for info in infos:
            waiting = ", ".join(
                f"{p['priority']} {'S' if p['shared'] else 'X'} {p['job']}" for p in info["pending"]
            )
            owners = ", ".join(str(o) for o in info["owners"])
            rows.append(
                [
                    f"{info['level']}:{info['name']}",
                    info["mode"] or "",
                    owners,
                    when(info["since"]),
                    waiting,
                ]
            )
        columns = ["lock", "mode", "held by jobs", "since", "waiting (priority, mode, job)"]
        print_table(columns, rows)

    @app.command(cls=Command)
    def ops(as_json: AsJson = False, url: Url = "", token: Token = None) -> None:
        """List the registered ops and their parameters."""
        with client(url, token) as c:
            registered = [op.model_dump(mode="json") for op in c.ops()]
        if as_json:
            print_json(registered)
            return
        for op in registered:
            console.print(f"{op['name']}  (big lock: {op['big_lock']})")
            if op["description"]:
                console.print(f"  {_plain(op['description'])}")
            schema = op["params_schema"]
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                line = f"  {name}: {_schema_type(prop)}"
                if "default" in prop:
                    line += f" = {json.dumps(prop['default'])}"
                elif name in required:
                    line += " (required)"
                if prop.get("description"):
                    line += f"  {_plain(prop['description'])}"
                console.print(line)

    @app.command(cls=Command)
    def status(as_json: AsJson = False, url: Url = "", token: Token = None) -> None:
        """Show workers, queue depth by status and priority, and the drain flag."""
        with client(url, token) as c:
            state = c.status().model_dump(mode="json")
        if as_json:
            print_json(state)
            return
        console.print(
            f"jobplane {state['version']}: {state['workers']} workers, "
            f"{state['running_ops']} ops running"
        )
        console.print(
            "jobs: " + ", ".join(f"{n} {s}" for s, n in state["jobs_by_status"].items() if n)
        )
        if state["jobs_by_priority"]:
            console.print(  # running jobs are counted here too: not "pending"
                "unfinished jobs by priority: "
                + ", ".join(f"{p}: {n}" for p, n in state["jobs_by_priority"].items())
            )
        if state["oldest_queued_age"] is not None:
            console.print(f"oldest queued job has waited {state['oldest_queued_age']:.1f} s")
        console.print(
            "drained: submissions refused" if state["drained"] else "accepting submissions"
        )

    @app.command(cls=Command)
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
