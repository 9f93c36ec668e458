"""Lock waits: asking for an op's locks level by level, parking, timeouts and escalation.

Lock waits use no worker and no thread: a turn asks the lock manager for the
op's locks level by level (:func:`take_locks_unlocked`; ``LockManager.request``
also makes names that do not exist yet, waiting for them in the same priority
order); a request that cannot be granted at once stays queued *inside the
lock* (priority-ordered with every other waiter) and the turn ends. When the
lock manager grants it (:func:`granted`), the job goes back into the pool at
``HIGHEST`` (it holds resources, so it should run next) and keeps that place
until it has run, whatever its priority becomes meanwhile.

Each wait is bounded by an attempt timeout from the daemon's
``locking.LockTimeouts`` curve; when it expires (:func:`lock_timeout`) the
job withdraws, releases what it took and goes back to the pool at its own
priority. When the last attempt of a sequence expires, the op's priority
moves one step toward ``HIGHEST`` at once (persisted) and the job is queued
at its new priority; a new sequence starts. At ``HIGHEST`` the wait has no
timeout. Escalating is committed at once; if the store refuses it, it stays
due and the job's next turn commits it before asking for locks again.

Lock grants and timer callbacks take the job mutex themselves, on their own
threads, so withdrawing or releasing locks under a job mutex is safe.
"""

from __future__ import annotations

from collections.abc import Hashable

from .. import priorities
from ..errors import StoreError
from ..jobs import Job, OpStatus
from ..locking import ALL, LockRequest
from ..operations import LockNeed
from .commit import commit_unlocked, log, note_failure_unlocked, set_status
from .state import (
    Active,
    EngineState,
    Where,
    move_unlocked,
    priority_unlocked,
    take_held_unlocked,
)


def take_locks_unlocked(st: EngineState, aj: Active, index: int, needs: list[LockNeed]) -> bool:
    """Ask for op ``index``'s locks from the first level not held yet; True if all are held.

    A level that cannot be granted at once parks the job in it (``Where.LOCKS``).

    Raises:
        StoreError: a write (escalation, marking the op waiting) was refused.
    """
    if aj.escalate_due:
        escalate_unlocked(st, aj, index)
    while len(aj.held) < len(needs):
        need = needs[len(aj.held)]
        request = _request(st, need, aj.job.ops[index].priority, aj.lock_owner)
        if request.granted:
            aj.held.append(need.level)
            continue
        _park_unlocked(st, aj, index, request)
        return False
    if aj.wait_started is not None:
        waited = st.clock() - aj.wait_started
        aj.wait_started = None
        for observer in st.observers:
            observer.lock_waited(waited)
    return True


def wait_over_unlocked(aj: Active) -> None:
    """The op has its locks and starts: the next wait begins a new sequence of attempts."""
    aj.attempts = None
    aj.pending_timeout = None
    aj.attempt_deadline = None


def _park_unlocked(st: EngineState, aj: Active, index: int, request: LockRequest) -> None:
    if aj.job.ops[index].status is not OpStatus.WAITING:
        try:
            commit_unlocked(st, aj, lambda job: set_status(job, index, OpStatus.WAITING))
        except StoreError:
            # Not parked after all: the turn is tried again later. What the
            # request took meanwhile is kept, like the levels taken before.
            if not request.cancel():
                aj.held.append(request.level)
            raise
    aj.request = request
    move_unlocked(aj, Where.LOCKS)
    now = st.clock()
    if aj.wait_started is None:
        aj.wait_started = now
    if aj.attempt_deadline is None:
        if aj.attempts is None:
            _new_sequence_unlocked(st, aj, index)
        if aj.pending_timeout is not None:
            aj.attempt_deadline = now + aj.pending_timeout
    if aj.attempt_deadline is not None:
        job_id = aj.job.id
        aj.timer = st.timers.call_at(aj.attempt_deadline, lambda: lock_timeout(st, job_id, request))


def _new_sequence_unlocked(st: EngineState, aj: Active, index: int) -> None:
    if aj.job.ops[index].priority <= priorities.HIGHEST:
        aj.attempts = iter(())
        aj.pending_timeout = None
        return
    aj.attempts = st.lock_timeouts.attempts()
    aj.pending_timeout = next(aj.attempts, None)


def _next_attempt_unlocked(st: EngineState, aj: Active) -> None:
    """An attempt timed out: take the next timeout, or escalate when the sequence is over."""
    aj.attempt_deadline = None
    index = aj.job.current_op()
    if aj.attempts is None or index is None:
        return
    aj.pending_timeout = next(aj.attempts, None)
    if aj.pending_timeout is not None:
        return
    op = aj.job.ops[index]
    if op.priority <= priorities.HIGHEST or op.status not in (
        OpStatus.QUEUED,
        OpStatus.WAITING,
    ):
        _new_sequence_unlocked(st, aj, index)
        return
    aj.escalate_due = True
    try:
        escalate_unlocked(st, aj, index)
    except StoreError as exc:
        note_failure_unlocked(aj, exc)


