"""``JobQueue.explain``: why a job is not running, in plain words."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import priorities
from .jobs import FINAL, Job, OpStatus

if TYPE_CHECKING:
    from .queue import Explanation, JobQueue


def _when(ts: float | None) -> str:
    if ts is None:
        return "an unknown time"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def explain(queue: JobQueue, job_id: int) -> Explanation:
    from .queue import Explanation

    snapshot = queue.processor.snapshot(job_id)
    job = snapshot["job"] if snapshot else queue.store.load(job_id)
    out = Explanation(job=job.id, status=str(job.status), priority=job.priority)
    out.escalations = sum(op.escalations for op in job.ops)
    index = job.current_op()
    if job.is_final or index is None:
        out.reasons.append(f"job {job.id} has finished: {job.status}")
        return out
    op = job.ops[index]
    label = f"op {index} ({op.op})"
    where = snapshot["where"] if snapshot else None
    if where == "store":
        assert snapshot is not None
        out.reasons.append(
            f"job {job.id}: the store refused to record {snapshot['pending'] or 'its next step'} "
            f"({snapshot['store_error']}); the daemon keeps the job and tries again until the "
            "store takes it"
        )
    elif op.status is OpStatus.RUNNING:
        out.reasons.append(f"job {job.id} is running {label} since {_when(op.started_at)}")
    elif op.status is OpStatus.CANCELING:
        out.reasons.append(f"job {job.id} is being canceled")
    elif snapshot is None:
        _unclaimed(queue, job, out)
    elif where == "pool":
        higher, same = snapshot["ahead_higher"], snapshot["ahead_same"]
        out.ahead = {"higher_priority": higher, "same_priority": same}
        stats = queue.pool.statistics()
        busy = (
            f"all {stats.workers} workers are busy"
            if stats.running >= stats.workers
            else f"{stats.running} of {stats.workers} workers are busy"
        )
        out.reasons.append(
            f"job {job.id} is queued at priority {priorities.name_of(job.priority)}: "
            f"{higher} job(s) of higher priority and {same} earlier job(s) of the same "
            f"priority are ahead of it; {busy}"
        )
    elif where == "locks":
        out.waiting_for_locks = _lock_waits(queue, job.id, snapshot)
        for wait in out.waiting_for_locks:
            holders = (
                ", ".join(
                    f"job {h['job']}" + (f" ({h['op']})" if h.get("op") else "")
                    for h in wait["holders"]
                )
                or "nobody (it is next in line)"
            )
            ahead = wait["waiters_ahead"]
            first = (
                f", first job {ahead[0]['job']} ({'shared' if ahead[0]['shared'] else 'exclusive'}"
                f", priority {ahead[0]['priority']})"
                if ahead
                else ""
            )
            held = f"held {wait['mode']} by {holders} since {_when(wait['since'])}"
            if wait["mode"] is None:
                held = "free, about to be handed over"
            what = f"lock {wait['level']}:{wait['name']}"
            if "making" in wait:
                what = (
                    f"the names of level {wait['level']} to make lock(s) "
                    f"{', '.join(wait['making'])} (ALL is held there)"
                )
            out.reasons.append(
                f"job {job.id} waits for {what} "
                f"({'shared' if wait['shared'] else 'exclusive'}): {held}; "
                f"{len(ahead)} waiter(s) ahead of it{first}"
            )
    else:
        out.reasons.append(f"job {job.id} is between two steps ({job.status})")
    if out.escalations:
        steps = out.escalations
        out.reasons.append(
            f"its priority was raised {steps} step(s) by escalation or aging "
            f"(now {priorities.name_of(job.priority)})"
        )
    return out


def _unclaimed(queue: JobQueue, job: Job, out: Explanation) -> None:
    """A job no daemon holds: it waits for a dependency, or in the store's schedule."""
    for dep in job.depends:
        status = queue.store.load(dep.job_id).status
        if status not in FINAL:
            out.waiting_for_job = dep.job_id
            accepted = ", ".join(str(s) for s in dep.statuses)
            out.reasons.append(
                f"job {job.id} waits for job {dep.job_id} to finish (it goes on if that job "
                f"ends in: {accepted or 'any final status'})"
            )
            return
    owner = "" if job.owner is None else f"daemon {job.owner} holds it; "
    out.reasons.append(
        f"job {job.id} is {job.status} at priority {priorities.name_of(job.priority)}: "
        f"{owner}it waits in the store's schedule until a daemon with a free worker claims it"
    )


def _lock_waits(queue: JobQueue, job_id: int, snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    request = snapshot.get("lock_request")
    if request is None:
        return []
    names = request.names
    names_lock = request.waiting_on()
    if names_lock is not None and names_lock.name == f"{request.level}:ALL":
        # it waits to make names that do not exist yet, while someone holds ALL there
        place = next(
            (i for i, (_, _, owner) in enumerate(names_lock.pending) if owner == job_id), 0
        )
        return [
            {
                "level": request.level,
                "name": "ALL",
                "making": list(names or ()),
                "shared": False,
                "mode": names_lock.mode,
                "since": names_lock.since,
                "waiters_ahead": [
                    {"job": owner, "priority": prio, "shared": shared}
                    for prio, shared, owner in names_lock.pending[:place]
                ],
                "holders": [
                    {"job": owner, "op": queue.processor.holder_op(owner)}
                    for owner in names_lock.owners
                ],
            }
        ]
    waits = []
    for info in queue.locks.info():
        if info.level != request.level or (names is not None and info.name not in names):
            continue
        position = next(
            (i for i, (_, _, owner) in enumerate(info.pending) if owner == job_id), None
        )
        if position is None:
            continue
        waits.append(
            {
                "level": info.level,
                "name": info.name,
                "shared": request.shared,
                "mode": info.mode,
                "since": info.since,
                "waiters_ahead": [
                    {"job": owner, "priority": prio, "shared": shared}
                    for prio, shared, owner in info.pending[:position]
                ],
                "holders": [
                    {"job": owner, "op": queue.processor.holder_op(owner)} for owner in info.owners
                ],
            }
        )
    return waits
