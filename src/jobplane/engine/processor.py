"""One job step at a time: locks -> run the op -> record the outcome, or step aside.

The processor handles only the jobs this daemon *claimed* from the store
(``engine.claimer``): each is owned with a fencing token, every save of it
carries that token, and the final save gives it back. The store hands out
a job only once its dependencies are final; the first turn then checks
that they ended as the job accepts (``deps``).

Every job is a worker-pool task at its job priority. A turn (:meth:`Processor.turn`)
runs at most one op; afterwards the job defers itself (``DeferTask``) at its
recomputed priority, so higher-priority work overtakes it between ops.

The parts, modules of functions over the shared ``state.EngineState``, each
stating its rules: ``lockwait`` (locks level by level, timeouts,
escalation), ``run`` (start, run, record one op), ``commit`` (compare-and-set,
retry later, drop a lost job), ``deps``, ``cancel``, ``reprioritise``, ``snapshot``.

Locking discipline: each tracked job has one mutex (``Active.mutex``); every
change of its state happens under it and is committed to the store before
it is acted upon. A thread holds at most one job mutex at a time. Lock
grants and timer callbacks take the job mutex on their own threads.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

from ..activity import OpRun
from ..errors import LeaseLost, LockError, StoreError
from ..jobs import CANCELED_BY_REQUEST, Job, OpStatus
from ..locking import DEFAULT_LOCK_TIMEOUTS, LockManager, LockTimeouts
from ..operations import Registry
from ..stores.base import Store
from ..timers import Timers
from ..workerpool import WorkerPool
from . import admission, cancel, commit, deps, lockwait, reprioritise, run, snapshot
from .state import (
    Active,
    Change,
    EngineState,
    Observer,
    Run,
    Where,
    first_queued,
    take_held_unlocked,
)

logger = logging.getLogger(__name__)

__all__ = ["Processor"]


class Processor:
    """Drives tracked jobs through the pool, the lock manager and the store."""

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        pool: WorkerPool,
        locks: LockManager,
        timers: Timers,
        lock_timeouts: LockTimeouts = DEFAULT_LOCK_TIMEOUTS,
        aging_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_finished: Callable[[Job], None] | None = None,
        on_slot_free: Callable[[], None] | None = None,
        lock_owner: Callable[[Job], Hashable] | None = None,
    ) -> None:
        self._st = EngineState(
            store=store,
            registry=registry,
            pool=pool,
            locks=locks,
            timers=timers,
            lock_timeouts=lock_timeouts,
            clock=clock,
            wall=wall,
            on_finished=on_finished,
            on_slot_free=on_slot_free,
        )
        self._st.turn = self.turn
        self._st.on_grant = functools.partial(lockwait.granted, self._st)
        self._st.lock_owner_of = lock_owner
        self.active = self._st.active
        """The tracked jobs by id (read-only outside the engine)."""
        self.parked = self._st.parked
        """The ids of the tracked jobs in lock waits (read-only outside the engine)."""
        self.aging_interval = aging_interval
        self.observers: list[Observer] = self._st.observers
        self.run_observers: list[Callable[[OpRun], None]] = []
        """Told of each op run as it ends (the dashboard's timeline); quick and thread-safe."""

    @property
    def on_finished(self) -> Callable[[Job], None] | None:
        """Called with each job whose final state is committed."""
        return self._st.on_finished

    @on_finished.setter
    def on_finished(self, callback: Callable[[Job], None] | None) -> None:
        self._st.on_finished = callback

    @property
    def on_slot_free(self) -> Callable[[], None] | None:
        """Called when a job leaves its worker slot (finished, parked or dropped)."""
        return self._st.on_slot_free

    @on_slot_free.setter
    def on_slot_free(self, callback: Callable[[], None] | None) -> None:
        self._st.on_slot_free = callback

    @property
    def escalations(self) -> int:
        """Lock-wait escalations so far."""
        return self._st.escalations

    # -- admission ---------------------------------------------------------

    def admit(self, job: Job, *, pending: Change | None = None, what: str = "") -> None:
        """Track a committed, unfinished job and queue its first turn (``admission.admit``)."""
        admission.admit(self._st, job, pending=pending, what=what)

    def admit_many(self, jobs: list[Job]) -> None:
        """Admit claimed jobs with nothing pending, in one pool call (``admission.admit_many``)."""
        admission.admit_many(self._st, jobs)

    def load(self) -> tuple[int, int]:
        """``(taken, parked)``: claimed jobs that hold or wait for a worker; those in lock waits.

        Counted, not scanned: it is asked at the end of every job.
        """
        st = self._st
        parked = len(st.parked)
        return len(st.active) - parked, parked

    def worst_queued(self) -> int | None:
        """The priority of the claimed job that would start last, if one waits for a worker."""
        worst: int | None = None
        for aj in list(self._st.active.values()):
            if aj.where is Where.POOL and not aj.held:
                priority = aj.queued_priority
                if worst is None or priority > worst:
                    worst = priority
        return worst

    def drop_all(self) -> None:
        """The daemon's lease is lost: drop every job it holds (see ``commit.drop_unlocked``).

        Called by the claimer inside its pass, which then claims anew itself.
        """
        for aj in list(self._st.active.values()):
            with aj.mutex:
                if aj.where is not Where.DONE:
                    commit.drop_unlocked(self._st, aj, None)

    def tracked(self, job_id: int) -> Job | None:
        """The committed state of a job this processor handles, or None."""
        aj = self._st.active.get(job_id)
        return aj.job if aj is not None else None

    def tracked_count(self) -> int:
        return len(self._st.active)

    def oldest_queued(self) -> float | None:
        """The ``received_at`` of the oldest job that waits for a worker, or None.

        Jobs are admitted in the order they were received, so the first match
        in admission order is the oldest; the jobs ahead of it are the few
        running or waiting ones, not the whole backlog.
        """
        try:
            return first_queued(self._st.active.values())
        except RuntimeError:  # a job was admitted or finished meanwhile: look at a copy
            return first_queued(list(self._st.active.values()))

    def shutdown(self) -> None:
        """The pool has stopped: requeue nothing more, and record what is still pending.

        An op's outcome the store still refuses is lost: after a restart the op
        counts as interrupted. That is logged, job by job.
        """
        st = self._st
        st.stopped = True
        for aj in list(st.active.values()):
            with aj.mutex:
                if aj.pending is None or aj.where is Where.DONE:
                    continue
                try:
                    commit.commit_unlocked(st, aj, aj.pending)
                except StoreError as exc:
                    logger.error(
                        "job %s: %s could not be recorded before stopping (%s); it is lost",
                        aj.job.id,
                        aj.pending_what,
                        exc,
                        extra={"job_id": aj.job.id},
                    )
                else:
                    aj.pending, aj.pending_what = None, ""

    # -- a turn ------------------------------------------------------------

    def turn(self, job_id: int) -> None:
        """The pool task of a job: record what is pending, or prepare, run and record an op."""
        st = self._st
        aj = st.active.get(job_id)
        if aj is None:
            return
        try:
            if aj.pending is not None:
                run.record(st, aj)
                return
            ready = self._prepare(aj)
            if ready is not None:
                run.run_op(st, aj, ready, self.run_observers)
                run.record(st, aj)
            elif aj.where is Where.LOCKS:
                st.slot_freed()  # parked in a lock wait: it holds no worker now
        except LeaseLost as exc:
            with aj.mutex:
                if aj.where is not Where.DONE:
                    commit.drop_unlocked(st, aj, exc)
            st.slot_freed()
        except StoreError as exc:
            commit.retry_later(st, aj, exc)

    def _prepare(self, aj: Active) -> Run | None:
        """End the job if it must end before its op; else take the op's locks and start it."""
        st = self._st
        with aj.mutex:
            if aj.where is Where.DONE or aj.job.is_final:
                return None
            aj.where = Where.TURN
            index = aj.job.current_op()
            assert index is not None
            op = aj.job.ops[index]
            if op.status is OpStatus.CANCELING:
                run.end_unlocked(st, aj, index, OpStatus.CANCELED, CANCELED_BY_REQUEST)
                ended = True
            elif aj.job.depends and index == 0 and op.started_at is None:
                ended = deps.check_dependencies_unlocked(st, aj, index)
            else:
                ended = False
            if not ended:
                try:
                    return self._acquire_unlocked(aj, index)
                except LockError as exc:  # the lock manager refused the op's locks
                    logger.error("job %s op %s: %s", aj.job.id, index, exc)
                    run.end_unlocked(st, aj, index, OpStatus.ERROR, commit.error_result(exc))
            release = take_held_unlocked(aj)
        st.release(aj, release)
        st.finish(aj)
        return None

    def _acquire_unlocked(self, aj: Active, index: int) -> Run | None:
        st = self._st
        op = aj.job.ops[index]
        if aj.needs is None or aj.needs[0] != index:
            opdef = st.registry.get(op.op)
            params = opdef.params_model.model_validate(op.params)
            aj.needs = (index, opdef, params, st.registry.lock_needs(opdef, params))
        _, opdef, params, needs = aj.needs
        if not lockwait.take_locks_unlocked(st, aj, index, needs):
            return None
        ready = run.start_unlocked(st, aj, index, opdef, params)
        lockwait.wait_over_unlocked(aj)
        return ready

    # -- cancel, change priority, aging ---------------------------------------

    def cancel(self, job_id: int) -> tuple[bool, str] | None:
        """Cancel a job (see ``engine.cancel``); None if this processor does not hold it."""
        return cancel.cancel(self._st, job_id)

    def change_priority(self, job_id: int, priority: int) -> tuple[bool, str] | None:
        """Re-prioritise a job (see ``engine.reprioritise``); None if not held here."""
        return reprioritise.change_priority(self._st, job_id, priority)

    def age(self) -> int:
        """Raise by one step per aging interval every job queued that long; returns steps."""
        return reprioritise.age(self._st, self.aging_interval)

    # -- explain ----------------------------------------------------------------

    def snapshot(self, job_id: int) -> dict[str, Any] | None:
        """What the processor knows of a tracked job, for ``explain`` (see ``engine.snapshot``)."""
        return snapshot.snapshot(self._st, job_id)

    def holder_op(self, owner: object) -> str | None:
        """The current op of the tracked job owning a lock, as ``op N (name)``, or None."""
        return snapshot.holder_op(self._st, owner)
