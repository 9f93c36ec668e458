"""``make demo``: a simulated cluster workload through an embedded job queue.

Many low-priority jobs, a node evacuation holding a node, a low job that
must wait for that node (and escalates), a cluster verification that needs
the whole cluster, and a few urgent jobs that overtake the backlog. Prints
what happens live and a summary at the end.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from . import demo_ops, priorities
from .jobs import FINAL, Job
from .operations import Registry
from .queue import JobQueue

NODES = ["n1", "n2", "n3", "n4"]
INSTANCES = [f"web{i}" for i in range(1, 13)]


def _op(name: str, **params: Any) -> dict[str, Any]:
    return {"op": name, "params": params}


def workload() -> list[tuple[str, list[dict[str, Any]], str | int]]:
    """(label, ops, priority) in submission order."""
    jobs: list[tuple[str, list[dict[str, Any]], str | int]] = [
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


URGENT = [
    ("URGENT start web2", [_op("instance.start", instance="web2", node="n2")], "high"),
    ("URGENT health n4", [_op("node.health", node="n4")], "high"),
]


def main() -> None:
    console = Console()
    registry = Registry()
    demo_ops.register(registry)
    with tempfile.TemporaryDirectory(prefix="jobplane-demo-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        console.print(f"[bold]jobplane demo[/]: a simulated cluster on {url}, 2 workers\n")
        labels: dict[int, str] = {}
        with JobQueue.open(
            url, registry=registry, workers=2, lock_timeouts=(0.05, 0.1, 0.3), aging_interval=0
        ) as q:
            for label, ops, prio in workload():
                labels[q.submit(ops, priority=prio)] = label
            console.print(f"submitted {len(labels)} routine jobs (mostly [cyan]low[/])")
            urgent_sent = False
            started = time.monotonic()
            seen_waiting: set[int] = set()
            while True:
                jobs = [q.get(job_id) for job_id in labels]
                if not urgent_sent and time.monotonic() - started > 1.0:
                    for label, ops, prio in URGENT:
                        labels[q.submit(ops, priority=prio)] = label
                    console.print("[bold red]submitted 2 urgent (high) jobs behind the backlog[/]")
                    urgent_sent = True
                    continue
                for job in jobs:
                    if job.status == "waiting" and job.id not in seen_waiting:
                        seen_waiting.add(job.id)
                        reason = q.explain(job.id).reasons[0]
                        console.print(f"[yellow]waits[/] {labels[job.id]}: {reason}")
                if urgent_sent and all(job.status in FINAL for job in jobs):
                    break
                q.wait_for_change(jobs[-1].id, 0, 0.2)
            summary(console, [q.get(job_id) for job_id in labels], labels)


def summary(console: Console, jobs: list[Job], labels: dict[int, str]) -> None:
    ordered = sorted(jobs, key=lambda j: j.ops[0].started_at or float("inf"))
    table = Table(title="jobs in the order they started")
    for column in ("#", "job", "what", "submitted as", "ran at", "escalations", "status"):
        table.add_column(column)
    first = min(j.received_at for j in jobs)
    for rank, job in enumerate(ordered, 1):
        steps = sum(op.escalations for op in job.ops)
        asked = job.ops[0].priority + steps
        table.add_row(
            str(rank),
            str(job.id),
            labels[job.id],
            priorities.name_of(asked),
            priorities.name_of(job.ops[0].priority),
            str(steps) if steps else "",
            str(job.status),
            style="bold red" if labels[job.id].startswith("URGENT") else None,
        )
    console.print(table)
    urgent = [j for j in ordered if labels[j.id].startswith("URGENT")]
    positions = [ordered.index(j) + 1 for j in urgent]
    later = [j for j in jobs if j.id < min(u.id for u in urgent)]
    overtaken = sum(
        1
        for j in later
        if (j.ops[0].started_at or 0) > max(u.ops[0].started_at or 0 for u in urgent)
    )
    escalated = [j for j in jobs if any(op.escalations for op in j.ops)]
    console.print(
        f"urgent jobs started at positions {positions}, overtaking {overtaken} routine jobs "
        f"submitted before them"
    )
    for job in escalated:
        raised = [e.message for e in job.log if "priority raised" in e.message]
        console.print(f"[yellow]escalated[/] {labels[job.id]}: {raised[0]} ... {raised[-1]}")
    statuses: dict[str, int] = {}
    for job in jobs:
        statuses[str(job.status)] = statuses.get(str(job.status), 0) + 1
    console.print(
        f"{len(jobs)} jobs: "
        + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        + f"; finished in {max(j.ended_at or 0 for j in jobs) - first:.1f} s"
    )


if __name__ == "__main__":
    main()
