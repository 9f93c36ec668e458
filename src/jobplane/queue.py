"""JobQueue: the public face of jobplane embedded in a Python process.

::

    with JobQueue.open("sqlite:///jobs.db", registry=registry, workers=8) as q:
        jid = q.submit([{"op": "test.delay", "params": {"duration": 0.5}}], priority="high")
        q.wait(jid, timeout=10)

Every accepted job is committed to the store before ``submit`` returns, so
none is lost if the process dies. The queue *pulls*: it claims from the
store only the jobs it can start soon (free workers plus ``prefetch``) in
the store's schedule order, and on the next open it takes back what the
previous daemon held, under the crash rules (see ``docs/jobs.md`` and
``docs/design/engine.md``). Cancel, priority changes and waits are safe
from any thread.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from . import __version__, priorities
from .activity import OpRun
from .engine.control import CANCEL_WAIT_S, Control
from .engine.intake import Intake
from .engine.processor import Processor
from .engine.state import Observer
from .errors import (
    DependencyError,
    InvalidPriority,
    JobplaneError,
    JobStateError,
    ShuttingDown,
    StoreError,
    ValidationError,
    WaitTimeout,
)
from .explain import Explanation, JobSnapshot
from .explain import explain as explain_job
from .jobs import (
    FINAL,
    MAX_ID,
    Dependency,
    Job,
    LogEntry,
    OpState,
    OpStatus,
    json_error,
)
from .locking import DEFAULT_LOCK_TIMEOUTS, LockInfo, LockManager, LockTimeouts
from .operations import Registry
from .stores import DEFAULT_URL, Durability, Store, Unreadable, open_store
from .timers import Timers, TimerThread
from .workerpool import WorkerPool

logger = logging.getLogger(__name__)

DEFAULT_MAX_JOBS = 100_000
MAX_WAIT = 30.0
MAX_OP_SEARCH = 200


@dataclass(frozen=True, slots=True)
class JobChange:
    """What ``wait_for_change`` saw: the job now, and its log lines after the given serial."""

    job: Job
    log: list[LogEntry]


class JobWatch:
    """What one waiter has seen of a job: a log serial, and a status.

    Each :meth:`look` reads the job once and says whether it changed since: a
    log line above the serial, or a status other than the known one. Without
    a known status, the job as the first look finds it is the baseline (its
    status and each op's). Used by ``wait_for_change`` here and by the HTTP
    layer's asynchronous waits; make one with :meth:`JobQueue.watch`.
    """

    def __init__(
        self, store: Store, job_id: int, since_log_serial: int, since_status: OpStatus | None
    ) -> None:
        self.job_id = job_id
        self._store = store
        self._serial = since_log_serial
        self._status = since_status
        self._base: tuple[OpStatus, tuple[OpStatus, ...]] | None = None

    def look(self) -> tuple[Job, JobChange | None]:
        """The job now, and the change if there is one. Raises JobNotFound."""
        job = self._store.load(self.job_id)
        log = self._store.read_log(self.job_id, self._serial)
        if not (log or self._changed(job)):
            return job, None
        job.log = self._store.read_log(self.job_id)
        return job, JobChange(job, log)

    def last_look(self) -> tuple[Job, JobChange | None]:
        """Like :meth:`look`, in one read, and the job always has its whole log."""
        job = self._store.load(self.job_id, with_log=True)
        log = [entry for entry in job.log if entry.serial > self._serial]
        return job, JobChange(job, log) if log or self._changed(job) else None

    def _changed(self, job: Job) -> bool:
        if self._status is not None:
            return job.status is not self._status
        if self._base is None:
            self._base = _fingerprint(job)
        return _fingerprint(job) != self._base


@dataclass(frozen=True, slots=True)
class QueueStatus:
    workers: int
    running_ops: int
    jobs_by_status: dict[str, int]
    jobs_by_priority: dict[int, int]
    drained: bool
    version: str = __version__


class JobQueue:
    """A persistent priority job queue: a store, a worker pool, a lock manager.

    The queue claims from the store only what it can start soon: ``workers``
    plus ``prefetch`` (default ``16 * workers``, claimed in batches of half
    that) jobs that run or wait for a
    worker, and jobs parked in lock waits up to ``max_parked`` (default
    ``20 * workers``; at the cap it claims nothing new until one of them is
    granted, times out or ends). ``lease_s`` (default the store's, 15 s) and
    ``heartbeat_s`` (default a third of it) are its lease in the store.
    ``locks``: a lock manager shared with other queues on the same store
    (tests of several daemons); lock owners are then ``(daemon id, job id)``.
    ``cancel_wait`` (default 1 s): how long ``cancel`` of a job another daemon
    holds, whose op has not started, waits for that daemon to end it.
    """

    def __init__(
        self,
        store: Store,
        registry: Registry | None = None,
        *,
        workers: int = 8,
        lock_timeouts: LockTimeouts | tuple[float, float, float] = DEFAULT_LOCK_TIMEOUTS,
        aging_interval: float = 60.0,
        max_jobs: int | None = DEFAULT_MAX_JOBS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        timers: Timers | None = None,
        start: bool = True,
        prefetch: int | None = None,
        max_parked: int | None = None,
        lease_s: float | None = None,
        heartbeat_s: float | None = None,
        locks: LockManager | None = None,
        cancel_wait: float = CANCEL_WAIT_S,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValidationError(f"workers must be a positive integer, not {workers!r}")
        if aging_interval < 0:
            raise ValidationError("aging_interval must be >= 0 seconds (0 disables aging)")
        if max_jobs is not None and max_jobs < 1:
            raise ValidationError("max_jobs must be a positive integer or None")
        prefetch = 16 * workers if prefetch is None else prefetch
        max_parked = 20 * workers if max_parked is None else max_parked
        for what, value in (("prefetch", prefetch), ("max_parked", max_parked)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"{what} must be an integer >= 0, not {value!r}")
        if heartbeat_s is not None and not heartbeat_s > 0:
            raise ValidationError(f"heartbeat_s must be a positive number, not {heartbeat_s!r}")
        if lease_s is not None:
            store.configure(lease_s=lease_s)
        if not isinstance(lock_timeouts, LockTimeouts):
            try:
                lock_timeouts = LockTimeouts(*lock_timeouts)
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"invalid lock timeouts: {exc}") from None
        self.store = store
        self.registry = registry or Registry()
        self.max_jobs = max_jobs
        self._wall = wall
        self._closed = False
        self._stopping = False
        self._watch_mutex = threading.Lock()
        self._watchers: dict[int, list[threading.Event]] = {}
        # A lock manager shared by several queues stands for the elected lock
        # scheduler of several daemons (docs/design/engine.md); one of its own otherwise.
        self._owns_locks = locks is None
        self.locks = locks if locks is not None else LockManager(levels=self.registry.levels)
        self.pool = WorkerPool(num_workers=workers, name="jobs")
        if not start:
            self.pool.pause()
        # Lock-attempt timeouts and store retries, on ``clock`` (jobplane.testing.ManualClock
        # is both, for tests).
        self._timers = timers if timers is not None else TimerThread("lock-timers", clock=clock)
        self.processor = Processor(
            store=store,
            registry=self.registry,
            pool=self.pool,
            locks=self.locks,
            timers=self._timers,
            lock_timeouts=lock_timeouts,
            aging_interval=aging_interval,
            clock=clock,
            wall=wall,
            lock_owner=None if locks is None else _shared_lock_owner,
        )
        self._control = Control(store, self.registry, self.processor, wall, cancel_wait)
        self._intake = Intake(
            store,
            self.registry,
            self.processor,
            timers=self._timers,
            clock=clock,
            wall=wall,
            workers=workers,
            prefetch=prefetch,
            max_parked=max_parked,
            heartbeat_s=heartbeat_s,
            apply_requests=self._control.apply,
            admitted=self._control.admitted_all,
        )
        self.processor.on_slot_free = self._intake.slot_free
        store.add_listener(self._on_change)
        store.add_request_listener(self._on_request)
        self._stop_maintenance = threading.Event()
        self._recover()
        self._maintenance = threading.Thread(
            target=self._maintain, name="jobplane-maintenance", daemon=True
        )
        self._maintenance.start()

    @classmethod
    def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        registry: Registry | None = None,
        durability: Durability = "normal",
        **options: Any,
    ) -> JobQueue:
        """Open the store at ``url``, recover its unfinished jobs and start working."""
        store = open_store(url, durability=durability)
        try:
            return cls(store, registry, **options)
        except BaseException:
            store.close()
            raise

    # -- context manager ------------------------------------------------------

    def __enter__(self) -> JobQueue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def stop(self) -> None:
        """Begin to stop, at once: start no more ops, refuse submissions; running ops go on.

        What was about to start stays queued in the store, as after
        :meth:`close`; :meth:`submit` raises ``ShuttingDown``. Reads, waits,
        cancels still work. Then :meth:`wait_stopped` and :meth:`close`.
        """
        self._stopping = True
        self._intake.stop(unregister=False)
        self.pool.shutdown(wait=False, cancel_pending=True)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """After :meth:`stop`: wait until the running ops have finished and are recorded.

        Returns:
            False if ``timeout`` seconds passed first.
        """
        return self.pool.wait_idle(timeout)

    def close(self, *, wait: bool = True) -> None:
        """Stop: running ops finish and are recorded; queued jobs stay queued in the store."""
        if self._closed:
            return
        self._stopping = True
        self._closed = True
        self._stop_maintenance.set()
        self._intake.stop(unregister=False)
        self.pool.shutdown(wait=wait, cancel_pending=True)
        self.processor.shutdown()
        self._intake.stop(unregister=True)  # what it still holds is reclaimable at once
        if self._owns_locks:
            self.locks.close()
        self._timers.stop()
        self._maintenance.join(5)
        self.store.close()

    # -- submission --------------------------------------------------------------

    def submit(
        self,
        ops: Sequence[Mapping[str, Any]],
        *,
        priority: priorities.Priority | None = None,
        depends: Sequence[Any] = (),
    ) -> int:
        """Validate, commit and queue one job; return its id."""
        return self.submit_many([{"ops": ops, "priority": priority, "depends": depends}])[0]

    def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> list[int]:
        """Submit a batch atomically: all jobs are accepted or none.

        Each job is ``{"ops": [...], "priority": ..., "depends": [...]}``; a
        negative dependency ``-k`` names the job ``k`` places earlier in the batch.
        """
        self._check_open()
        if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence) or not jobs:
            raise ValidationError("a batch must be a non-empty list of jobs")
        now = self._wall()
        built = [
            self._build_job(spec, index, now, batch=len(jobs) > 1)
            for index, spec in enumerate(jobs)
        ]
        return self._intake.insert(built, self.max_jobs)

    def submit_each(self, jobs: Sequence[Mapping[str, Any]]) -> list[int | JobplaneError]:
        """Submit jobs that have nothing to do with each other: each as :meth:`submit` would.

        Each job is accepted or refused on its own, with what :meth:`submit` would
        return or raise for it alone; the accepted ones usually share one commit,
        which is the point: the HTTP layer hands over the single submits that arrive
        together. Returns, per job in order, its id or the error that refused it.
        Every returned id is committed.
        """
        self._check_open()
        now = self._wall()
        built: list[Job] = []
        refused: dict[int, JobplaneError] = {}  # by position in jobs
        for position, spec in enumerate(jobs):
            try:
                built.append(self._build_job(spec, 0, now, batch=False))
            except JobplaneError as exc:
                refused[position] = exc
        placed: list[int | JobplaneError] = []
        if built:
            try:
                placed.extend(self._intake.insert(built, self.max_jobs))
            except JobplaneError:  # which job? one at a time, as separate submits would go
                placed = [self._insert_alone(job) for job in built]
        accepted = iter(placed)
        return [refused[i] if i in refused else next(accepted) for i in range(len(jobs))]

    def _insert_alone(self, job: Job) -> int | JobplaneError:
        try:
            return self._intake.insert([job], self.max_jobs)[0]
        except JobplaneError as exc:
            return exc

    def _build_job(self, spec: Mapping[str, Any], index: int, now: float, *, batch: bool) -> Job:
        where = f"job {index}: " if batch else ""
        if not isinstance(spec, Mapping):
            raise ValidationError(f"{where}a job must be an object with 'ops'")
        unknown = set(spec) - {"ops", "priority", "depends"}
        if unknown:
            raise ValidationError(f"{where}unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        job_priority = _priority(spec.get("priority"), f"{where}priority")
        ops = spec.get("ops")
        if isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence) or not ops:
            raise ValidationError(f"{where}'ops' must be a non-empty list of ops")
        states = [self._build_op(op, f"{where}ops[{i}]", job_priority) for i, op in enumerate(ops)]
        depends = _dependencies(spec.get("depends") or (), index, where)
        return Job(id=0, ops=states, received_at=now, depends=depends)

    def _build_op(self, spec: object, where: str, job_priority: int) -> OpState:
        if not isinstance(spec, Mapping):
            raise ValidationError(f"{where}: an op must be an object with 'op' and 'params'")
        unknown = set(spec) - {"op", "params", "priority"}
        if unknown:
            raise ValidationError(
                f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}"
            )
        name = spec.get("op")
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{where}: 'op' must name a registered op")
        problem = json_error(spec.get("params"), other_types=True)
        if problem is not None:  # before the schema can turn NaN into null, say
            raise ValidationError(f"{where}.params: {problem}")
        try:
            opdef = self.registry.get(name)
            params = opdef.validate(spec.get("params"))
            self.registry.lock_needs(opdef, params)
        except ValidationError as exc:
            raise type(exc)(f"{where}: {exc}") from None
        priority = job_priority
        if spec.get("priority") is not None:
            priority = _priority(spec["priority"], f"{where}.priority")
        dumped = params.model_dump(mode="json")
        problem = json_error(dumped)
        if problem is not None:
            raise ValidationError(f"{where}.params: {problem}")
        return OpState(op=name, params=dumped, priority=priority)

    # -- reading -----------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        """The job as committed, with its log. Raises JobNotFound."""
        return self.store.load(_job_id(job_id), with_log=True)

    def list(
        self,
        *,
        status: OpStatus | str | Iterable[OpStatus | str] | None = None,
        limit: int = 100,
        after: int | None = None,
        archived: bool | None = False,
        before: int | None = None,
        newest_first: bool = False,
        priority: priorities.Priority
        | tuple[priorities.Priority, priorities.Priority]
        | None = None,
        op: str | None = None,
    ) -> builtins.list[Job]:
        """Jobs by ascending id, or descending with ``newest_first``.

        ``after`` and ``before`` page (ids above / below them); ``status``,
        ``priority`` (one priority, or an inclusive ``(from, to)`` range) and
        ``op`` (text that one op's name contains, ASCII case ignored) filter.
        """
        statuses = _statuses(status)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValidationError("limit must be an integer from 1 to 10000")
        if after is not None:
            after = _job_id(after, what="after")
        if before is not None:
            before = _job_id(before, what="before")
        if not isinstance(newest_first, bool):
            raise ValidationError("newest_first must be true or false")
        if op is not None and (not isinstance(op, str) or not 1 <= len(op) <= MAX_OP_SEARCH):
            raise ValidationError(f"op must be a text of 1 to {MAX_OP_SEARCH} characters")
        return self.store.list_jobs(
            statuses=statuses,
            archived=archived,
            after=after,
            limit=limit,
            before=before,
            newest_first=newest_first,
            priority=_priority_range(priority),
            op=op,
        )

    def watch(
        self, job_id: int, since_log_serial: int = 0, *, since_status: OpStatus | str | None = None
    ) -> JobWatch:
        """A :class:`JobWatch` of the job, its arguments checked (see ``wait_for_change``)."""
        job_id = _job_id(job_id)
        if (
            isinstance(since_log_serial, bool)
            or not isinstance(since_log_serial, int)
            or not 0 <= since_log_serial <= MAX_ID
        ):
            raise ValidationError(f"since_log_serial must be an integer from 0 to {MAX_ID}")
        status = None if since_status is None else _statuses(since_status)
        return JobWatch(self.store, job_id, since_log_serial, status[0] if status else None)

    def wait_for_change(
        self,
        job_id: int,
        since_log_serial: int = 0,
        timeout: float = MAX_WAIT,
        *,
        since_status: OpStatus | str | None = None,
    ) -> JobChange | None:
        """Block until the job's status or log changes; None after ``timeout`` (capped at 30 s).

        A change is: a log line with a serial above ``since_log_serial``, or a
        status other than ``since_status`` (default: the status when called).
        Returns at once if that is already the case; for a finished job, which
        never changes again, it returns None at once instead of waiting.
        This holds the calling thread; the HTTP daemon's waits hold none
        (``http/waits.py``).
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValidationError("timeout must be a number of seconds >= 0")
        watch = self.watch(job_id, since_log_serial, since_status=since_status)
        timeout = min(float(timeout), MAX_WAIT)
        event = threading.Event()
        with self._watch_mutex:
            self._watchers.setdefault(watch.job_id, []).append(event)
        try:
            deadline = time.monotonic() + timeout
            while True:
                job, change = watch.look()
                if change is not None:
                    return change
                remaining = deadline - time.monotonic()
                if job.is_final or remaining <= 0 or not event.wait(remaining):
                    return None
                event.clear()
        finally:
            with self._watch_mutex:
                events = self._watchers.get(watch.job_id, [])
                events.remove(event)
                if not events:
                    self._watchers.pop(watch.job_id, None)

    def wait(self, job_id: int, timeout: float | None = None) -> Job:
        """Block until the job is final and return it; WaitTimeout after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        serial = 0
        while True:
            job = self.get(job_id)
            if job.status in FINAL:
                return job
            if job.log:
                serial = job.log[-1].serial
            remaining = MAX_WAIT if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"job {job_id} did not finish within {timeout} s ({job.status})")
            self.wait_for_change(job_id, serial, min(remaining, MAX_WAIT), since_status=job.status)

    def _on_change(self, job_id: int) -> None:
        if self._control.waits:  # a cancel waits for another daemon (seldom)
            self._control.changed(job_id)
        if job_id not in self._watchers:  # the common case, without the mutex
            return
        with self._watch_mutex:
            for event in self._watchers.get(job_id, ()):
                event.set()

    def _on_request(self, job_id: int) -> None:
        self._control.heard(job_id)  # a control request for a job this daemon may hold

    # -- changing jobs -------------------------------------------------------------------

    def cancel(self, job_id: int) -> tuple[bool, str]:
        """Cancel a job: queued at once, waiting at its next turn, running if it cooperates."""
        return self._control.cancel(self._known(job_id))

    def change_priority(self, job_id: int, priority: priorities.Priority) -> tuple[bool, str]:
        """Give the job's pending ops a new priority (overrides escalation and aging)."""
        value = priorities.parse(priority)
        return self._control.change_priority(self._known(job_id), value)

    def archive(self, job_id: int) -> None:
        """Archive a finished job (it stays readable). JobStateError if it is not finished."""
        job = self.store.load(self._known(job_id))
        if job.archived:
            return
        if not job.is_final:
            raise JobStateError(f"job {job_id} is {job.status}: only finished jobs can be archived")
        self.store.archive([job.id])

    def quarantined(self, *, scan: bool = False) -> builtins.list[Unreadable]:
        """Jobs whose stored record cannot be read; they show as error (docs/stores.md).

        ``scan`` reads every record first, archived ones too, to find them all.
        """
        return self.store.quarantined(scan=scan)

    def remove_quarantined(self, job_id: int) -> None:
        """Delete a job whose stored record cannot be read; JobStateError for any other."""
        job_id = _job_id(job_id)
        if self.processor.tracked(job_id) is not None:
            raise JobStateError(
                f"job {job_id} is in this daemon's care, which writes its record again"
            )
        self.store.remove_unreadable(job_id)

    def auto_archive(self, older_than_s: float) -> builtins.list[int]:
        """Archive every finished job that ended more than ``older_than_s`` seconds ago."""
        if (
            isinstance(older_than_s, bool)
            or not isinstance(older_than_s, (int, float))
            or older_than_s < 0
        ):
            raise ValidationError("older_than must be a number of seconds >= 0")
        return self.store.archive_finished_before(self._wall() - older_than_s)

    def set_drained(self, drained: bool) -> None:
        """While drained, submissions are refused (the flag is persisted)."""
        if not isinstance(drained, bool):
            raise ValidationError("drained must be true or false")
        self.store.set_drained(drained)

    @property
    def drained(self) -> bool:
        return self.store.is_drained()

    # -- introspection -----------------------------------------------------------------------

    def status(self) -> QueueStatus:
        stats = self.pool.statistics()
        by_status: dict[str, int] = {str(s): 0 for s in OpStatus}
        by_priority: dict[int, int] = {}
        for (status, priority), count in self.store.counts().items():
            by_status[str(status)] += count
            if status not in FINAL:
                by_priority[priority] = by_priority.get(priority, 0) + count
        return QueueStatus(
            workers=stats.workers,
            running_ops=stats.running,
            jobs_by_status=by_status,
            jobs_by_priority=dict(sorted(by_priority.items())),
            drained=self.store.is_drained(),
        )

    def explain(self, job_id: int) -> Explanation:
        """Why the job is not running (or what it is doing), in plain words."""
        known = self._known(job_id)
        seen = JobSnapshot.gather(
            known, processor=self.processor, store=self.store, pool=self.pool, locks=self.locks
        )
        return explain_job(seen)

    def add_observer(self, observer: Observer) -> None:
        """Be told of op durations, lock waits and escalations (see ``engine.state.Observer``)."""
        self.processor.observers.append(observer)

    def add_run_observer(self, observer: Callable[[OpRun], None]) -> None:
        """Call ``observer(run)`` as each op run ends (on the worker thread: be quick)."""
        self.processor.run_observers.append(observer)

    def oldest_queued_age(self) -> float | None:
        """Seconds the oldest queued job has waited, or None (from the store's index)."""
        received = self.store.oldest_queued()
        return None if received is None else max(0.0, self._wall() - received)

    def lock_info(self) -> builtins.list[LockInfo]:
        """Every lock with its holders and waiters in grant order (owners are job ids)."""
        return self.locks.info()

    def run_maintenance(self) -> int:
        """One pass of periodic work; the maintenance thread calls this. Returns jobs aged.

        Ages queued jobs, and prunes the job locks nobody holds or waits for
        (they are made on demand, so without this every name ever used stays).
        """
        aged = self.processor.age()
        for level in self.locks.levels[1:]:
            self.locks.prune(level)
        return aged

    # -- internals ------------------------------------------------------------------------------

    def _known(self, job_id: int) -> int:
        job_id = _job_id(job_id)
        if self.processor.tracked(job_id) is None:
            self.store.load(job_id)  # raises JobNotFound
        return job_id

    def _check_open(self) -> None:
        if self._closed:
            raise JobStateError("the queue is closed")
        if self._stopping:
            raise ShuttingDown("the daemon is stopping: it takes no new jobs")

    def _maintain(self) -> None:
        interval = self.processor.aging_interval
        tick = min(max(interval / 4, 0.05), 5.0) if interval > 0 else 5.0
        while not self._stop_maintenance.wait(tick):
            try:
                self.run_maintenance()
            except StoreError:
                logger.exception("maintenance failed; trying again in %.1f s", tick)

    def _recover(self) -> None:
        """Take back what the previous daemon held, under the crash rules, and claim work.

        See :mod:`jobplane.engine.intake` and docs/jobs.md.
        """
        self._intake.open()


def _shared_lock_owner(job: Job) -> tuple[int | None, int]:
    """Lock owners in a lock manager shared by daemons: a job held by two is two owners."""
    return job.owner, job.id


def _fingerprint(job: Job) -> tuple[OpStatus, tuple[OpStatus, ...]]:
    return job.status, tuple(op.status for op in job.ops)


def _priority(value: object, where: str) -> int:
    if value is None:
        return priorities.DEFAULT
    try:
        return priorities.parse(value)
    except ValidationError as exc:
        raise type(exc)(f"{where}: {exc}") from None


def _priority_range(value: object) -> tuple[int, int] | None:
    """``None``, one priority, or an inclusive ``(from, to)`` pair, as a pair of ints."""
    if value is None:
        return None
    if isinstance(value, tuple):
        if len(value) != 2:
            raise InvalidPriority("a priority range is a pair (from, to)")
        lowest, highest = (priorities.parse(v) for v in value)
        if lowest > highest:
            raise InvalidPriority(
                f"priority range {lowest}..{highest} is empty: give the lower number first"
            )
        return lowest, highest
    single = priorities.parse(value)
    return single, single


def _job_id(value: object, what: str = "job id") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValidationError(f"{what} must be an integer from 1 to {MAX_ID}, not {value!r}")
    return value


def _statuses(value: object) -> list[OpStatus] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, (str, OpStatus)) else value
    if not isinstance(items, Iterable):
        raise ValidationError("status must be a status name or a list of them")
    result = []
    for item in items:
        try:
            result.append(OpStatus(item))
        except ValueError:
            known = ", ".join(s.value for s in OpStatus)
            raise ValidationError(f"unknown status {item!r}; statuses are {known}") from None
    return result


def _dependencies(value: object, index: int, where: str) -> tuple[Dependency, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValidationError(f"{where}'depends' must be a list")
    deps = []
    for item in value:
        if isinstance(item, Mapping):
            job, statuses = item.get("job"), item.get("statuses", ["success"])
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
            job, statuses = item
        else:
            raise ValidationError(
                f"{where}a dependency is (job_id, [statuses]) or {{'job', 'statuses'}}"
            )
        if isinstance(job, bool) or not isinstance(job, int) or job == 0 or abs(job) > MAX_ID:
            raise DependencyError(
                f"{where}dependency job id must be a non-zero integer, not {job!r}"
            )
        if job < 0 and -job > index:
            raise DependencyError(
                f"{where}dependency {job} points before the start of the batch"
                if index
                else f"{where}negative dependency {job} is only valid for a later job in a batch"
            )
        if isinstance(statuses, (str, bytes)) or not isinstance(statuses, Sequence):
            raise ValidationError(f"{where}dependency statuses must be a list")
        parsed = []
        for status in statuses:
            try:
                final = OpStatus(status)
            except ValueError:
                final = None
            if final not in FINAL:
                raise ValidationError(
                    f"{where}dependency status {status!r} is not a final status "
                    "(success, error, canceled)"
                )
            parsed.append(final)
        deps.append(Dependency(job, tuple(parsed)))
    return tuple(deps)
