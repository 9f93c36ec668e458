"""The engine's shared state: the jobs it tracks, where each is, and the services they use.

An :class:`Active` is the working state of one claimed job, guarded by its
``mutex``; :class:`Where` says where the job is right now. An
:class:`EngineState` holds every ``Active`` of this daemon with the store,
pool, lock manager, timers and clocks; each part of the engine (``commit``,
``lockwait``, ``run``, ``deps``, ``cancel``, ``reprioritise``) is a set of
functions taking it explicitly, and ``processor.Processor`` composes them.

Locking discipline: every change of a job's state happens under its
``Active.mutex`` (functions ending in ``_unlocked`` need it held); a thread
holds at most one job mutex at a time.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import pydantic

from .. import priorities
from ..errors import LockError
from ..jobs import Job, OpStatus
from ..locking import LockManager, LockRequest, LockTimeouts
from ..operations import LockNeed, OpContext, OpDef, Registry
from ..stores.base import Store
from ..timers import TimerHandle, Timers
from ..workerpool import WorkerPool

logger = logging.getLogger(__name__)

CRASHED = "daemon stopped while the operation was running"


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


_WAKEUPS = threading.Lock()
"""Guards every ``CancelEvent``'s flag against the making of its condition."""


class CancelEvent:
    """A ``threading.Event`` for one job's cancel that costs nothing to make.

    Every claimed job makes one and almost none is ever waited for, so its
    ``Condition`` is made by the first :meth:`wait`. Flag and condition
    change under one module lock (``_WAKEUPS``), so a :meth:`set` either
    finds the condition of a waiter and wakes it, or comes before that
    waiter looks at the flag. Same semantics as ``threading.Event``: ``set``
    wakes every waiter, ``wait`` returns the flag.
    """

    __slots__ = ("_cond", "_flag")

    def __init__(self) -> None:
        self._cond: threading.Condition | None = None
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with _WAKEUPS:
            self._flag = True
            cond = self._cond
        if cond is not None:
            with cond:
                cond.notify_all()

    def clear(self) -> None:
        self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        with _WAKEUPS:
            if self._flag:
                return True
            if self._cond is None:
                self._cond = threading.Condition(threading.Lock())
            cond = self._cond
        with cond:
            # A set() after the check above notifies under this condition:
            # either before this wait (the flag says so) or during it.
            return self._flag or cond.wait(timeout) or self._flag


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
        "parked",
        "pending",
        "pending_timeout",
        "pending_what",
        "queued_priority",
        "request",
        "seq",
        "store_error",
        "timer",
        "unconfirmed",
        "wait_started",
        "where",
    )

    def __init__(
        self,
        job: Job,
        now: float,
        seq: int,
        parked: set[int] | None = None,
        priority: int | None = None,
    ) -> None:
        self.job = job
        """The job as committed: never a state the store has not taken."""
        self.lock_owner: Hashable = job.id
        """Who holds and waits for its locks: the job id, or (daemon id, job id) if shared."""
        self.mutex = threading.Lock()
        self.parked: set[int] = set() if parked is None else parked
        """The ids of the jobs in lock waits (``EngineState.parked``): see :func:`move_unlocked`."""
        self.where = Where.POOL
        """Where the job is; set by :func:`move_unlocked` where ``LOCKS`` is entered or left."""
        self.queued_priority = job.priority if priority is None else priority
        """The pool priority of its turn when it last queued (``Processor.worst_queued``)."""
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
        self.cancel_event = CancelEvent()
        self.ctx: OpContext | None = None
        self.pending: Change | None = None
        """A decided change (an op's outcome, a recovery) the store has not taken yet."""
        self.pending_what = ""
        self.unconfirmed: Change | None = None
        """The last change saved without waiting: a conflict may mean it was lost."""
        self.failures = 0
        """Writes of this job the store refused in a row (0: all is well)."""
        self.store_error = ""


