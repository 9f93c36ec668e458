"""A thread pool that runs tasks in priority order and lets tasks defer themselves.

Model
-----
A :class:`WorkerPool` owns a set of worker threads and one queue of tasks.
Every task has an integer priority: a **lower number runs first**, and tasks
of equal priority run in the order they were added (FIFO). Any int is a valid
priority here; the -20..19 scale of :mod:`jobplane.priorities` is applied by
the callers, not by the pool.

A running task may raise :class:`DeferTask` to go back into the queue, at a
new priority or its current one, **behind** the tasks already queued at that
priority. It keeps its ``task_id``, and a ``submit`` Future stays pending
until a run that does not defer. With ``delay=s`` the task is not eligible to
run for ``s`` seconds; it still counts as queued, but no worker spins on it.

Guarantees
----------
* A worker always takes the eligible task with the lowest ``(priority, seq)``
  where ``seq`` is the position the task got when it was added or deferred.
  :meth:`WorkerPool.change_priority` keeps ``seq``, so a task moved to another
  priority keeps its place in line among that priority's tasks.
* A delayed task keeps the ``seq`` it got when it deferred: once its delay is
  over, it runs before tasks of its priority added while it waited.
* A ``task_id`` names at most one queued (or delayed) task. A running task's
  id is free for a new task; if the running task then defers, the deferral
  fails like a duplicate ``add_task`` would, with ValueError.
* An exception in a task never kills a worker: a Future carries it, or, for
  ``add_task``, it is logged with its traceback.
* Shrinking the pool, pausing it or shutting it down never interrupts a
  running task.

Eligible tasks wait in one heap of ``(priority, seq, nonce, task)`` entries.
``change_priority`` pushes a new entry and leaves the old one behind (lazy
deletion): an entry is live while ``entry[3].entry is entry``, and stale ones
are dropped when they reach the top. ``nonce`` is 0, or a fresh number for
entries pushed by ``change_priority``, so every key is unique even next to
stale entries and the heap never compares two tasks (the Ganeti pool did,
and broke on a change to the priority a task already had). Delayed tasks
wait in a second heap keyed by ``(eligible_at, seq)``; a worker moves them
to the first once the pool's clock says so.

Locking discipline
------------------
One mutex, ``_lock``, guards all pool state. Two conditions share it:
``_work_available`` (a task became eligible, or workers must re-check the
pool's state) and ``_idle`` (nothing is queued or running). Methods whose
names end in ``_unlocked`` must be called with ``_lock`` held. User code
(tasks, Future callbacks) never runs while ``_lock`` is held.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from .errors import NoSuchTask
from .priorities import check_int

__all__ = [
    "DeferTask",
    "NoSuchTask",
    "PoolStatistics",
    "WorkerPool",
    "WorkerState",
    "current_priority",
]

logger = logging.getLogger(__name__)

R = TypeVar("R")
Entry = tuple[int, int, int, "_Task"]

_local = threading.local()
_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop

# Outcomes of one run of a task (a DeferTask instance is the fourth kind).
_OK: Final = object()
_FAILED: Final = object()
_CANCELLED: Final = object()

_SPINS: Final = 100  # see _acquire


class DeferTask(Exception):
    """Raised by a running task to put itself back in the pool's queue.

    Args:
        priority: the priority to queue at; None keeps the task's current one.
        delay: seconds before the task may run again; None or 0 for no delay.

    Raises:
        TypeError: ``priority`` is not an int.
        ValueError: ``delay`` is not a finite, non-negative number.
    """

    def __init__(self, priority: int | None = None, delay: float | None = None) -> None:
        if priority is not None:
            check_int(priority)
        if delay is not None and (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise ValueError(f"delay must be None or a non-negative number, not {delay!r}")
        super().__init__(priority, delay)
        self.priority = priority
        self.delay = delay


@dataclass(frozen=True)
class PoolStatistics:
    """A snapshot of a pool. ``completed``, ``deferred`` and ``failed`` are running totals.

    ``queued`` includes delayed tasks; ``queued_by_priority`` maps each priority
    to its number of queued tasks. ``completed`` counts tasks that finished
    (returned or raised); ``failed`` counts those of them that raised;
    ``deferred`` counts ``DeferTask`` raises.
    """

    workers: int
    running: int
    queued: int
    queued_by_priority: dict[int, int]
    completed: int
    deferred: int
    failed: int


@dataclass(frozen=True)
class WorkerState:
    """One worker thread: its name and the id of the task it runs (``busy`` False: idle)."""

    name: str
    busy: bool
    task_id: Hashable | None = None


def current_priority() -> int | None:
    """The priority of the task running in this thread, or None outside a pool task."""
    task: _Task | None = getattr(_local, "task", None)
    return None if task is None else task.priority


class _Task:
    __slots__ = (
        "args",
        "delayed",
        "entry",
        "fn",
        "fresh",
        "future",
        "kwargs",
        "name",
        "priority",
        "seq",
        "task_id",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        future: Future[Any] | None,
        priority: int,
        task_id: Hashable | None,
        name: str | None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.future = future
        self.priority = priority
        self.task_id = task_id
        self.name = name
        self.fresh = True  # its Future has not been marked running yet
        self.delayed = False  # waiting in the delayed heap
        self.entry: Entry | None = None  # its live entry in the ready heap
        self.seq = 0


class WorkerPool:
    """Runs tasks on ``num_workers`` threads, lowest priority number first, FIFO within one.

    Threads start at once and are named ``jobplane-<name>-<n>`` (``n`` is never
    reused). Use it as a context manager, or call :meth:`shutdown`. ``clock`` is
    used for deferral delays only; condition waits use real time.
    """

    def __init__(
        self,
        num_workers: int = 4,
        name: str = "worker",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_workers(num_workers)
        self._name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._work_available = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._ready: list[Entry] = []
        self._delayed: list[tuple[float, int, _Task]] = []
        self._by_id: dict[Hashable, _Task] = {}  # queued (and delayed) tasks with an id
        self._seq = itertools.count()
        self._nonce = itertools.count(1)
        self._thread_numbers = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._busy: dict[threading.Thread, tuple[str, _Task]] = {}  # worker: (name, its task)
        self._target = num_workers
        self._waiting = 0  # workers blocked on _work_available
        self._idle_waiters = 0  # threads blocked in wait_idle
        self._queued = 0  # live ready entries + delayed tasks
        self._stale = 0  # stale ready entries
        self._running = self._completed = self._deferred = self._failed = 0
        self._paused = self._shutdown = self._cancelling = False
        with self._lock:
            for _ in range(num_workers):
                self._start_worker_unlocked()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)

    # -- adding and moving tasks ------------------------------------------------

    def submit(
        self,
        fn: Callable[..., R],
        /,
        *args: Any,
        priority: int = 0,
        task_id: Hashable | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> Future[R]:
        """Queue ``fn(*args, **kwargs)``; the Future gets its result or exception.

        Raises:
            TypeError: ``priority`` is not an int.
            ValueError: ``task_id`` already names a queued (or deferred) task.
            RuntimeError: the pool is shut down.
        """
        if type(priority) is not int:
            check_int(priority)
        future: Future[R] = Future()
        self._enqueue(_Task(fn, args, kwargs, future, priority, task_id, name))
        return future

    def add_task(
        self,
        fn: Callable[..., object],
        /,
        *args: Any,
        priority: int = 0,
        task_id: Hashable | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Queue ``fn(*args, **kwargs)`` without a Future; an exception is logged.

        Raises the same errors as :meth:`submit`.
        """
        if type(priority) is not int:
            check_int(priority)
        self._enqueue(_Task(fn, args, kwargs, None, priority, task_id, name))

    def add_tasks(self, fn: Callable[[Any], object], tasks: Sequence[tuple[Hashable, int]]) -> None:
        """Queue ``fn(task_id)`` at ``priority`` for each ``(task_id, priority)``, under one lock.

        Each task's id is its ``task_id`` (as in :meth:`add_task`). All or
        none: a duplicate id, or a pool shut down, queues none of them.

        Raises:
            TypeError: a priority is not an int.
            ValueError: a task id is already in the pool, or twice in ``tasks``.
            RuntimeError: the pool is shut down.
        """
        for task_id, priority in tasks:
            if type(priority) is not int:
                check_int(priority)
            if task_id is None:
                raise ValueError("add_tasks needs a task id for each task")
        with self._lock:
            if self._shutdown:
                raise RuntimeError("pool is shut down")
            by_id = self._by_id
            ids = {task_id for task_id, _ in tasks}
            if len(ids) != len(tasks) or not by_id.keys().isdisjoint(ids):
                raise ValueError("a task id is already in the pool, or given twice")
            ready, seqs = self._ready, self._seq
            for task_id, priority in tasks:
                task = _Task(fn, (task_id,), {}, None, priority, task_id, None)
                by_id[task_id] = task
                seq = task.seq = next(seqs)
                entry = task.entry = (priority, seq, 0, task)
                _heappush(ready, entry)
            self._queued += len(tasks)
            if self._waiting and not self._paused:
                self._work_available.notify(len(tasks))

    def _enqueue(self, task: _Task) -> None:
        _acquire(self._lock)
        try:
            if self._shutdown:
                raise RuntimeError("pool is shut down")
            if task.task_id is not None:
                if task.task_id in self._by_id:
                    raise ValueError(f"task id {task.task_id!r} is already in the pool")
                self._by_id[task.task_id] = task
            seq = task.seq = next(self._seq)
            entry = task.entry = (task.priority, seq, 0, task)
            _heappush(self._ready, entry)
            self._queued += 1
            if self._waiting and not self._paused:
                self._work_available.notify()
        finally:
            self._lock.release()

    def change_priority(self, task_id: Hashable, priority: int) -> None:
        """Move a queued (or delayed) task to ``priority``, keeping its place in line.

        Raises:
            TypeError: ``priority`` is not an int.
            NoSuchTask: no queued task has this id (unknown, running or finished).
        """
        if type(priority) is not int:
            check_int(priority)
        with self._lock:
            task = self._by_id.get(task_id)
            if task is None:
                raise NoSuchTask(f"no queued task has id {task_id!r}")
            if task.delayed or priority == task.priority:
                task.priority = priority
                return
            task.priority = priority
            task.entry = (priority, task.seq, next(self._nonce), task)
            _heappush(self._ready, task.entry)
            self._stale += 1
            if self._stale > 64 and self._stale * 2 > len(self._ready):
                self._ready[:] = [entry for entry in self._ready if entry[3].entry is entry]
                heapq.heapify(self._ready)
                self._stale = 0

    def remove(self, task_id: Hashable) -> bool:
        """Take a queued (not delayed) task out of the pool; False if there is none.

        The task never runs; a running, delayed or finished task is left alone.
        """
        with self._lock:
            task = self._by_id.get(task_id)
            if task is None or task.delayed or task.entry is None:
                return False
            del self._by_id[task_id]
            task.entry = None  # its heap entry is stale from now on
            self._queued -= 1
            self._stale += 1
            if self._idle_waiters and not self._running and not self._queued:
                self._idle.notify_all()
            return True

    # -- controlling the pool ---------------------------------------------------

    def pause(self) -> None:
        """Start no more tasks until :meth:`resume`; running tasks finish."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("pool is shut down")
            self._paused = True

    def resume(self) -> None:
        """Start taking tasks off the queue again."""
        with self._lock:
            self._paused = False
            self._work_available.notify_all()

    def resize(self, num_workers: int) -> None:
        """Grow at once, or shrink as workers finish their current task.

        Raises:
            ValueError: ``num_workers`` is less than 1.
            RuntimeError: the pool is shut down.
        """
        _check_workers(num_workers)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("pool is shut down")
            self._target = num_workers
            for _ in range(num_workers - len(self._threads)):
                self._start_worker_unlocked()
            self._work_available.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued (delayed included) or running.

        Do not call it from a task of this pool: it would wait for itself.

        Returns:
            True once the pool is idle, False if ``timeout`` seconds passed first.
        """
        with self._lock:
            self._idle_waiters += 1
            try:
                return self._idle.wait_for(lambda: not (self._queued or self._running), timeout)
            finally:
                self._idle_waiters -= 1

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Refuse new tasks; workers exit once the queue is empty.

        Queued tasks still run (delayed ones once their delay is over; a paused
        pool resumes), and a task that defers meanwhile runs again. With
        ``cancel_pending`` queued tasks are dropped instead: their Futures are
        cancelled (a deferred task's Future, already running, gets a
        CancelledError), and so is a task that defers from now on.

        Args:
            wait: join the worker threads before returning.
            cancel_pending: drop queued tasks instead of running them.
        """
        doomed: list[Future[Any]] = []
        with self._lock:
            self._shutdown = True
            self._paused = False
            if cancel_pending:
                self._cancelling = True
                doomed = self._drain_unlocked()
            self._work_available.notify_all()
            threads = list(self._threads)
        for future in doomed:
            _cancel(future)
        if wait:
            me = threading.current_thread()
            for thread in threads:
                if thread is not me:
                    thread.join()

    def statistics(self) -> PoolStatistics:
        """A consistent snapshot of the pool's state and running totals."""
        with self._lock:
            by_priority: dict[int, int] = {}
            for task in self._queued_tasks_unlocked():
                by_priority[task.priority] = by_priority.get(task.priority, 0) + 1
            return PoolStatistics(
                workers=len(self._threads),
                running=self._running,
                queued=self._queued,
                queued_by_priority=dict(sorted(by_priority.items())),
                completed=self._completed,
                deferred=self._deferred,
                failed=self._failed,
            )

    def worker_states(self) -> list[WorkerState]:
        """Every worker, in the order they started, with the task each runs now."""
        with self._lock:
            states = []
            for thread in self._threads:
                busy = self._busy.get(thread)
                if busy is None:  # an idle worker has its own name (see _run)
                    states.append(WorkerState(thread.name, False))
                else:
                    states.append(WorkerState(busy[0], True, busy[1].task_id))
            return states

    # -- the workers --------------------------------------------------------------

    def _start_worker_unlocked(self) -> None:
        name = f"jobplane-{self._name}-{next(self._thread_numbers)}"
        thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        thread = threading.current_thread()
        base_name = thread.name
        lock = self._lock
        task: _Task | None = None
        outcome: object = None
        while True:
            finished, error = task, None
            _acquire(lock)
            try:
                if finished is not None:
                    del self._busy[thread]
                    error = self._finish_unlocked(finished, outcome)
                task = self._take_unlocked(thread)
                if task is not None:
                    self._busy[thread] = (base_name, task)
            finally:
                lock.release()
            # a dropped add_task task (CancelledError, no Future) is not worth a log line
            if (
                finished is not None
                and error is not None
                and (finished.future is not None or not isinstance(error, CancelledError))
            ):
                _report(finished, error)
            if task is None:
                return
            try:
                outcome = self._run(task, thread, base_name)
            except BaseException:  # _run catches the task's errors: only a misused Future
                logger.exception("worker %s could not run or report a task", base_name)
                outcome = _FAILED

    def _take_unlocked(self, thread: threading.Thread) -> _Task | None:
        """The next task to run, waiting for one; None when this worker must exit."""
        ready = self._ready
        while True:
            if len(self._threads) > self._target:
                self._threads.remove(thread)
                if self._queued and self._waiting:
                    self._work_available.notify()  # hand over any work we would have taken
                return None
            if not self._paused:
                if self._delayed:
                    self._promote_unlocked()
                while ready:
                    entry = _heappop(ready)
                    task = entry[3]
                    if task.entry is entry:
                        task.entry = None
                        if task.task_id is not None:
                            del self._by_id[task.task_id]
                        self._queued -= 1
                        self._running += 1
                        return task
                    self._stale -= 1
                if self._shutdown and not self._delayed:
                    self._threads.remove(thread)
                    return None
            timeout = None
            if self._delayed and not self._paused:
                timeout = max(0.0, self._delayed[0][0] - self._clock())
            self._waiting += 1
            try:
                self._work_available.wait(timeout)
            finally:
                self._waiting -= 1

    def _promote_unlocked(self) -> None:
        """Move delayed tasks whose delay is over into the ready heap."""
        delayed = self._delayed
        now = self._clock()
        while delayed and delayed[0][0] <= now:
            _, seq, task = _heappop(delayed)
            task.delayed = False
            task.entry = (task.priority, seq, 0, task)
            _heappush(self._ready, task.entry)

    def _run(self, task: _Task, thread: threading.Thread, base_name: str) -> object:
        """Run ``task`` once (no lock held) and say how it ended."""
        future = task.future
        if future is not None and task.fresh:
            task.fresh = False
            if not future.set_running_or_notify_cancel():
                return _CANCELLED
        _local.task = task
        if task.name is not None:
            thread.name = f"{base_name}:{task.name}"
        error: BaseException | None = None
        try:
            result = task.fn(*task.args, **task.kwargs)
        except DeferTask as defer:
            return defer
        except BaseException as exc:
            error = exc
        finally:
            _local.task = None
            if task.name is not None:
                thread.name = base_name
        if error is None:
            if future is not None:
                future.set_result(result)
            return _OK
        _report(task, error)
        return _FAILED

    def _finish_unlocked(self, task: _Task, outcome: object) -> BaseException | None:
        """Account for a run of ``task``; re-queue it if it deferred.

        Returns an error to report for ``task`` once the lock is released: a
        CancelledError when a deferring task is dropped, a ValueError when its
        id was taken while it ran.
        """
        self._running -= 1
        error: BaseException | None = None
        if outcome is _OK:
            self._completed += 1
        elif outcome is _FAILED:
            self._completed += 1
            self._failed += 1
        elif isinstance(outcome, DeferTask):
            self._deferred += 1
            if self._cancelling:
                error = CancelledError("the pool shut down before the task ran again")
            elif task.task_id is not None and task.task_id in self._by_id:
                error = ValueError(f"task id {task.task_id!r} was taken while the task ran")
                self._completed += 1
                self._failed += 1
            else:
                self._requeue_unlocked(task, outcome)
                return None
        if self._idle_waiters and not (self._queued or self._running):
            self._idle.notify_all()
        return error

    def _requeue_unlocked(self, task: _Task, defer: DeferTask) -> None:
        if task.task_id is not None:
            self._by_id[task.task_id] = task
        if defer.priority is not None:
            task.priority = defer.priority
        seq = task.seq = next(self._seq)
        self._queued += 1
        if defer.delay:
            task.delayed = True
            _heappush(self._delayed, (self._clock() + defer.delay, seq, task))
        else:
            task.entry = (task.priority, seq, 0, task)
            _heappush(self._ready, task.entry)

    def _queued_tasks_unlocked(self) -> list[_Task]:
        tasks = [entry[3] for entry in self._ready if entry[3].entry is entry]
        tasks.extend(task for _, _, task in self._delayed)
        return tasks

    def _drain_unlocked(self) -> list[Future[Any]]:
        """Empty the queue; return the Futures of the dropped tasks."""
        tasks = self._queued_tasks_unlocked()
        self._ready.clear()
        self._delayed.clear()
        self._queued = self._stale = 0
        for task in tasks:
            task.entry = None
            task.delayed = False
            if task.task_id is not None:
                del self._by_id[task.task_id]
        if self._idle_waiters and not self._running:
            self._idle.notify_all()
        return [task.future for task in tasks if task.future is not None]