def escalate_unlocked(st: EngineState, aj: Active, index: int) -> None:
    """Move the op's priority one step toward HIGHEST (committed) and start a new sequence."""
    old = aj.job.ops[index].priority
    new = old - 1
    waited = st.clock() - (aj.wait_started or st.clock())

    def escalate(job: Job) -> None:
        job.ops[index].priority = new
        job.ops[index].escalations += 1

    commit_unlocked(st, aj, escalate)
    aj.escalate_due = False
    st.escalations += 1
    for observer in st.observers:
        observer.escalated()
    log(
        st,
        aj.job.id,
        index,
        f"priority raised from {old} to {new} after waiting {waited:.1f} s for locks",
    )
    _new_sequence_unlocked(st, aj, index)


def reset_attempts_unlocked(aj: Active) -> None:
    """The job's priority was changed: its next wait starts a fresh sequence, nothing due."""
    aj.attempts = None
    aj.pending_timeout = None
    aj.escalate_due = False


def _request(st: EngineState, need: LockNeed, priority: int, owner: Hashable) -> LockRequest:
    """Ask for one level's locks, making named locks on demand.

    Names are made by the request itself (``create=True``): it waits for
    the level's names like any waiter, never blocking this worker (the
    queue's maintenance prunes idle locks, so new names are common).
    """
    made_on_demand = need.names is not None and need.level != st.registry.big_lock_level
    return st.locks.request(
        need.level,
        need.names if need.names is not None else ALL,
        shared=need.shared,
        priority=priority,
        owner=owner,
        on_grant=st.on_grant,
        create=made_on_demand,
    )


# -- lock callbacks (from other threads) ---------------------------------------


def granted(st: EngineState, request: LockRequest) -> None:
    """The lock manager granted a parked request: queue the job's turn at HIGHEST."""
    owner = request.owner
    if isinstance(owner, tuple):  # (daemon id, job id): a lock manager shared by daemons
        owner = owner[1]
    aj = st.active.get(owner) if isinstance(owner, int) else None
    if aj is None:
        return
    with aj.mutex:
        if aj.request is not request:
            return  # a timeout, cancel or re-prioritisation took the job out first
        aj.request = None
        if aj.timer is not None:
            aj.timer.cancel()
            aj.timer = None
        if request.error is None:
            aj.held.append(request.level)
            st.requeue_unlocked(aj, priorities.HIGHEST)
        else:  # a lock was deleted under it: ask again (the attempt's deadline stands)
            st.requeue_unlocked(aj, priority_unlocked(aj))


def lock_timeout(st: EngineState, job_id: int, request: LockRequest) -> None:
    """An attempt's timer fired: withdraw the job from its wait."""
    aj = st.active.get(job_id)
    if aj is None:
        return
    with aj.mutex:
        if aj.request is not request:
            return
        aj.request = None
        aj.timer = None
        move_unlocked(aj, Where.MOVING)
    withdraw(st, aj, request, timed_out=True)


def withdraw(st: EngineState, aj: Active, request: LockRequest, *, timed_out: bool) -> None:
    """Take a job out of its lock wait (the caller set ``Where.MOVING``) and requeue it.

    If the wait timed out, the next attempt is set up, escalating the job
    when that was the last of its sequence; then the job is queued at its
    (new) priority, or at HIGHEST if the lock was granted meanwhile.
    """
    withdrawn = request.cancel()
    with aj.mutex:
        if withdrawn:
            release = take_held_unlocked(aj)
        else:
            aj.held.append(request.level)
            release = []
    st.release(aj, release)
    with aj.mutex:
        if withdrawn and timed_out:
            _next_attempt_unlocked(st, aj)
        st.requeue_unlocked(aj, priority_unlocked(aj))


def unpark_unlocked(st: EngineState, aj: Active) -> LockRequest | None:
    """Take the job out of a wait so that its next turn comes at once.

    Returns a lock request to withdraw (with :func:`withdraw`, mutex released).
    """
    if aj.where is Where.STORE:  # the store has just taken a write: try again now
        if aj.timer is not None:
            aj.timer.cancel()
            aj.timer = None
        st.requeue_unlocked(aj, priority_unlocked(aj))
        return None
    if aj.where is Where.LOCKS and aj.request is not None:
        request, aj.request = aj.request, None
        if aj.timer is not None:
            aj.timer.cancel()
            aj.timer = None
        move_unlocked(aj, Where.MOVING)
        return request
    return None