def move_unlocked(aj: Active, where: Where) -> None:
    """Set where the job is, keeping ``parked`` (the jobs in ``LOCKS``) true."""
    if where is Where.LOCKS:
        aj.parked.add(aj.job.id)
    elif aj.where is Where.LOCKS:
        aj.parked.discard(aj.job.id)
    aj.where = where


@dataclass(slots=True)
class Run:
    """An op whose start is committed: what its turn runs (not changed once made)."""

    index: int
    opdef: OpDef
    params: pydantic.BaseModel


class EngineState:
    """The jobs this daemon tracks (``active``, by id) and what handling them takes."""

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        pool: WorkerPool,
        locks: LockManager,
        timers: Timers,
        lock_timeouts: LockTimeouts,
        clock: Callable[[], float],
        wall: Callable[[], float],
        on_finished: Callable[[Job], None] | None,
        on_slot_free: Callable[[], None] | None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.pool = pool
        self.locks = locks
        self.timers = timers
        self.lock_timeouts = lock_timeouts
        self.clock = clock
        self.wall = wall
        self.on_finished = on_finished
        self.on_slot_free = on_slot_free
        self.active: dict[int, Active] = {}
        self.parked: set[int] = set()
        """The ids of the tracked jobs in lock waits (``Where.LOCKS``): see ``move_unlocked``."""
        self.seq = itertools.count()
        self.stopped = False
        self.escalations = 0
        self.observers: list[Observer] = []
        self.lock_owner_of: Callable[[Job], Hashable] | None = None
        """Who holds a job's locks, if not its id (a lock manager shared by daemons)."""
        self.turn: Callable[[int], None] = lambda job_id: None
        """A job's pool task (the processor's turn, set by the processor)."""
        self.on_grant: Callable[[LockRequest], None] = lambda request: None
        """Told of a parked lock request's grant (``lockwait.granted``, set by the processor)."""

    def requeue_unlocked(self, aj: Active, priority: int) -> None:
        """Queue the job's next turn in the pool at ``priority``."""
        move_unlocked(aj, Where.POOL)
        aj.seq = next(self.seq)
        aj.queued_priority = priority
        if self.stopped:
            return  # the pool is shut down: the job stays queued in the store
        try:
            self.pool.add_task(self.turn, aj.job.id, priority=priority, task_id=aj.job.id)
        except RuntimeError:  # shut down meanwhile (the queue is closing): the same
            logger.info("job %s: not queued again, the daemon is stopping", aj.job.id)

    def release(self, aj: Active, levels: list[str]) -> None:
        """Release the levels of locks the job held (taken out with ``take_held_unlocked``)."""
        for level in reversed(levels):
            try:
                self.locks.release(level, owner=aj.lock_owner)
            except LockError:
                logger.exception("job %s: releasing level %s failed", aj.job.id, level)

    def slot_freed(self) -> None:
        """A job left its worker slot: tell the daemon (never with a job mutex held)."""
        if self.on_slot_free is not None:
            self.on_slot_free()

    def finish(self, aj: Active) -> None:
        """The job's final state is committed (and the store unowned it): forget it."""
        if aj.where is Where.LOCKS:  # move_unlocked, inline: this runs for every job
            self.parked.discard(aj.job.id)
        aj.where = Where.DONE
        self.active.pop(aj.job.id, None)
        on_slot_free = self.on_slot_free  # slot_freed, inline: this runs for every job
        if on_slot_free is not None:
            on_slot_free()
        if self.on_finished is not None:
            self.on_finished(aj.job)


def priority_unlocked(aj: Active) -> int:
    """Where the job queues in the pool: at HIGHEST while it holds locks."""
    return priorities.HIGHEST if aj.held else aj.job.priority


def take_held_unlocked(aj: Active) -> list[str]:
    held, aj.held = aj.held, []
    return held


def first_queued(jobs: Iterable[Active]) -> float | None:
    """The ``received_at`` of the first job in ``jobs`` that waits for a worker."""
    for aj in jobs:
        if aj.where is Where.POOL and aj.job.status is OpStatus.QUEUED:
            return aj.job.received_at
    return None
