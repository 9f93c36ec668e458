"""Changing a tracked job's priority: by request, and by aging.

A job holding locks keeps its place in the pool (it runs next, so the jobs
waiting for its locks wait no longer); a new priority applies to its next
lock wait. A job waiting for locks is taken out of its wait and queues again
at its new priority. Aging raises a job queued for an aging interval by one
step per interval; a job whose aging the store refuses keeps its age and is
aged at the next pass.
"""

from __future__ import annotations

import contextlib

from .. import priorities
from ..errors import StoreError
from ..jobs import Job, OpStatus
from ..locking import LockRequest
from ..workerpool import NoSuchTask
from .commit import commit_unlocked, log, note_failure_unlocked
from .lockwait import reset_attempts_unlocked, unpark_unlocked, withdraw
from .state import EngineState, Where


def change_priority(st: EngineState, job_id: int, priority: int) -> tuple[bool, str] | None:
    """Give the job's pending ops ``priority``; returns the answer, None if not tracked.

    Raises:
        StoreError: the store refused the change; nothing changed.
    """
    aj = st.active.get(job_id)
    if aj is None:
        return None
    kick: LockRequest | None = None
    with aj.mutex:
        job = aj.job
        if aj.where is Where.DONE or job.is_final:
            return False, f"job {job_id} has already finished ({job.status})"
        if job.status is OpStatus.CANCELING:
            return False, f"job {job_id} is being canceled"
        pending = [
            i for i, op in enumerate(job.ops) if op.status in (OpStatus.QUEUED, OpStatus.WAITING)
        ]
        if not pending:
            return False, f"job {job_id} has no pending ops (its current op is running)"

        def change(job: Job) -> None:
            for i in pending:
                job.ops[i].priority = priority

        commit_unlocked(st, aj, change)
        reset_attempts_unlocked(aj)
        # A job holding locks stays where it is in the pool (it runs next, so the
        # jobs waiting for its locks wait no longer); the new priority applies to
        # its next lock wait.
        if aj.where is Where.POOL and not aj.held:
            # NoSuchTask: a worker has just taken it; the next turn uses the new priority
            aj.queued_priority = aj.job.priority
            with contextlib.suppress(NoSuchTask):
                st.pool.change_priority(job_id, aj.queued_priority)
        elif aj.where in (Where.LOCKS, Where.STORE):
            kick = unpark_unlocked(st, aj)
    if kick is not None:
        withdraw(st, aj, kick, timed_out=False)
    return True, f"job {job_id} priority changed to {priorities.name_of(priority)}"


def age(st: EngineState, interval: float) -> int:
    """Raise by one step per ``interval`` every job queued that long; returns steps."""
    if interval <= 0:
        return 0
    now = st.clock()
    steps_total = 0
    for aj in list(st.active.values()):
        if aj.where is not Where.POOL or now - aj.aged_at < interval:
            continue
        with aj.mutex:
            if aj.where is not Where.POOL or now - aj.aged_at < interval or aj.held:
                continue
            index = aj.job.current_op()
            if index is None or aj.job.ops[index].status is not OpStatus.QUEUED:
                continue
            steps = int((now - aj.aged_at) // interval)
            old = aj.job.priority
            if old <= priorities.HIGHEST:
                aj.aged_at += steps * interval
                continue

            def raise_priority(job: Job, steps: int = steps) -> None:
                for op in job.ops:
                    if not op.is_final and op.priority > priorities.HIGHEST:
                        op.priority = priorities.escalate(op.priority, steps)
                        op.escalations += 1

            try:
                commit_unlocked(st, aj, raise_priority)
            except StoreError as exc:
                note_failure_unlocked(aj, exc)
                continue
            aj.aged_at += steps * interval
            new = aj.job.priority
            steps_total += old - new
            aj.queued_priority = new
            with contextlib.suppress(NoSuchTask):
                st.pool.change_priority(aj.job.id, new)
        log(st, aj.job.id, index, f"priority raised from {old} to {new} by aging")
    return steps_total
