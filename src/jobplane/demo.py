"""``make demo``: a simulated cluster workload through a real jobplane daemon.

Starts ``jobplane serve`` on a temporary SQLite database with the demo ops
(:mod:`jobplane.demo_ops`), submits a mixed workload over HTTP with the
Python client (a batch of routine low and normal jobs, then urgent high
jobs behind the backlog), shows it live (progress, running jobs, who waits
for which lock, escalations) and prints a summary. On a terminal it prints
the dashboard's address first and, after the summary, keeps the daemon up
for the dashboard until Enter or Ctrl-C; without one (stdin not a tty) it
ends after the summary. The daemon is stopped with SIGTERM at the end, also
on Ctrl-C or an error: nothing is left running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from . import demo_ops, priorities
from .client import Client
from .errors import DaemonUnavailable
from .jobs import FINAL

NODES = ["n1", "n2", "n3", "n4"]
INSTANCES = [f"web{i}" for i in range(1, 13)]
WORKERS = 2
URGENT_AFTER = 1.0 * demo_ops.SPEED  # seconds after the backlog is submitted

Spec = tuple[str, list[dict[str, Any]], str]


def _op(name: str, **params: Any) -> dict[str, Any]:
    return {"op": name, "params": params}


def workload() -> list[Spec]:
    """(label, ops, priority) of the routine jobs, in submission order."""
    jobs: list[Spec] = [
        ("evacuate n1", [_op("node.evacuate", node="n1")], "normal"),
        (
            "migrate web1 n1->n2",
            [_op("instance.migrate", instance="web1", source="n1", target="n2")],
            "normal",
        ),
    ]
    for i, inst in enumerate(INSTANCES * 2):
        node = NODES[1 + i % 3]
        verb = "start" if i < len(INSTANCES) else "stop"
        jobs.append((f"{verb} {inst}", [_op(f"instance.{verb}", instance=inst, node=node)], "low"))
    for node in NODES[1:]:
        jobs.append((f"health {node}", [_op("node.health", node=node)], "low"))
    jobs.append(("verify cluster", [_op("cluster.verify", seconds=0.2)], "low"))
    return jobs


URGENT: list[Spec] = [
    ("URGENT start web2", [_op("instance.start", instance="web2", node="n2")], "high"),
    ("URGENT health n4", [_op("node.health", node="n4")], "high"),
]


# -- the daemon -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def daemon(workdir: Path, console: Console) -> Iterator[tuple[str, int]]:
    """A ``jobplane serve`` child process; yields (url, pid); always stopped on exit."""
    port = _free_port()
    db = f"sqlite:///{workdir / 'demo.db'}"
    log_path = workdir / "daemon.log"
    # The demo's own settings; the user's JOBPLANE_* variables (a tokens file,
    # a config) must not change them. JOBPLANE_DEMO_SPEED passes through.
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    if "JOBPLANE_DEMO_SPEED" in os.environ:
        env["JOBPLANE_DEMO_SPEED"] = os.environ["JOBPLANE_DEMO_SPEED"]
    command = [
        sys.executable, "-m", "jobplane", "serve", "--db", db, "--ops", "jobplane.demo_ops",
        "--workers", str(WORKERS), "--port", str(port), "--lock-timeouts", "0.05,0.1,0.3",
        "--aging-interval", "0",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, child, log_path)
        console.print(f"[bold]jobplane demo[/]: daemon (pid {child.pid}) serving {url} on {db}")
        console.print(f"  {WORKERS} workers, ops from jobplane.demo_ops, log in {log_path}\n")
        yield url, child.pid
    finally:
        _stop(child)


def _wait_healthy(url: str, child: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    with Client(url, timeout=2, retries=0) as client:
        while True:
            if child.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise SystemExit(f"the daemon exited with {child.returncode}:\n{tail}")
            try:
                client.status()
                return
            except DaemonUnavailable:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the daemon did not answer on {url} within 30 s") from None
                time.sleep(0.05)  # polling a starting process; not test synchronisation


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


# -- the live view ----------------------------------------------------------------------------


class View:
    """What the terminal shows while the workload runs; fed by polling the API."""

    def __init__(self, console: Console, labels: dict[int, str]) -> None:
        self.console = console
        self.labels = labels
        self.priority: dict[int, int] = {}
        self.reported_waits: set[tuple[int, str]] = set()
        counts = TextColumn("{task.fields[counts]}")
        self.progress = Progress(
            TextColumn("[bold]jobs"), BarColumn(), MofNCompleteColumn(), counts
        )
        self.task = self.progress.add_task("jobs", total=len(labels), counts="")
        self.running = Table()
        self.waits = Table()

    def label(self, job_id: Any) -> str:
        return self.labels.get(int(job_id), f"job {job_id}") if job_id is not None else "?"

    def update(self, summaries: list[dict[str, Any]], locks: list[dict[str, Any]]) -> None:
        counts: dict[str, int] = {}
        for job in summaries:
            counts[job["status"]] = counts.get(job["status"], 0) + 1
            self._note_priority(job)
        finished = sum(n for status, n in counts.items() if status in FINAL)
        shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s not in FINAL)
        self.progress.update(self.task, completed=finished, total=len(summaries), counts=shown)

        self.running = Table(title="running", title_justify="left", expand=False)
        for column in ("job", "priority"):
            self.running.add_column(column)
        for job in summaries:
            if job["status"] == "running":
                self.running.add_row(self.label(job["id"]), priorities.name_of(job["priority"]))

        self.waits = Table(title="waiting for locks", title_justify="left")
        for column in ("lock", "held by", "waiting (priority)"):
            self.waits.add_column(column)
        for lock in locks:
            if not lock["pending"]:
                continue
            name = f"{lock['level']}:{lock['name']}"
            holders = ", ".join(self.label(o) for o in lock["owners"]) or "-"
            waiting = ", ".join(
                f"{self.label(p['job'])} ({priorities.name_of(p['priority'])})"
                for p in lock["pending"]
            )
            self.waits.add_row(name, holders, waiting)
            for p in lock["pending"]:
                key = (int(p["job"]), name)
                if p["job"] is not None and key not in self.reported_waits:
                    self.reported_waits.add(key)
                    self.console.print(
                        f"[yellow]waits[/]     {self.label(p['job'])} for {name}, held by {holders}"
                    )

        if not self.waits.row_count:
            self.waits.add_row("-", "-", "nothing waits for a lock right now")

    def _note_priority(self, job: dict[str, Any]) -> None:
        before = self.priority.get(job["id"])
        self.priority[job["id"]] = job["priority"]
        if before is not None and job["priority"] < before and job["status"] not in FINAL:
            self.console.print(
                f"[magenta]escalated[/] {self.label(job['id'])}: priority "
                f"{priorities.name_of(before)} -> {priorities.name_of(job['priority'])}"
            )

    def __rich__(self) -> Group:
        return Group(self.progress, self.running, self.waits)


def run(console: Console, url: str) -> dict[int, str]:
    """Submit the workload and show it until every job is final; returns the labels."""
    labels: dict[int, str] = {}
    with Client(url) as client:
        routine = workload()
        ids = client.submit_many([{"ops": ops, "priority": prio} for _, ops, prio in routine])
        labels.update(zip(ids, (label for label, _, _ in routine), strict=True))
        counts = {p: sum(1 for *_, q in routine if q == p) for p in ("normal", "low")}
        console.print(
            f"[green]submitted[/] {len(ids)} routine jobs in one batch "
            f"({counts['normal']} normal, {counts['low']} low)"
        )
        view = View(console, labels)
        submitted_at = time.monotonic()
        urgent_sent = False
        with Live(view, console=console, refresh_per_second=8, transient=True):
            while True:
                if not urgent_sent and time.monotonic() - submitted_at > URGENT_AFTER:
                    for label, ops, prio in URGENT:
                        labels[client.submit(ops, priority=prio)] = label
                    console.print("[bold red]submitted[/] 2 urgent (high) jobs behind the backlog")
                    urgent_sent = True
                summaries = _all_jobs(client)
                locks = [lock.model_dump(mode="json") for lock in client.lock_info(busy_only=True)]
                view.update(summaries, locks)
                unfinished = [j["id"] for j in summaries if j["status"] not in FINAL]
                if urgent_sent and not unfinished:
                    break
                # Block until an unfinished job changes, at most a tenth of a second.
                if unfinished:
                    client.wait_for_change(unfinished[0], timeout=0.1)
    return labels


def _all_jobs(client: Client) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.list_page(limit=1000, after=after)
        jobs.extend(job.model_dump(mode="json") for job in page.jobs)
        if page.next is None:
            return jobs
        after = page.next


# -- the summary -------------------------------------------------------------------------------


def summary(console: Console, jobs: list[dict[str, Any]], labels: dict[int, str]) -> None:
    def started(job: dict[str, Any]) -> float:
        return float(job["ops"][0]["started_at"] or float("inf"))

    ordered = sorted(jobs, key=started)
    table = Table(title="jobs in the order they started")
    for column in ("#", "job", "what", "submitted as", "ran at", "escalations", "status"):
        table.add_column(column)
    for rank, job in enumerate(ordered, 1):
        op = job["ops"][0]
        steps = sum(o["escalations"] for o in job["ops"])
        table.add_row(
            str(rank),
            str(job["id"]),
            labels[job["id"]],
            priorities.name_of(op["priority"] + steps),
            priorities.name_of(op["priority"]),
            str(steps) if steps else "",
            job["status"],
            style="bold red" if labels[job["id"]].startswith("URGENT") else None,
        )
    console.print(table)
    urgent = [j for j in ordered if labels[j["id"]].startswith("URGENT")]
    positions = [ordered.index(j) + 1 for j in urgent]
    last_urgent = max(started(u) for u in urgent)
    earlier = [j for j in jobs if j["id"] < min(u["id"] for u in urgent)]
    overtaken = sum(1 for j in earlier if started(j) > last_urgent)
    console.print(
        f"urgent jobs started at positions {positions}, overtaking {overtaken} routine jobs "
        "submitted before them"
    )
    for job in jobs:
        log = [e["message"] for op in job["ops"] for e in op["log"]]
        raised = [m for m in log if "priority raised" in m]
        if raised:
            console.print(
                f"[magenta]escalated[/] {labels[job['id']]}: {raised[0]} ... {raised[-1]}"
            )
    statuses: dict[str, int] = {}
    for job in jobs:
        statuses[job["status"]] = statuses.get(job["status"], 0) + 1
    span = max(j["ended_at"] or 0 for j in jobs) - min(j["received_at"] for j in jobs)
    console.print(
        f"{len(jobs)} jobs: "
        + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        + f"; finished in {span:.1f} s"
    )


def main() -> None:
    console = Console()
    interactive = sys.stdin.isatty()
    with tempfile.TemporaryDirectory(prefix="jobplane-demo-") as tmp:
        with daemon(Path(tmp), console) as (url, _pid):
            if interactive:
                console.print(f"[bold]dashboard[/]: open {url}/ in a browser to watch\n")
            labels = run(console, url)
            with Client(url) as client:
                jobs = [client.get(job_id).model_dump(mode="json") for job_id in sorted(labels)]
            summary(console, jobs, labels)
            if interactive:
                keep_serving(console, url)
        console.print("daemon stopped; nothing left running")


def keep_serving(console: Console, url: str) -> None:
    """On a terminal: leave the daemon up for the dashboard until Enter or Ctrl+C."""
    console.print(
        f"\n[bold]dashboard[/]: {url}/ stays up; press Enter or Ctrl+C to stop the daemon"
    )
    try:
        input()
    except (EOFError, KeyboardInterrupt):
        console.print()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