def _acquire(lock: threading.Lock) -> None:
    """Take ``lock``, yielding the processor while it is busy instead of queueing on it.

    Under the GIL, a thread that blocks in ``Lock.acquire`` is handed the lock
    on release while it does not hold the GIL; the releaser then blocks on its
    next acquire, and so on: every task becomes a context switch (a lock
    convoy, which made four workers 2-4x slower than one). Retrying after
    ``time.sleep(0)`` lets the holder finish its (short) critical section
    instead. After many retries we block, so a long holder costs no CPU.
    """
    if lock.acquire(False):
        return
    for _ in range(_SPINS):
        time.sleep(0)
        if lock.acquire(False):
            return
    lock.acquire()


def _report(task: _Task, error: BaseException) -> None:
    """Hand a task's error to its Future, or log it with its traceback."""
    if task.future is not None:
        task.future.set_exception(error)
    else:
        logger.error(
            "task %s failed",
            task.name or getattr(task.fn, "__qualname__", task.fn),
            exc_info=error,
            extra={"task_id": task.task_id},
        )


def _cancel(future: Future[Any]) -> None:
    """Cancel a Future; one already running (its task deferred) gets a CancelledError."""
    if not future.cancel():
        future.set_exception(CancelledError("the pool shut down before the task ran again"))


def _check_workers(num_workers: int) -> None:
    check_int(num_workers, "num_workers")
    if num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, not {num_workers}")
