"""``explain``: why a job is not running, in plain words.

Two steps, so that the words depend on nothing but data: :meth:`JobSnapshot.gather`
reads what the engine knows of one job at one moment (the processor's view, the
worker pool's load, the locks it waits in and what their holders run), and
:func:`explain` turns that snapshot into an :class:`Explanation`. The queue
calls both; this module imports nothing of the queue.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import priorities
from .errors import JobNotFound
from .jobs import FINAL, Job, OpStatus

if TYPE_CHECKING:
    from .engine.processor import Processor
    from .lock_service import LockService
    from .locking import LockInfo, LockStatistics
    from .stores import Store
    from .workerpool import WorkerPool


@dataclass(slots=True)
class Explanation:
    """Why a job is where it is, in words (``reasons``) and in fields."""

    job: int
    status: str
    priority: int
    reasons: list[str] = field(default_factory=list)
    ahead: dict[str, int] | None = None
    waiting_for_locks: list[dict[str, Any]] = field(default_factory=list)
    waiting_for_job: int | None = None
    escalations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "status": self.status,
            "priority": self.priority,
            "reasons": list(self.reasons),
            "ahead": self.ahead,
            "waiting_for_locks": self.waiting_for_locks,
            "waiting_for_job": self.waiting_for_job,
            "escalations": self.escalations,
        }


@dataclass(frozen=True, slots=True)
class LockWaitSnapshot:
    """The lock request a job is parked in, and the locks of its level, at one moment."""

    level: str
    names: tuple[str, ...] | None
    """None for every lock of the level (ALL)."""
    shared: bool
    waiting_on: LockStatistics | None
    """The lock the request is queued in right now, if any (maybe the level's names lock)."""
    locks: tuple[LockInfo, ...]
    """The level's locks, with holders and waiters in grant order (owners are job ids)."""
    holder_ops: Mapping[Hashable, str | None]
    """For each holder of those locks, the op it runs (``op 1 (name)``), if known."""


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """What this daemon knows of one job at one moment: all that :func:`explain` reads."""

    job: Job
    where: str | None
    """Where the processor has the job (``pool``, ``deps``, ``locks``, ``store``, ...);
    None when this daemon does not handle it."""
    ahead_higher: int = 0
    """Jobs of higher priority queued for a worker ahead of it (``where == "pool"``)."""
    ahead_same: int = 0
    """Earlier jobs of the same priority queued ahead of it (``where == "pool"``)."""
    workers: int = 0
    running: int = 0
    """The worker pool's size and how many workers are busy (``where == "pool"``)."""
    dep_statuses: Mapping[int, OpStatus] = field(default_factory=dict)
    """The status of each job it depends on (``where is None``: no daemon runs it here)."""
    lock_wait: LockWaitSnapshot | None = None
    store_error: str | None = None
    pending: str | None = None
    """What the store refused to record, and why (``where == "store"``)."""

    @classmethod
    def gather(
        cls,
        job_id: int,
        *,
        processor: Processor,
        store: Store,
        pool: WorkerPool,
        locks: LockService,
    ) -> JobSnapshot:
        """Read the job's state from the processor, or from the store if it is not tracked."""
        seen = processor.snapshot(job_id)
        if seen is None:
            job = store.load(job_id)
            deps: dict[int, OpStatus] = {}
            for dep in job.depends:
                try:
                    deps[dep.job_id] = store.load(dep.job_id).status
                except JobNotFound:  # deleted since: it is not waited for any more
                    continue
            return cls(job=job, where=None, dep_statuses=deps)
        where = seen["where"]
        workers = running = 0
        if where == "pool":
            stats = pool.statistics()
            workers, running = stats.workers, stats.running
        lock_wait = None
        request = seen.get("lock_request")
        if where == "locks" and request is not None:
            waiting_on = request.waiting_on()
            infos = tuple(info for info in locks.info() if info.level == request.level)
            owners = [owner for info in infos for owner in info.owners]
            if waiting_on is not None:
                owners.extend(waiting_on.owners)
            lock_wait = LockWaitSnapshot(
                level=request.level,
                names=request.names,
                shared=request.shared,
                waiting_on=waiting_on,
                locks=infos,
                holder_ops={owner: processor.holder_op(owner) for owner in owners},
            )
        return cls(
            job=seen["job"],
            where=where,
            ahead_higher=seen.get("ahead_higher", 0),
            ahead_same=seen.get("ahead_same", 0),
            workers=workers,
            running=running,
            lock_wait=lock_wait,
            store_error=seen.get("store_error"),
            pending=seen.get("pending"),
        )


def _when(ts: float | None) -> str:
    if ts is None:
        return "an unknown time"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def explain(snapshot: JobSnapshot) -> Explanation:
    """Why the job is not running (or what it is doing), in plain words."""
    job = snapshot.job
    out = Explanation(job=job.id, status=str(job.status), priority=job.priority)
    out.escalations = sum(op.escalations for op in job.ops)
    index = job.current_op()
    if job.is_final or index is None:
        out.reasons.append(f"job {job.id} has finished: {job.status}")
        return out
    op = job.ops[index]
    label = f"op {index} ({op.op})"
    where = snapshot.where
    if where == "store":
        out.reasons.append(
            f"job {job.id}: the store refused to record {snapshot.pending or 'its next step'} "
            f"({snapshot.store_error}); the daemon keeps the job and tries again until the "
            "store takes it"
        )
    elif op.status is OpStatus.RUNNING:
        out.reasons.append(f"job {job.id} is running {label} since {_when(op.started_at)}")
    elif op.status is OpStatus.CANCELING:
        out.reasons.append(f"job {job.id} is being canceled")
    elif where is None:
        _unclaimed(job, snapshot.dep_statuses, out)
    elif where == "pool":
        higher, same = snapshot.ahead_higher, snapshot.ahead_same
        out.ahead = {"higher_priority": higher, "same_priority": same}
        busy = (
            f"all {snapshot.workers} workers are busy"
            if snapshot.running >= snapshot.workers
            else f"{snapshot.running} of {snapshot.workers} workers are busy"
        )
        out.reasons.append(
            f"job {job.id} is queued at priority {priorities.name_of(job.priority)}: "
            f"{higher} job(s) of higher priority and {same} earlier job(s) of the same "
            f"priority are ahead of it; {busy}"
        )
    elif where == "locks":
        out.waiting_for_locks = _lock_waits(job.id, snapshot.lock_wait)
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


def _unclaimed(job: Job, dep_statuses: Mapping[int, OpStatus], out: Explanation) -> None:
    """A job no daemon holds: it waits for a dependency, or in the store's schedule."""
    for dep in job.depends:
        status = dep_statuses.get(dep.job_id)
        if status is not None and status not in FINAL:
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


def _lock_waits(job_id: int, wait: LockWaitSnapshot | None) -> list[dict[str, Any]]:
    if wait is None:
        return []
    names = wait.names
    names_lock = wait.waiting_on
    if names_lock is not None and names_lock.name == f"{wait.level}:ALL":
        # it waits to make names that do not exist yet, while someone holds ALL there
        place = next(
            (i for i, (_, _, owner) in enumerate(names_lock.pending) if owner == job_id), 0
        )
        return [
            {
                "level": wait.level,
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
                    {"job": owner, "op": wait.holder_ops.get(owner)} for owner in names_lock.owners
                ],
            }
        ]
    waits = []
    for info in wait.locks:
        if info.level != wait.level or (names is not None and info.name not in names):
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
                "shared": wait.shared,
                "mode": info.mode,
                "since": info.since,
                "waiters_ahead": [
                    {"job": owner, "priority": prio, "shared": shared}
                    for prio, shared, owner in info.pending[:position]
                ],
                "holders": [
                    {"job": owner, "op": wait.holder_ops.get(owner)} for owner in info.owners
                ],
            }
        )
    return waits
