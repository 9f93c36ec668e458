"""One job step at a time: locks -> run the op -> record the outcome, or step aside.

The processor handles only the jobs this daemon *claimed* from the store
(``engine.claimer``): each is owned with a fencing token, every save of it
carries that token, and the final save gives it back. The store hands out
a job only once its dependencies are final; the first turn then checks
that they ended as the job accepts. A write that the store refuses with
``LeaseLost`` means the job is not this daemon's any more: it is dropped at
once (cancel event set, lock request withdrawn, locks released), and
nothing more is written about it.

Every job is a worker-pool task at its job priority. A turn runs at most
one op; afterwards the job defers itself (``DeferTask``) at its recomputed
priority, so higher-priority work overtakes it between ops.

Lock waits use no worker and no thread: the turn asks the lock manager for
the op's locks level by level (``LockManager.request``, which also makes
names that do not exist yet, waiting for them in the same priority order);
a request that cannot be granted at once stays queued *inside the lock*
(priority-ordered with every other waiter) and the turn ends. When the lock
manager grants it, the job goes back into the pool at ``HIGHEST`` (it holds
resources, so it should run next) and keeps that place until it has run,
whatever its priority becomes meanwhile. Each wait is bounded by an attempt
timeout from ``lock_attempt_timeouts``; when it expires the job withdraws,
releases what it took and goes back to the pool at its own priority. When
the last attempt of a sequence expires, the op's priority moves one step
toward ``HIGHEST`` at once (persisted) and the job is queued at its new
priority; a new sequence starts. At ``HIGHEST`` the wait has no timeout.

Store failures: the store is the truth, so every change is committed before
it is acted upon, and a write the store refuses is never given up. The job
stays tracked (``Where.STORE``) with what it decided kept in memory (an
op's outcome: ``Active.pending``), keeps the locks it holds, and its turn
is tried again after a backoff (``RETRY_FIRST_S`` doubling up to
``RETRY_MAX_S``, on the timers) until the store takes the write; the
failure is logged once per job and episode, and the recovery once. Nothing
runs twice: an op whose start was not recorded does not run, and an op's
outcome is recorded before its locks are released, its dependants are woken
or its next op starts. A ``StoreConflict`` is not a failure to wait out: the
working copy is stale, so the job is reloaded and the change applied again.
Writes a user asks for (cancel, change priority) that the store refuses
raise ``StoreError`` to the user with nothing changed.

Locking discipline: each tracked job has one mutex (``Active.mutex``);
every change of its state happens under it and is committed to the store
before it is acted upon. A thread holds at most one job mutex at a time.
Lock grants and timer callbacks take the job mutex themselves, on their own
threads, so withdrawing or releasing locks under a job mutex is safe.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import pydantic

from . import priorities
from .activity import OpRun
from .errors import JobNotFound, LeaseLost, LockError, StoreConflict, StoreError
from .jobs import (
    CANCELED_BY_REQUEST,
    FINAL,
    PRECEDING_FAILED,
    Job,
    OpStatus,
    end_op,
    json_error,
    mark_cooperative,
    start_op,
)
from .locking import ALL, LockManager, LockRequest, lock_attempt_timeouts
from .operations import LockNeed, OpCanceled, OpContext, OpDef, Registry
from .stores.base import Store
from .timers import TimerHandle, Timers
from .workerpool import DeferTask, NoSuchTask, WorkerPool

logger = logging.getLogger(__name__)

__all__ = ["CRASHED", "PRECEDING_FAILED", "LockTimeouts", "Observer", "Processor"]

CRASHED = "daemon stopped while the operation was running"
RETRY_FIRST_S = 0.05
"""The wait before trying again a write the store refused; it doubles each time ..."""
RETRY_MAX_S = 5.0
"""... up to this."""


@dataclass(frozen=True, slots=True)
class LockTimeouts:
    """The lock-attempt timeout curve: first attempt, longest attempt, total per step."""

    min_s: float = 1.0
    max_s: float = 5.0
    step_total_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.max_s <= self.step_total_s:
            raise ValueError(
                "lock timeouts need 0 < min <= max <= step total, "
                f"got {self.min_s}, {self.max_s}, {self.step_total_s}"
            )


DEFAULT_LOCK_TIMEOUTS = LockTimeouts()


class Observer(Protocol):
    """Told of what the processor does; the HTTP layer's metrics implement this.

    Called on worker threads: implementations must be quick and thread-safe.
    """

    def op_finished(self, op: str, status: OpStatus, seconds: float) -> None: ...

    def lock_waited(self, seconds: float) -> None: ...

    def escalated(self) -> None: ...


class Where(Enum):
    """Where a tracked job is right now."""

    POOL = "pool"  # a pool task waits for a worker
    TURN = "turn"  # a worker is handling it
    LOCKS = "locks"  # parked in a lock request
    MOVING = "moving"  # being taken out of a lock wait by a timeout, cancel or re-prioritisation
    STORE = "store"  # the store refused a write: its turn is tried again after a backoff
    DONE = "done"


Change = Callable[[Job], None]
"""A change of a job, applied to a copy that is then committed."""


class Active:
    """The working state of a job this processor handles; guarded by ``mutex``."""

    __slots__ = (
        "aged_at",
        "attempt_deadline",
        "attempts",
        "cancel_event",
        "ctx",
        "escalate_due",
        "failures",
        "held",
        "job",
        "lock_owner",
        "mutex",
        "needs",
        "pending",
        "pending_timeout",
        "pending_what",
        "request",
        "seq",
        "store_error",
        "timer",
        "unconfirmed",
        "wait_started",
        "where",
    )

    def __init__(self, job: Job, now: float, seq: int) -> None:
        self.job = job
        """The job as committed: never a state the store has not taken."""
        self.lock_owner: Hashable = job.id
        """Who holds and waits for its locks: the job id, or (daemon id, job id) if shared."""
        self.mutex = threading.Lock()
        self.where = Where.POOL
        self.seq = seq
        self.aged_at = now
        self.held: list[str] = []
        self.needs: tuple[int, OpDef, pydantic.BaseModel, list[LockNeed]] | None = None
        self.request: LockRequest | None = None
        self.timer: TimerHandle | None = None
        self.attempts: Iterator[float] | None = None
        self.pending_timeout: float | None = None
        self.attempt_deadline: float | None = None
        self.escalate_due = False
        self.wait_started: float | None = None
        self.cancel_event = threading.Event()
        self.ctx: OpContext | None = None
        self.pending: Change | None = None
        """A decided change (an op's outcome, a recovery) the store has not taken yet."""
        self.pending_what = ""
        self.unconfirmed: Change | None = None
        """The last change saved without waiting: a conflict may mean it was lost."""
        self.failures = 0
        """Writes of this job the store refused in a row (0: all is well)."""
        self.store_error = ""


@dataclass(frozen=True, slots=True)
class _Run:
    index: int
    opdef: OpDef
    params: pydantic.BaseModel


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
        self._store = store
        self._registry = registry
        self._pool = pool
        self._locks = locks
        self._timers = timers
        self._lock_timeouts = lock_timeouts
        self.aging_interval = aging_interval
        self._clock = clock
        self._wall = wall
        self._on_finished = on_finished
        self._on_slot_free = on_slot_free
        self._lock_owner = lock_owner
        self._active: dict[int, Active] = {}
        self._writing = threading.local()
        self._seq = itertools.count()
        self._stopped = False
        self.escalations = 0
        self.observers: list[Observer] = []
        self.run_observers: list[Callable[[OpRun], None]] = []
        """Told of each op run as it ends (the dashboard's timeline); quick and thread-safe."""

    # -- admission ---------------------------------------------------------

    def admit(self, job: Job, *, pending: Change | None = None, what: str = "") -> None:
        """Track a committed, unfinished job and queue its first turn.

        ``pending``: a change decided for the job that the store refused (a
        recovery); the first turn commits it, retrying until the store takes it.
        """
        aj = Active(job, self._clock(), next(self._seq))
        if self._lock_owner is not None:
            aj.lock_owner = self._lock_owner(job)
        aj.pending, aj.pending_what = pending, what
        self._active[job.id] = aj
        try:
            self._pool.add_task(self.turn, job.id, priority=job.priority, task_id=job.id)
        except RuntimeError:  # the pool is shut down: the job stays queued in the store
            self._active.pop(job.id, None)

    def load(self) -> tuple[int, int]:
        """``(taken, parked)``: claimed jobs that hold or wait for a worker; those in lock waits."""
        taken = parked = 0
        for aj in list(self._active.values()):
            if aj.where is Where.LOCKS:
                parked += 1
            elif aj.where is not Where.DONE:
                taken += 1
        return taken, parked

    def worst_queued(self) -> int | None:
        """The priority of the claimed job that would start last, if one waits for a worker."""
        worst: int | None = None
        for aj in list(self._active.values()):
            if aj.where is Where.POOL and not aj.held:
                priority = aj.job.priority
                if worst is None or priority > worst:
                    worst = priority
        return worst

    def drop_all(self) -> None:
        """The daemon's lease is lost: drop every job it holds (see :meth:`_drop_unlocked`).

        Called by the claimer inside its pass, which then claims anew itself.
        """
        for aj in list(self._active.values()):
            with aj.mutex:
                if aj.where is not Where.DONE:
                    self._drop_unlocked(aj, None)

    def _drop_unlocked(self, aj: Active, exc: BaseException | None) -> None:
        """Forget a job this daemon no longer owns, writing nothing more about it.

        Its running op's cancel event is set, its lock request withdrawn and
        its locks released; its pool task, if queued, never runs.
        """
        if exc is not None:
            logger.error(
                "job %s: no longer owned by this daemon (%s); dropping it",
                aj.job.id,
                exc,
                extra={"job_id": aj.job.id},
            )
        aj.where = Where.DONE
        aj.pending, aj.unconfirmed = None, None
        aj.cancel_event.set()
        if aj.timer is not None:
            aj.timer.cancel()
            aj.timer = None
        request, aj.request = aj.request, None
        if request is not None and not request.cancel():
            aj.held.append(request.level)
        self._pool.remove(aj.job.id)
        self._release(aj, self._take_held_unlocked(aj))
        self._active.pop(aj.job.id, None)

    def _slot_freed(self) -> None:
        """A job left its worker slot: tell the daemon (never with a job mutex held)."""
        if self._on_slot_free is not None:
            self._on_slot_free()

    def writing(self) -> bool:
        """Whether this thread is inside one of the processor's own store writes.

        Store listeners run on the writer's thread: this tells them the change
        is the processor's own (nothing to read back).
        """
        return bool(getattr(self._writing, "on", False))

    def tracked(self, job_id: int) -> Job | None:
        """The committed state of a job this processor handles, or None."""
        aj = self._active.get(job_id)
        return aj.job if aj is not None else None

    def tracked_count(self) -> int:
        return len(self._active)

    def oldest_queued(self) -> float | None:
        """The ``received_at`` of the oldest job that waits for a worker, or None.

        Jobs are admitted in the order they were received, so the first match
        in admission order is the oldest; the jobs ahead of it are the few
        running or waiting ones, not the whole backlog.
        """
        try:
            return _first_queued(self._active.values())
        except RuntimeError:  # a job was admitted or finished meanwhile: look at a copy
            return _first_queued(list(self._active.values()))

    def shutdown(self) -> None:
        """The pool has stopped: requeue nothing more, and record what is still pending.

        An op's outcome the store still refuses is lost: after a restart the op
        counts as interrupted. That is logged, job by job.
        """
        self._stopped = True
        for aj in list(self._active.values()):
            with aj.mutex:
                if aj.pending is None or aj.where is Where.DONE:
                    continue
                try:
                    self._commit_unlocked(aj, aj.pending)
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
        aj = self._active.get(job_id)
        if aj is None:
            return
        try:
            if aj.pending is not None:
                self._record(aj)
                return
            run = self._prepare(aj)
            if run is not None:
                self._run(aj, run)
            elif aj.where is Where.LOCKS:
                self._slot_freed()  # parked in a lock wait: it holds no worker now
        except LeaseLost as exc:
            with aj.mutex:
                if aj.where is not Where.DONE:
                    self._drop_unlocked(aj, exc)
            self._slot_freed()
        except StoreError as exc:
            self._retry_later(aj, exc)

    def _prepare(self, aj: Active) -> _Run | None:
        with aj.mutex:
            if aj.where is Where.DONE or aj.job.is_final:
                return None
            aj.where = Where.TURN
            index = aj.job.current_op()
            assert index is not None
            op = aj.job.ops[index]
            if op.status is OpStatus.CANCELING:
                self._end_unlocked(aj, index, OpStatus.CANCELED, CANCELED_BY_REQUEST)
                ended = True
            elif aj.job.depends and index == 0 and op.started_at is None:
                ended = self._check_dependencies_unlocked(aj, index)
            else:
                ended = False
            if not ended:
                try:
                    return self._acquire_unlocked(aj, index)
                except LockError as exc:  # the lock manager refused the op's locks
                    logger.error("job %s op %s: %s", aj.job.id, index, exc)
                    self._end_unlocked(aj, index, OpStatus.ERROR, _error(exc))
            release = self._take_held_unlocked(aj)
        self._release(aj, release)
        self._finish(aj)
        return None

    def _check_dependencies_unlocked(self, aj: Active, index: int) -> bool:
        """End the job if a dependency did not end as it accepts; True if ended.

        The store hands out a job only once its dependencies are final
        (guarantee 9 of ``stores.base``), so this reads their outcome.
        """
        for dep in aj.job.depends:
            try:
                status = self._store.load(dep.job_id).status
            except JobNotFound:
                status = OpStatus.ERROR
            if status not in FINAL:
                message = f"dependency job {dep.job_id} has not finished ({status})"
                self._end_unlocked(
                    aj, index, OpStatus.ERROR, {"error": "DependencyFailed", "message": message}
                )
                return True
            if not dep.statuses or status in dep.statuses:
                continue
            accepted = ", ".join(str(s) for s in dep.statuses)
            if status is OpStatus.CANCELED:
                self._end_unlocked(
                    aj, index, OpStatus.CANCELED, f"dependency job {dep.job_id} was canceled"
                )
            else:
                self._end_unlocked(
                    aj,
                    index,
                    OpStatus.ERROR,
                    {
                        "error": "DependencyFailed",
                        "message": f"dependency job {dep.job_id} ended with status "
                        f"{status}, but only {accepted} was accepted",
                    },
                )
            return True
        return False

    def _acquire_unlocked(self, aj: Active, index: int) -> _Run | None:
        op = aj.job.ops[index]
        if aj.needs is None or aj.needs[0] != index:
            opdef = self._registry.get(op.op)
            params = opdef.params_model.model_validate(op.params)
            aj.needs = (index, opdef, params, self._registry.lock_needs(opdef, params))
        _, opdef, params, needs = aj.needs
        if aj.escalate_due:
            self._escalate_unlocked(aj, index)
        while len(aj.held) < len(needs):
            need = needs[len(aj.held)]
            request = self._request(need, aj.job.ops[index].priority, aj.lock_owner)
            if request.granted:
                aj.held.append(need.level)
                continue
            self._park_on_lock_unlocked(aj, index, request)
            return None
        if aj.wait_started is not None:
            waited = self._clock() - aj.wait_started
            aj.wait_started = None
            for observer in self.observers:
                observer.lock_waited(waited)
        now = self._wall()

        def start(job: Job) -> None:
            start_op(job, index, now)

        # Before an op runs, its start must be committed: after a crash it must
        # not run again unnoticed. An op that may run again (retry_on_crash)
        # need not wait for that commit: if it is lost, the op just runs again.
        # If the store refuses it, the op does not run: the turn is tried again
        # later, the locks still held.
        self._commit_unlocked(aj, start, wait=not opdef.retry_on_crash)
        aj.attempts = None
        aj.pending_timeout = None
        aj.attempt_deadline = None
        return _Run(index, opdef, params)

    def _park_on_lock_unlocked(self, aj: Active, index: int, request: LockRequest) -> None:
        if aj.job.ops[index].status is not OpStatus.WAITING:
            try:
                self._commit_unlocked(aj, lambda job: _set_status(job, index, OpStatus.WAITING))
            except StoreError:
                # Not parked after all: the turn is tried again later. What the
                # request took meanwhile is kept, like the levels taken before.
                if not request.cancel():
                    aj.held.append(request.level)
                raise
        aj.request = request
        aj.where = Where.LOCKS
        now = self._clock()
        if aj.wait_started is None:
            aj.wait_started = now
        if aj.attempt_deadline is None:
            if aj.attempts is None:
                self._new_sequence_unlocked(aj, index)
            if aj.pending_timeout is not None:
                aj.attempt_deadline = now + aj.pending_timeout
        if aj.attempt_deadline is not None:
            job_id = aj.job.id
            aj.timer = self._timers.call_at(
                aj.attempt_deadline, lambda: self._lock_timeout(job_id, request)
            )

    def _new_sequence_unlocked(self, aj: Active, index: int) -> None:
        if aj.job.ops[index].priority <= priorities.HIGHEST:
            aj.attempts = iter(())
            aj.pending_timeout = None
            return
        t = self._lock_timeouts
        aj.attempts = lock_attempt_timeouts(t.min_s, t.max_s, t.step_total_s)
        aj.pending_timeout = next(aj.attempts, None)

    def _next_attempt_unlocked(self, aj: Active) -> None:
        """An attempt timed out: take the next timeout, or escalate when the sequence is over.

        Escalating is committed at once; if the store refuses it, it stays due
        and the job's next turn commits it before asking for locks again.
        """
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
            self._new_sequence_unlocked(aj, index)
            return
        aj.escalate_due = True
        try:
            self._escalate_unlocked(aj, index)
        except StoreError as exc:
            self._note_failure_unlocked(aj, exc)

    def _escalate_unlocked(self, aj: Active, index: int) -> None:
        """Move the op's priority one step toward HIGHEST (committed) and start a new sequence."""
        old = aj.job.ops[index].priority
        new = old - 1
        waited = self._clock() - (aj.wait_started or self._clock())

        def escalate(job: Job) -> None:
            job.ops[index].priority = new
            job.ops[index].escalations += 1

        self._commit_unlocked(aj, escalate)
        aj.escalate_due = False
        self.escalations += 1
        for observer in self.observers:
            observer.escalated()
        self._log(
            aj.job.id,
            index,
            f"priority raised from {old} to {new} after waiting {waited:.1f} s for locks",
        )
        self._new_sequence_unlocked(aj, index)

    def _request(self, need: LockNeed, priority: int, owner: Hashable) -> LockRequest:
        """Ask for one level's locks, making named locks on demand.

        Names are made by the request itself (``create=True``): it waits for
        the level's names like any waiter, never blocking this worker (the
        queue's maintenance prunes idle locks, so new names are common).
        """
        made_on_demand = need.names is not None and need.level != self._registry.big_lock_level
        return self._locks.request(
            need.level,
            need.names if need.names is not None else ALL,
            shared=need.shared,
            priority=priority,
            owner=owner,
            on_grant=self._granted,
            create=made_on_demand,
        )

    # -- lock callbacks (from other threads) -------------------------------

    def _granted(self, request: LockRequest) -> None:
        owner = request.owner
        if isinstance(owner, tuple):  # (daemon id, job id): a lock manager shared by daemons
            owner = owner[1]
        aj = self._active.get(owner) if isinstance(owner, int) else None
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
                self._requeue_unlocked(aj, priorities.HIGHEST)
            else:  # a lock was deleted under it: ask again (the attempt's deadline stands)
                self._requeue_unlocked(aj, self._priority_unlocked(aj))

    def _lock_timeout(self, job_id: int, request: LockRequest) -> None:
        aj = self._active.get(job_id)
        if aj is None:
            return
        with aj.mutex:
            if aj.request is not request:
                return
            aj.request = None
            aj.timer = None
            aj.where = Where.MOVING
        self._withdraw(aj, request, timed_out=True)

    def _withdraw(self, aj: Active, request: LockRequest, *, timed_out: bool) -> None:
        """Take a job out of its lock wait (the caller set ``Where.MOVING``) and requeue it.

        If the wait timed out, the next attempt is set up, escalating the job
        when that was the last of its sequence; then the job is queued at its
        (new) priority, or at HIGHEST if the lock was granted meanwhile.
        """
        withdrawn = request.cancel()
        with aj.mutex:
            if withdrawn:
                release = self._take_held_unlocked(aj)
            else:
                aj.held.append(request.level)
                release = []
        self._release(aj, release)
        with aj.mutex:
            if withdrawn and timed_out:
                self._next_attempt_unlocked(aj)
            self._requeue_unlocked(aj, self._priority_unlocked(aj))

    # -- running and recording -----------------------------------------------

    def _run(self, aj: Active, run: _Run) -> None:
        job_id = aj.job.id
        ctx = OpContext(
            job_id,
            run.index,
            aj.job.ops[run.index].priority,
            lambda message: self._log(job_id, run.index, message),
            aj.cancel_event,
            lambda: self._cooperative(aj, run.index),
        )
        aj.ctx = ctx
        result: Any
        began = self._clock()
        try:
            if run.opdef.takes_params:
                result = run.opdef.handler(ctx, run.params)
            else:
                result = run.opdef.handler(ctx)
            outcome = OpStatus.SUCCESS
        except OpCanceled as exc:
            outcome, result = OpStatus.CANCELED, str(exc)
        except Exception as exc:
            logger.exception("job %s op %s (%s) failed", job_id, run.index, run.opdef.name)
            outcome, result = OpStatus.ERROR, _error(exc)
        problem = json_error(result) if outcome is OpStatus.SUCCESS else None
        if problem is not None:
            outcome = OpStatus.ERROR
            result = {
                "error": "InvalidResult",
                "message": f"the op returned a value that is not JSON: {problem}",
            }
        for observer in self.observers:
            observer.op_finished(run.opdef.name, outcome, self._clock() - began)
        if self.run_observers:
            op = aj.job.ops[run.index]
            ended = self._wall()
            worker = threading.current_thread().name.partition(":")[0]
            ran = OpRun(
                worker,
                job_id,
                run.index,
                op.op,
                op.priority,
                op.started_at or ended,
                ended,
                outcome,
            )
            for run_observer in self.run_observers:
                run_observer(ran)
        with aj.mutex:
            aj.ctx = None
            aj.cancel_event.clear()
            aj.pending = _ending(run.index, outcome, result, self._wall(), aj.job)
            aj.pending_what = f"the outcome of op {run.index} ({outcome})"
        self._record(aj)

    def _cooperative(self, aj: Active, index: int) -> None:
        """The running op checked for cancellation: store it (unwaited), for remote cancels."""
        with aj.mutex:
            if aj.where is Where.DONE or aj.job.ops[index].status is not OpStatus.RUNNING:
                return
            try:
                self._commit_unlocked(aj, lambda job: mark_cooperative(job, index), wait=False)
            except StoreError as exc:  # LeaseLost too: recording the outcome drops the job
                logger.warning("job %s: op %s cooperates, not stored: %s", aj.job.id, index, exc)

    def _record(self, aj: Active) -> None:
        """Commit the pending change, then release the locks and finish or defer the job.

        Raises:
            StoreError: the store refused it; the caller tries again later.
            DeferTask: the job has ops left (to the pool, which requeues it).
        """
        with aj.mutex:
            if aj.pending is None or aj.where is Where.DONE:
                return
            aj.where = Where.TURN
            self._commit_unlocked(aj, aj.pending)
            aj.pending, aj.pending_what = None, ""
            release = self._take_held_unlocked(aj)
            aj.needs = None
            final = aj.job.is_final
            if not final:
                aj.where = Where.POOL
                aj.seq = next(self._seq)
                aj.aged_at = self._clock()
            priority = aj.job.priority
        self._release(aj, release)
        if final:
            self._finish(aj)
            return
        raise DeferTask(priority=priority)

    def _end_unlocked(self, aj: Active, index: int, outcome: OpStatus, result: Any) -> None:
        """Record op ``index``'s outcome; fail or cancel the ops after it if it did not succeed."""
        self._commit_unlocked(aj, _ending(index, outcome, result, self._wall(), None))

    def _finish(self, aj: Active) -> None:
        """The job's final state is committed (and the store unowned it): forget it."""
        aj.where = Where.DONE
        self._active.pop(aj.job.id, None)
        self._slot_freed()
        if self._on_finished is not None:
            self._on_finished(aj.job)

    # -- when the store refuses a write ------------------------------------------

    def _retry_later(self, aj: Active, exc: StoreError) -> None:
        """A turn's write was refused: try the turn again after a backoff."""
        with aj.mutex:
            if aj.where is Where.DONE:
                return
            delay = self._note_failure_unlocked(aj, exc)
            aj.where = Where.STORE
            job_id = aj.job.id
            aj.timer = self._timers.call_later(delay, lambda: self._retry_now(job_id))

    def _retry_now(self, job_id: int) -> None:
        aj = self._active.get(job_id)
        if aj is None:
            return
        with aj.mutex:
            if aj.where is Where.STORE:
                aj.timer = None
                self._requeue_unlocked(aj, self._priority_unlocked(aj))

    def _note_failure_unlocked(self, aj: Active, exc: StoreError) -> float:
        """Count a refused write; log the first of an episode. Returns the backoff."""
        aj.failures += 1
        aj.store_error = str(exc)
        if aj.failures == 1:
            logger.error(
                "job %s: the store refused a write (%s); the job keeps its state and the "
                "write is tried again until the store takes it",
                aj.job.id,
                exc,
                extra={"job_id": aj.job.id},
            )
        return float(min(RETRY_FIRST_S * 2 ** (aj.failures - 1), RETRY_MAX_S))

    # -- cancel, change priority, aging ---------------------------------------

    def cancel(self, job_id: int) -> tuple[bool, str] | None:
        """Cancel a job (see docs/jobs.md). Every unfinished op ends ``canceled``.

        Returns the answer, or None if this processor does not hold the job.

        Raises:
            StoreError: the store refused the change; nothing changed.
        """
        aj = self._active.get(job_id)
        if aj is None:
            return None
        kick: LockRequest | None = None
        with aj.mutex:
            job = aj.job
            if aj.where is Where.DONE or job.is_final:
                return False, f"job {job_id} has already finished ({job.status})"
            if aj.pending is not None:
                return False, (
                    f"job {job_id} is recording {aj.pending_what}, which the store has "
                    "refused so far (it is tried again); cancel again once it is recorded"
                )
            index = job.current_op()
            assert index is not None
            op = job.ops[index]
            if job.status is OpStatus.CANCELING:
                return False, f"job {job_id} is already being canceled"
            if op.status is OpStatus.RUNNING:
                opdef = self._registry.get(op.op)
                if not (opdef.cancellable or (aj.ctx is not None and aj.ctx.cooperative)):
                    return False, (
                        f"job {job_id} is no longer waiting in the queue: op {index} "
                        f"({op.op}) is running and does not check for cancellation"
                    )
                self._commit_unlocked(aj, _marking(OpStatus.CANCELING, None, 0.0))
                aj.cancel_event.set()
                return True, f"job {job_id} will be canceled at its running op's next check"
            if op.status is OpStatus.QUEUED and not aj.held:
                self._commit_unlocked(
                    aj, _marking(OpStatus.CANCELED, CANCELED_BY_REQUEST, self._wall())
                )
                finished = True
            else:
                self._commit_unlocked(aj, _marking(OpStatus.CANCELING, None, 0.0))
                kick = self._unpark_unlocked(aj)
                finished = False
        if finished:
            self._finish(aj)
            return True, f"job {job_id} canceled"
        if kick is not None:
            self._withdraw(aj, kick, timed_out=False)
        return True, f"job {job_id} will be canceled at its next turn"

    def change_priority(self, job_id: int, priority: int) -> tuple[bool, str] | None:
        """Give the job's pending ops ``priority``; a job holding locks keeps its place.

        Returns the answer, or None if this processor does not hold the job.

        Raises:
            StoreError: the store refused the change; nothing changed.
        """
        aj = self._active.get(job_id)
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
                i
                for i, op in enumerate(job.ops)
                if op.status in (OpStatus.QUEUED, OpStatus.WAITING)
            ]
            if not pending:
                return False, f"job {job_id} has no pending ops (its current op is running)"

            def change(job: Job) -> None:
                for i in pending:
                    job.ops[i].priority = priority

            self._commit_unlocked(aj, change)
            aj.attempts = None
            aj.pending_timeout = None
            aj.escalate_due = False
            # A job holding locks stays where it is in the pool (it runs next, so the
            # jobs waiting for its locks wait no longer); the new priority applies to
            # its next lock wait.
            if aj.where is Where.POOL and not aj.held:
                # NoSuchTask: a worker has just taken it; the next turn uses the new priority
                with contextlib.suppress(NoSuchTask):
                    self._pool.change_priority(job_id, aj.job.priority)
            elif aj.where in (Where.LOCKS, Where.STORE):
                kick = self._unpark_unlocked(aj)
        if kick is not None:
            self._withdraw(aj, kick, timed_out=False)
        return True, f"job {job_id} priority changed to {priorities.name_of(priority)}"

    def age(self) -> int:
        """Raise by one step per aging interval every job queued that long; returns steps.

        A job whose aging the store refuses keeps its age and is aged at the next pass.
        """
        interval = self.aging_interval
        if interval <= 0:
            return 0
        now = self._clock()
        steps_total = 0
        for aj in list(self._active.values()):
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
                    self._commit_unlocked(aj, raise_priority)
                except StoreError as exc:
                    self._note_failure_unlocked(aj, exc)
                    continue
                aj.aged_at += steps * interval
                new = aj.job.priority
                steps_total += old - new
                with contextlib.suppress(NoSuchTask):
                    self._pool.change_priority(aj.job.id, new)
            self._log(aj.job.id, index, f"priority raised from {old} to {new} by aging")
        return steps_total

    def _unpark_unlocked(self, aj: Active) -> LockRequest | None:
        """Take the job out of a wait so that its next turn comes at once.

        Returns a lock request to withdraw (with ``_withdraw``, mutex released).
        """
        if aj.where is Where.STORE:  # the store has just taken a write: try again now
            if aj.timer is not None:
                aj.timer.cancel()
                aj.timer = None
            self._requeue_unlocked(aj, self._priority_unlocked(aj))
            return None
        if aj.where is Where.LOCKS and aj.request is not None:
            request, aj.request = aj.request, None
            if aj.timer is not None:
                aj.timer.cancel()
                aj.timer = None
            aj.where = Where.MOVING
            return request
        return None

    # -- explain ----------------------------------------------------------------

    def snapshot(self, job_id: int) -> dict[str, Any] | None:
        """What the processor knows of a tracked job, for ``explain``."""
        aj = self._active.get(job_id)
        if aj is None:
            return None
        with aj.mutex:
            job = aj.job
            info: dict[str, Any] = {"where": aj.where.value, "job": job}
            if aj.where is Where.POOL:
                mine = (job.priority, aj.seq)
                higher = same = 0
                for other in list(self._active.values()):
                    if other is aj or other.where is not Where.POOL:
                        continue
                    key = (other.job.priority, other.seq)
                    if key < mine:
                        if key[0] < mine[0]:
                            higher += 1
                        else:
                            same += 1
                info["ahead_higher"] = higher
                info["ahead_same"] = same
            if aj.request is not None:
                info["lock_request"] = aj.request
                info["wait_started"] = aj.wait_started
            if aj.where is Where.STORE:
                info["store_error"] = aj.store_error
                info["pending"] = aj.pending_what
            return info

    def holder_op(self, job_id: object) -> str | None:
        if isinstance(job_id, tuple):
            job_id = job_id[1]
        aj = self._active.get(job_id) if isinstance(job_id, int) else None
        if aj is None:
            return None
        index = aj.job.current_op()
        return None if index is None else f"op {index} ({aj.job.ops[index].op})"

    # -- helpers ------------------------------------------------------------------

    def _commit_unlocked(self, aj: Active, change: Change, *, wait: bool = True) -> None:
        """Apply ``change`` to a copy of the job, commit it, then make it the working copy.

        ``wait=False``: the store commits it soon but this does not wait for it.
        A conflict means the working copy is stale (an unwaited save was lost):
        the job is reloaded, that lost change and this one are applied again
        and saved once more.

        Raises:
            StoreError: the store refused it (or conflicted twice); nothing changed.
        """
        job = aj.job.clone()
        change(job)
        self._writing.on = True
        try:
            self._store.save(job, wait=wait)
        except LeaseLost:
            raise  # not a stale copy: the job is not ours any more (the caller drops it)
        except StoreConflict as exc:
            logger.warning("job %s: %s; reloading it", aj.job.id, exc)
            job = self._store.load(aj.job.id)
            if aj.unconfirmed is not None:
                aj.unconfirmed(job)
            change(job)
            self._store.save(job, wait=wait)
        finally:
            self._writing.on = False
        aj.job = job
        aj.unconfirmed = None if wait else change
        if aj.failures:
            logger.info(
                "job %s: the store took its write again after %d refusal(s)",
                aj.job.id,
                aj.failures,
                extra={"job_id": aj.job.id},
            )
            aj.failures = 0
            aj.store_error = ""

    def _priority_unlocked(self, aj: Active) -> int:
        """Where the job queues in the pool: at HIGHEST while it holds locks."""
        return priorities.HIGHEST if aj.held else aj.job.priority

    def _requeue_unlocked(self, aj: Active, priority: int) -> None:
        aj.where = Where.POOL
        aj.seq = next(self._seq)
        if self._stopped:
            return  # the pool is shut down: the job stays queued in the store
        try:
            self._pool.add_task(self.turn, aj.job.id, priority=priority, task_id=aj.job.id)
        except RuntimeError:  # shut down meanwhile (the queue is closing): the same
            logger.info("job %s: not queued again, the daemon is stopping", aj.job.id)

    def _take_held_unlocked(self, aj: Active) -> list[str]:
        held, aj.held = aj.held, []
        return held

    def _release(self, aj: Active, levels: list[str]) -> None:
        for level in reversed(levels):
            try:
                self._locks.release(level, owner=aj.lock_owner)
            except LockError:
                logger.exception("job %s: releasing level %s failed", aj.job.id, level)

    def _log(self, job_id: int, index: int, message: str) -> None:
        aj = self._active.get(job_id)
        owner = None if aj is None else aj.job.owner
        fence = None if aj is None or owner is None else (owner, aj.job.fence)
        self._writing.on = True
        try:
            self._store.append_log(job_id, index, self._wall(), message, fence=fence)
        except StoreError:
            logger.exception("job %s: could not store a log line", job_id)
        else:
            logger.info("job %s op %s: %s", job_id, index, message, extra={"job_id": job_id})
        finally:
            self._writing.on = False


def _first_queued(jobs: Iterable[Active]) -> float | None:
    for aj in jobs:
        if aj.where is Where.POOL and aj.job.status is OpStatus.QUEUED:
            return aj.job.received_at
    return None


def _ending(index: int, outcome: OpStatus, result: Any, now: float, ran: Job | None) -> Change:
    """The change that records op ``index``'s outcome (see ``jobs.end_op``).

    ``ran``: the job as it was when the op started, whose start times are
    applied too, in case the record of the start was lost (a conflict).
    """
    started = None if ran is None else (ran.ops[index].started_at, ran.started_at)

    def end(job: Job) -> None:
        if started is not None:
            if job.ops[index].started_at is None:
                job.ops[index].started_at = started[0]
            if job.started_at is None:
                job.started_at = started[1]
        end_op(job, index, outcome, result, now)

    return end


def _marking(status: OpStatus, result: Any, now: float) -> Change:
    def mark(job: Job) -> None:
        job.mark_unfinished(status, result, now)

    return mark


def _set_status(job: Job, index: int, status: OpStatus) -> None:
    job.ops[index].status = status


def _error(exc: BaseException) -> dict[str, str]:
    return {"error": type(exc).__name__, "message": str(exc)}
