"""One job step at a time: locks -> run the op -> record the outcome, or step aside.

Every job is a worker-pool task at its job priority. A turn runs at most
one op; afterwards the job defers itself (``DeferTask``) at its recomputed
priority, so higher-priority work overtakes it between ops.

Lock waits use no worker and no thread: the turn asks the lock manager for
the op's locks level by level (``LockManager.request``); a request that
cannot be granted at once stays queued *inside the lock* (priority-ordered
with every other waiter) and the turn ends. When the lock manager grants
it, the job goes back into the pool at ``HIGHEST`` (it holds resources, so it
should run next). Each wait is bounded by an attempt timeout from
``lock_attempt_timeouts``; when it expires the job withdraws, releases what
it took and goes back to the pool at its own priority. When a whole
sequence of attempts has failed, the op's priority moves one step toward
``HIGHEST`` (persisted) and a new sequence starts; at ``HIGHEST`` the wait
has no timeout.

Locking discipline: each tracked job has one mutex (``Active.mutex``);
every change of its state happens under it and is committed to the store
before it is acted upon. A thread holds at most one job mutex at a time, and
never holds one while releasing or withdrawing locks (those calls may run
other jobs' grant callbacks). ``_deps_mutex`` guards the dependency
waiters and the removal of finished jobs; it is taken after a job mutex,
never before.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import pydantic

from . import priorities
from .activity import OpRun
from .errors import JobNotFound, LockError, StoreConflict, StoreError
from .jobs import FINAL, Job, OpStatus, json_error
from .locking import ALL, LockManager, LockRequest, lock_attempt_timeouts
from .operations import LockNeed, OpCanceled, OpContext, OpDef, Registry
from .stores.base import Store
from .timers import TimerHandle, TimerThread
from .workerpool import DeferTask, NoSuchTask, WorkerPool

logger = logging.getLogger(__name__)

PRECEDING_FAILED = "Preceding operation failed"
CRASHED = "daemon stopped while the operation was running"
PRUNE_RETRIES = 5  # times a job adds again a lock pruned under its feet before giving up


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
    DEPS = "deps"  # parked until a dependency finishes
    MOVING = "moving"  # being taken out of a lock wait by a timeout, cancel or re-prioritisation
    DONE = "done"


class Active:
    """The working state of a job this processor handles; guarded by ``mutex``."""

    __slots__ = (
        "aged_at",
        "attempt_deadline",
        "attempts",
        "cancel_event",
        "ctx",
        "dep_wait",
        "held",
        "job",
        "mutex",
        "needs",
        "pending_timeout",
        "request",
        "seq",
        "timed_out",
        "timer",
        "wait_started",
        "where",
    )

    def __init__(self, job: Job, now: float, seq: int) -> None:
        self.job = job
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
        self.timed_out = False
        self.wait_started: float | None = None
        self.dep_wait: int | None = None
        self.cancel_event = threading.Event()
        self.ctx: OpContext | None = None


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
        timers: TimerThread,
        lock_timeouts: LockTimeouts = DEFAULT_LOCK_TIMEOUTS,
        aging_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_finished: Callable[[Job], None] | None = None,
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
        self._active: dict[int, Active] = {}
        self._deps_mutex = threading.Lock()
        self._dep_waiters: dict[int, set[int]] = {}
        self._seq = itertools.count()
        self.escalations = 0
        self.observers: list[Observer] = []
        self.run_observers: list[Callable[[OpRun], None]] = []
        """Told of each op run as it ends (the dashboard's timeline); quick and thread-safe."""

    # -- admission ---------------------------------------------------------

    def admit(self, job: Job) -> None:
        """Track a committed, unfinished job and queue its first turn."""
        aj = Active(job, self._clock(), next(self._seq))
        self._active[job.id] = aj
        self._pool.add_task(self.turn, job.id, priority=job.priority, task_id=job.id)

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

    # -- a turn ------------------------------------------------------------

    def turn(self, job_id: int) -> None:
        """The pool task of a job: prepare the current op, run it, record it."""
        aj = self._active.get(job_id)
        if aj is None:
            return
        try:
            run = self._prepare(aj)
        except StoreError:
            logger.exception("job %s: the store failed; retrying in 1 s", job_id)
            self._retry_later(aj)
            return
        if run is not None:
            self._run(aj, run)

    def _prepare(self, aj: Active) -> _Run | None:
        with aj.mutex:
            if aj.where is Where.DONE or aj.job.is_final:
                return None
            aj.where = Where.TURN
            index = aj.job.current_op()
            assert index is not None
            op = aj.job.ops[index]
            if op.status is OpStatus.CANCELING:
                self._end_unlocked(aj, index, OpStatus.CANCELED, "canceled by request")
                ended = True
            elif aj.job.depends and index == 0 and op.started_at is None:
                ended = self._check_dependencies_unlocked(aj, index)
                if not ended and aj.where is Where.DEPS:
                    return None
            else:
                ended = False
            if not ended:
                try:
                    return self._acquire_unlocked(aj, index)
                except LockError as exc:  # the lock manager refused the op's locks
                    logger.error("job %s op %s: %s", aj.job.id, index, exc)
                    self._end_unlocked(aj, index, OpStatus.ERROR, _error(exc))
            release = self._take_held_unlocked(aj)
        self._release(aj.job.id, release)
        self._finish(aj)
        return None

    def _check_dependencies_unlocked(self, aj: Active, index: int) -> bool:
        """Park the job if a dependency is unfinished; end it if one failed. True if ended."""
        with self._deps_mutex:
            for dep in aj.job.depends:
                status = self._final_status_locked(dep.job_id)
                if status is None:
                    self._dep_waiters.setdefault(dep.job_id, set()).add(aj.job.id)
                    aj.dep_wait = dep.job_id
                    break
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
            else:
                aj.dep_wait = None
                return False
        if aj.job.ops[index].status is not OpStatus.WAITING:
            self._commit_unlocked(aj, lambda job: _set_status(job, index, OpStatus.WAITING))
        aj.where = Where.DEPS
        return False

    def _final_status_locked(self, job_id: int) -> OpStatus | None:
        other = self._active.get(job_id)
        job = other.job if other is not None else None
        if job is None:
            try:
                job = self._store.load(job_id)
            except JobNotFound:
                return OpStatus.ERROR
        status = job.status
        return status if status in FINAL else None

    def _acquire_unlocked(self, aj: Active, index: int) -> _Run | None:
        op = aj.job.ops[index]
        if aj.needs is None or aj.needs[0] != index:
            opdef = self._registry.get(op.op)
            params = opdef.params_model.model_validate(op.params)
            aj.needs = (index, opdef, params, self._registry.lock_needs(opdef, params))
        _, opdef, params, needs = aj.needs
        if aj.timed_out:
            self._next_attempt_unlocked(aj, index)
        job_id = aj.job.id
        while len(aj.held) < len(needs):
            need = needs[len(aj.held)]
            request = self._request(need, aj.job.ops[index].priority, job_id)
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
            job.ops[index].status = OpStatus.RUNNING
            job.ops[index].started_at = now
            if job.started_at is None:
                job.started_at = now

        # Before an op runs, its start must be committed: after a crash it must
        # not run again unnoticed. An op that may run again (retry_on_crash)
        # need not wait for that commit: if it is lost, the op just runs again.
        self._commit_unlocked(aj, start, wait=not opdef.retry_on_crash)
        aj.attempts = None
        aj.pending_timeout = None
        aj.attempt_deadline = None
        return _Run(index, opdef, params)

    def _park_on_lock_unlocked(self, aj: Active, index: int, request: LockRequest) -> None:
        if aj.job.ops[index].status is not OpStatus.WAITING:
            self._commit_unlocked(aj, lambda job: _set_status(job, index, OpStatus.WAITING))
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

    def _next_attempt_unlocked(self, aj: Active, index: int) -> None:
        """After a timed-out attempt: the next timeout, or escalate and start a new sequence."""
        aj.timed_out = False
        aj.attempt_deadline = None
        if aj.attempts is None:
            self._new_sequence_unlocked(aj, index)
            return
        aj.pending_timeout = next(aj.attempts, None)
        if aj.pending_timeout is not None:
            return
        old = aj.job.ops[index].priority
        if old > priorities.HIGHEST:
            new = old - 1
            waited = self._clock() - (aj.wait_started or self._clock())

            def escalate(job: Job) -> None:
                job.ops[index].priority = new
                job.ops[index].escalations += 1

            self._commit_unlocked(aj, escalate)
            self.escalations += 1
            for observer in self.observers:
                observer.escalated()
            self._log(
                aj.job.id,
                index,
                f"priority raised from {old} to {new} after waiting {waited:.1f} s for locks",
            )
        self._new_sequence_unlocked(aj, index)

    def _request(self, need: LockNeed, priority: int, job_id: int) -> LockRequest:
        """Ask for one level's locks, making named locks on demand.

        The queue's maintenance prunes idle locks; one pruned between ``add``
        and ``request`` makes the request fail with LockError: add it again.
        """
        made_on_demand = need.names is not None and need.level != self._registry.big_lock_level
        for attempt in range(PRUNE_RETRIES + 1):
            if made_on_demand:
                assert need.names is not None
                self._locks.add(need.level, need.names, owner=job_id)
            try:
                return self._locks.request(
                    need.level,
                    need.names if need.names is not None else ALL,
                    shared=need.shared,
                    priority=priority,
                    owner=job_id,
                    on_grant=self._granted,
                )
            except LockError:
                if not made_on_demand or attempt == PRUNE_RETRIES:
                    raise
        raise AssertionError("unreachable")

    # -- lock callbacks (from other threads) -------------------------------

    def _granted(self, request: LockRequest) -> None:
        owner = request.owner
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
            else:
                aj.timed_out = True
            self._requeue_unlocked(aj, priorities.HIGHEST)

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
        self._withdraw(aj, request, timed_out=True, priority=None)

    def _withdraw(
        self, aj: Active, request: LockRequest, *, timed_out: bool, priority: int | None
    ) -> None:
        """Take a job out of its lock wait (the caller set ``Where.MOVING``) and requeue it."""
        withdrawn = request.cancel()
        with aj.mutex:
            if withdrawn:
                release = self._take_held_unlocked(aj)
                aj.timed_out = timed_out
                aj.attempt_deadline = None
            else:
                aj.held.append(request.level)
                release = []
        self._release(aj.job.id, release)
        with aj.mutex:
            self._requeue_unlocked(aj, aj.job.priority if priority is None else priority)

    # -- running and recording -----------------------------------------------

    def _run(self, aj: Active, run: _Run) -> None:
        job_id = aj.job.id
        ctx = OpContext(
            job_id,
            run.index,
            aj.job.ops[run.index].priority,
            lambda message: self._log(job_id, run.index, message),
            aj.cancel_event,
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
            try:
                self._end_unlocked(aj, run.index, outcome, result)
            except StoreError:
                logger.exception("job %s: could not record the outcome of op %s", job_id, run.index)
                aj.where = Where.DONE
            release = self._take_held_unlocked(aj)
            aj.needs = None
            final = aj.where is Where.DONE or aj.job.is_final
            if not final:
                aj.where = Where.POOL
                aj.seq = next(self._seq)
                aj.aged_at = self._clock()
            priority = aj.job.priority
        self._release(job_id, release)
        if final:
            self._finish(aj)
            return
        raise DeferTask(priority=priority)

    def _end_unlocked(self, aj: Active, index: int, outcome: OpStatus, result: Any) -> None:
        """Record op ``index``'s outcome; fail or cancel the ops after it if it did not succeed."""
        now = self._wall()

        def end(job: Job) -> None:
            op = job.ops[index]
            was_canceling = op.status is OpStatus.CANCELING
            op.status, op.result, op.ended_at = outcome, result, now
            rest: OpStatus | None = None
            if outcome is OpStatus.ERROR:
                rest = OpStatus.ERROR
            elif outcome is OpStatus.CANCELED or was_canceling:
                rest = OpStatus.CANCELED
            if rest is not None:
                reason = PRECEDING_FAILED if rest is OpStatus.ERROR else "canceled by request"
                for later in job.ops[index + 1 :]:
                    later.status, later.result, later.ended_at = rest, reason, now
            if job.current_op() is None:
                job.ended_at = now

        self._commit_unlocked(aj, end)

    def _finish(self, aj: Active) -> None:
        with self._deps_mutex:
            aj.where = Where.DONE
            self._active.pop(aj.job.id, None)
            waiters = self._dep_waiters.pop(aj.job.id, set())
        for waiter in sorted(waiters):
            self._wake(waiter)
        if self._on_finished is not None:
            self._on_finished(aj.job)

    def _wake(self, job_id: int) -> None:
        aj = self._active.get(job_id)
        if aj is None:
            return
        with aj.mutex:
            if aj.where is Where.DEPS:
                self._requeue_unlocked(aj, aj.job.priority)

    # -- cancel, change priority, aging ---------------------------------------

    def cancel(self, job_id: int) -> tuple[bool, str]:
        aj = self._active.get(job_id)
        if aj is None:
            return self._untracked_answer(job_id)
        kick: LockRequest | None = None
        with aj.mutex:
            job = aj.job
            if aj.where is Where.DONE or job.is_final:
                return False, f"job {job_id} has already finished ({job.status})"
            index = job.current_op()
            assert index is not None
            op = job.ops[index]
            if op.status is OpStatus.CANCELING:
                return False, f"job {job_id} is already being canceled"
            if op.status is OpStatus.RUNNING:
                opdef = self._registry.get(op.op)
                if not (opdef.cancellable or (aj.ctx is not None and aj.ctx.cooperative)):
                    return False, (
                        f"job {job_id} is no longer waiting in the queue: op {index} "
                        f"({op.op}) is running and does not check for cancellation"
                    )
                self._commit_unlocked(aj, lambda j: _set_status(j, index, OpStatus.CANCELING))
                aj.cancel_event.set()
                return True, f"job {job_id} will be canceled at its running op's next check"
            if op.status is OpStatus.QUEUED and not aj.held:
                self._end_unlocked(aj, index, OpStatus.CANCELED, "canceled by request")
                finished = True
            else:
                self._commit_unlocked(aj, lambda j: _set_status(j, index, OpStatus.CANCELING))
                kick = self._unpark_unlocked(aj)
                finished = False
        if finished:
            self._finish(aj)
            return True, f"job {job_id} canceled"
        if kick is not None:
            self._withdraw(aj, kick, timed_out=False, priority=None)
        return True, f"job {job_id} will be canceled at its next turn"

    def change_priority(self, job_id: int, priority: int) -> tuple[bool, str]:
        aj = self._active.get(job_id)
        if aj is None:
            return self._untracked_answer(job_id)
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
            new = aj.job.priority
            if aj.where is Where.POOL:
                # NoSuchTask: a worker has just taken it; the next turn uses the new priority
                with contextlib.suppress(NoSuchTask):
                    self._pool.change_priority(job_id, new)
            elif aj.where is Where.LOCKS:
                kick = self._unpark_unlocked(aj)
        if kick is not None:
            self._withdraw(aj, kick, timed_out=False, priority=new)
        return True, f"job {job_id} priority changed to {priorities.name_of(priority)}"

    def age(self) -> int:
        """Raise by one step per aging interval every job queued that long; returns steps."""
        interval = self.aging_interval
        if interval <= 0:
            return 0
        now = self._clock()
        steps_total = 0
        for aj in list(self._active.values()):
            if aj.where is not Where.POOL or now - aj.aged_at < interval:
                continue
            with aj.mutex:
                if aj.where is not Where.POOL or now - aj.aged_at < interval:
                    continue
                index = aj.job.current_op()
                if index is None or aj.job.ops[index].status is not OpStatus.QUEUED:
                    continue
                steps = int((now - aj.aged_at) // interval)
                aj.aged_at += steps * interval
                old = aj.job.priority
                if old <= priorities.HIGHEST:
                    continue

                def raise_priority(job: Job, steps: int = steps) -> None:
                    for op in job.ops:
                        if not op.is_final and op.priority > priorities.HIGHEST:
                            op.priority = priorities.escalate(op.priority, steps)
                            op.escalations += 1

                self._commit_unlocked(aj, raise_priority)
                new = aj.job.priority
                steps_total += old - new
                with contextlib.suppress(NoSuchTask):
                    self._pool.change_priority(aj.job.id, new)
            self._log(aj.job.id, index, f"priority raised from {old} to {new} by aging")
        return steps_total

    def _untracked_answer(self, job_id: int) -> tuple[bool, str]:
        job = self._store.load(job_id)
        if job.is_final:
            return False, f"job {job_id} has already finished ({job.status})"
        return False, f"job {job_id} is not handled by this daemon"

    def _unpark_unlocked(self, aj: Active) -> LockRequest | None:
        """Take the job out of a lock or dependency wait. Returns a lock request to withdraw."""
        if aj.where is Where.DEPS:
            with self._deps_mutex:
                if aj.dep_wait is not None:
                    self._dep_waiters.get(aj.dep_wait, set()).discard(aj.job.id)
            self._requeue_unlocked(aj, aj.job.priority)
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
            if aj.where is Where.DEPS:
                info["dep_wait"] = aj.dep_wait
            return info

    def holder_op(self, job_id: object) -> str | None:
        aj = self._active.get(job_id) if isinstance(job_id, int) else None
        if aj is None:
            return None
        index = aj.job.current_op()
        return None if index is None else f"op {index} ({aj.job.ops[index].op})"

    # -- helpers ------------------------------------------------------------------

    def _commit_unlocked(
        self, aj: Active, change: Callable[[Job], None], *, wait: bool = True
    ) -> None:
        """Apply ``change`` to a copy of the job, commit it, then make it the working copy.

        ``wait=False``: the store commits it soon but this does not wait for it.
        """
        job = aj.job.clone()
        change(job)
        try:
            self._store.save(job, wait=wait)
        except StoreConflict:
            aj.job = self._store.load(job.id)
            raise
        aj.job = job

    def _requeue_unlocked(self, aj: Active, priority: int) -> None:
        aj.where = Where.POOL
        aj.seq = next(self._seq)
        aj.dep_wait = None
        self._pool.add_task(self.turn, aj.job.id, priority=priority, task_id=aj.job.id)

    def _take_held_unlocked(self, aj: Active) -> list[str]:
        held, aj.held = aj.held, []
        return held

    def _release(self, job_id: int, levels: list[str]) -> None:
        for level in reversed(levels):
            try:
                self._locks.release(level, owner=job_id)
            except LockError:
                logger.exception("job %s: releasing level %s failed", job_id, level)

    def _retry_later(self, aj: Active) -> None:
        def again() -> None:
            with aj.mutex:
                if aj.where is not Where.DONE:
                    self._requeue_unlocked(aj, aj.job.priority)

        with aj.mutex:
            aj.where = Where.MOVING
        self._timers.call_later(1.0, again)

    def _log(self, job_id: int, index: int, message: str) -> None:
        try:
            self._store.append_log(job_id, index, self._wall(), message)
        except StoreError:
            logger.exception("job %s: could not store a log line", job_id)
        else:
            logger.info("job %s op %s: %s", job_id, index, message, extra={"job_id": job_id})


def _first_queued(jobs: Iterable[Active]) -> float | None:
    for aj in jobs:
        if aj.where is Where.POOL and aj.job.status is OpStatus.QUEUED:
            return aj.job.received_at
    return None


def _set_status(job: Job, index: int, status: OpStatus) -> None:
    job.ops[index].status = status


def _error(exc: BaseException) -> dict[str, str]:
    return {"error": type(exc).__name__, "message": str(exc)}
