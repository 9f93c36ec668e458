"""Admission: a claimed job becomes tracked, with its first turn queued in the pool.

Every job this daemon claims passes here once (``engine.intake`` hands it
over): it gets an ``Active``, its working state, in ``EngineState.active``,
and a pool task at its job priority. :func:`admit_many` does a claim's
jobs in one pool call. A job the pool refuses (it is shut down) is not
tracked: it stays the daemon's in the store, and is reclaimed under the
crash rules once the daemon's lease ends.
"""

from __future__ import annotations

from ..jobs import Job
from .state import Active, Change, EngineState


def admit(st: EngineState, job: Job, *, pending: Change | None = None, what: str = "") -> None:
    """Track a committed, unfinished job and queue its first turn.

    ``pending``: a change decided for the job that the store refused (a
    recovery); the first turn commits it, retrying until the store takes it.
    """
    admit_many(st, [job], pending=pending, what=what)


def admit_many(
    st: EngineState, jobs: list[Job], *, pending: Change | None = None, what: str = ""
) -> None:
    """:func:`admit` each job (committed, unfinished), in one pool call."""
    now, seq, parked, active = st.clock(), st.seq, st.parked, st.active
    lock_owner_of = st.lock_owner_of
    tasks = []
    for job in jobs:
        priority = job.priority
        aj = Active(job, now, next(seq), parked, priority)
        if lock_owner_of is not None:
            aj.lock_owner = lock_owner_of(job)
        aj.pending, aj.pending_what = pending, what
        active[job.id] = aj
        tasks.append((job.id, priority))
    try:
        st.pool.add_tasks(st.turn, tasks)
    except RuntimeError:  # the pool is shut down
        for job in jobs:
            active.pop(job.id, None)
