"""The worker pool: ordering, deferral, task ids, failures, pause, resize, shutdown.

Ordering tests pause the pool, queue everything, then resume with one worker,
so the order is exact and deterministic. No test sleeps to synchronise: they
wait on events with timeouts. A few tests check that something does *not*
happen by waiting a short, bounded time for it; those can only fail if the
pool misbehaves.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from typing import Any

import pytest

from jobplane.errors import JobplaneError
from jobplane.workerpool import (
    DeferTask,
    NoSuchTask,
    PoolStatistics,
    WorkerPool,
    WorkerState,
    current_priority,
)

TIMEOUT = 10.0  # generous bound for every wait that must succeed
BRIEF = 0.2  # how long we give the pool to do something it must not do


class FakeClock:
    """A clock the test moves by hand; thread-safe."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class Recorder:
    """Collects what tasks did, in order, from any thread."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self._lock:
            self.items.append(item)

    def task(self, label: Any) -> Callable[[], None]:
        return lambda: self.add(label)


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(1, name="test") as pool:
        yield pool


def run_paused(pool: WorkerPool, fill: Callable[[], None]) -> None:
    """Queue tasks with ``fill`` while paused, then let them all run."""
    pool.pause()
    fill()
    pool.resume()
    assert pool.wait_idle(TIMEOUT)


def blocker(pool: WorkerPool, **kwargs: Any) -> tuple[threading.Event, threading.Event]:
    """Occupy one worker until ``release`` is set; ``started`` says it is running."""
    started, release = threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        assert release.wait(TIMEOUT)

    pool.add_task(block, **kwargs)
    assert started.wait(TIMEOUT)
    return started, release


# -- 1. ordering -------------------------------------------------------------------


def test_lower_priority_number_runs_first(pool: WorkerPool) -> None:
    rec = Recorder()
    priorities = [5, -3, 0, 19, -20, 7, 100, -1000]

    def fill() -> None:
        for priority in priorities:
            pool.add_task(rec.task(priority), priority=priority)

    run_paused(pool, fill)
    assert rec.items == sorted(priorities)


def test_equal_priority_runs_fifo(pool: WorkerPool) -> None:
    rec = Recorder()

    def fill() -> None:
        for i in range(20):
            pool.add_task(rec.task((i % 2, i)), priority=i % 2)

    run_paused(pool, fill)
    assert rec.items == [(0, i) for i in range(0, 20, 2)] + [(1, i) for i in range(1, 20, 2)]


def test_submit_and_add_task_share_one_order(pool: WorkerPool) -> None:
    rec = Recorder()

    def fill() -> None:
        pool.submit(rec.add, "submit-1", priority=1)
        pool.add_task(rec.add, "add-0", priority=0)
        pool.submit(rec.add, "submit-0", priority=0)

    run_paused(pool, fill)
    assert rec.items == ["add-0", "submit-0", "submit-1"]


@pytest.mark.parametrize("bad", [True, False, 1.0, "1", None, 1 + 0j])
def test_priority_must_be_an_int(pool: WorkerPool, bad: Any) -> None:
    with pytest.raises(TypeError):
        pool.submit(print, priority=bad)
    with pytest.raises(TypeError):
        pool.add_task(print, priority=bad)
    with pytest.raises(TypeError):
        pool.change_priority("x", bad)
    if bad is not None:
        with pytest.raises(TypeError):
            DeferTask(priority=bad)
    assert pool.statistics().queued == 0


def test_any_int_is_a_priority_the_pool_does_not_clamp(pool: WorkerPool) -> None:
    rec = Recorder()
    huge = 10**30

    def fill() -> None:
        pool.add_task(rec.task("huge"), priority=huge)
        pool.add_task(rec.task("tiny"), priority=-huge)

    run_paused(pool, fill)
    assert rec.items == ["tiny", "huge"]


# -- 2. current_priority -------------------------------------------------------------


def test_current_priority_is_none_outside_a_task() -> None:
    assert current_priority() is None


def test_current_priority_is_each_running_tasks_own() -> None:
    both_running = threading.Barrier(2, timeout=TIMEOUT)

    def report() -> int | None:
        both_running.wait()  # both tasks run at once, on two threads
        seen = current_priority()
        both_running.wait()
        return seen

    with WorkerPool(2, name="cp") as pool:
        low = pool.submit(report, priority=7)
        high = pool.submit(report, priority=-7)
        assert low.result(TIMEOUT) == 7
        assert high.result(TIMEOUT) == -7
        # and it is reset once the task is over (a Future callback runs in the worker)
        pool.pause()
        after = pool.submit(threading.current_thread, priority=3)
        seen_in_callback: list[tuple[threading.Thread, int | None]] = []
        after.add_done_callback(
            lambda _: seen_in_callback.append((threading.current_thread(), current_priority()))
        )
        pool.resume()
        worker = after.result(TIMEOUT)
        assert seen_in_callback == [(worker, None)]
    assert current_priority() is None


# -- 3. deferral ----------------------------------------------------------------------


def test_deferred_task_requeued_behind_tasks_of_its_priority(pool: WorkerPool) -> None:
    rec = Recorder()
    runs = {"a": 0}

    def a() -> None:
        runs["a"] += 1
        rec.add(("a", runs["a"], current_priority()))
        if runs["a"] == 1:
            raise DeferTask()

    def fill() -> None:
        pool.add_task(a, priority=3)
        pool.add_task(rec.task("b"), priority=3)
        pool.add_task(rec.task("c"), priority=3)
        pool.add_task(rec.task("d"), priority=4)

    run_paused(pool, fill)
    assert rec.items == [("a", 1, 3), "b", "c", ("a", 2, 3), "d"]


def test_deferred_task_requeued_at_its_new_priority(pool: WorkerPool) -> None:
    rec = Recorder()
    runs = {"a": 0}

    def a() -> None:
        runs["a"] += 1
        rec.add(("a", current_priority()))
        if runs["a"] == 1:
            raise DeferTask(priority=5)

    def fill() -> None:
        pool.add_task(a, priority=0)
        pool.add_task(rec.task("p1"), priority=1)
        pool.add_task(rec.task("p5"), priority=5)
        pool.add_task(rec.task("p6"), priority=6)

    run_paused(pool, fill)
    assert rec.items == [("a", 0), "p1", "p5", ("a", 5), "p6"]


def test_deferral_to_a_higher_priority_runs_again_first(pool: WorkerPool) -> None:
    rec = Recorder()
    runs = {"a": 0}

    def a() -> None:
        runs["a"] += 1
        rec.add(("a", current_priority()))
        if runs["a"] == 1:
            raise DeferTask(priority=-1)

    def fill() -> None:
        pool.add_task(a, priority=0)
        pool.add_task(rec.task("b"), priority=0)

    run_paused(pool, fill)
    assert rec.items == [("a", 0), ("a", -1), "b"]


def test_future_stays_pending_until_a_run_that_does_not_defer(pool: WorkerPool) -> None:
    runs: list[int] = []
    seen_done: list[bool] = []

    def task() -> str:
        runs.append(1)
        if len(runs) < 3:
            raise DeferTask(priority=1)
        return "done"

    def fill() -> None:
        future = pool.submit(task, priority=0, task_id="t")
        for _ in range(2):  # they run between the first and the second run
            pool.add_task(lambda: seen_done.append(future.done()), priority=1)
        fills.append(future)

    fills: list[Any] = []
    run_paused(pool, fill)
    assert fills[0].result(0) == "done"
    assert (len(runs), seen_done) == (3, [False, False])
    stats = pool.statistics()
    assert (stats.completed, stats.deferred, stats.failed) == (3, 2, 0)


def test_deferred_task_future_is_not_done_between_runs(pool: WorkerPool) -> None:
    deferred = threading.Event()
    runs: list[int] = []

    def task() -> int:
        runs.append(1)
        if len(runs) == 1:
            deferred.set()
            raise DeferTask(delay=3600)
        return len(runs)

    future = pool.submit(task, task_id="t")
    assert deferred.wait(TIMEOUT)
    _, release = blocker(pool)  # the single worker is busy, so the state is stable
    assert not future.done()
    assert not future.cancel()  # it has started: like any running Future
    assert pool.statistics().queued == 1
    release.set()
    pool.shutdown(wait=True, cancel_pending=True)
    with pytest.raises(CancelledError):
        future.result(TIMEOUT)


def test_delayed_task_waits_for_the_clock_while_others_run() -> None:
    clock = FakeClock()
    rec = Recorder()
    runs = {"slow": 0}
    others_done = threading.Event()

    def slow() -> None:
        runs["slow"] += 1
        rec.add(("slow", runs["slow"], clock()))
        if runs["slow"] == 1:
            raise DeferTask(delay=10)

    with WorkerPool(1, name="delay", clock=clock) as pool:
        pool.pause()
        pool.add_task(slow, priority=0, task_id="slow")
        pool.add_task(rec.task("other"), priority=5)
        pool.add_task(others_done.set, priority=6)
        pool.resume()
        assert others_done.wait(TIMEOUT)
        # the delayed task is still queued, at priority 0, and has not run again
        stats = pool.statistics()
        assert (stats.queued, stats.queued_by_priority, stats.running) == (1, {0: 1}, 0)
        assert not pool.wait_idle(BRIEF)
        assert rec.items == [("slow", 1, 1000.0), "other"]
        clock.advance(10)
        pool.add_task(rec.task("after"), priority=5)  # wakes the worker, which sees the clock
        assert pool.wait_idle(TIMEOUT)
    assert rec.items == [("slow", 1, 1000.0), "other", ("slow", 2, 1010.0), "after"]


def test_delay_holds_a_task_back_for_real_time() -> None:
    delay = 0.05
    times: list[float] = []

    def task() -> None:
        times.append(time.monotonic())
        if len(times) == 1:
            raise DeferTask(delay=delay)

    with WorkerPool(2, name="delay") as pool:
        future = pool.submit(task)
        assert future.result(TIMEOUT) is None
    assert len(times) == 2
    assert times[1] - times[0] >= delay


def test_delayed_task_keeps_its_place_in_line_and_id() -> None:
    clock = FakeClock()
    rec = Recorder()
    runs = {"a": 0}
    deferred = threading.Event()

    def a() -> None:
        runs["a"] += 1
        rec.add(("a", current_priority()))
        if runs["a"] == 1:
            raise DeferTask(delay=5)

    with WorkerPool(1, name="delay", clock=clock) as pool:
        pool.pause()
        pool.add_task(a, priority=2, task_id="a")
        pool.add_task(deferred.set, priority=3)  # one worker: a has been re-queued by then
        pool.resume()
        assert deferred.wait(TIMEOUT)
        with pytest.raises(ValueError):
            pool.add_task(print, task_id="a")  # deferred tasks keep their id
        pool.change_priority("a", 1)  # applies while delayed
        assert pool.statistics().queued_by_priority == {1: 1}
        pool.pause()
        pool.add_task(rec.task("b"), priority=1)  # added after a deferred: a goes first
        pool.add_task(rec.task("c"), priority=0)
        clock.advance(5)
        pool.resume()
        assert pool.wait_idle(TIMEOUT)
    assert rec.items == [("a", 2), "c", ("a", 1), "b"]


@pytest.mark.parametrize("delay", [-1, -0.001, math.nan, math.inf, "1", True])
def test_defer_delay_must_be_a_non_negative_number(delay: Any) -> None:
    with pytest.raises(ValueError):
        DeferTask(delay=delay)


def test_defer_task_accepts_none_and_zero() -> None:
    assert (DeferTask().priority, DeferTask().delay) == (None, None)
    defer = DeferTask(priority=-4, delay=0)
    assert (defer.priority, defer.delay) == (-4, 0)


# -- 4. task ids and change_priority ----------------------------------------------------


def test_duplicate_task_id_raises_value_error(pool: WorkerPool) -> None:
    pool.pause()
    pool.add_task(print, task_id=("queued", 1))
    with pytest.raises(ValueError):
        pool.add_task(print, task_id=("queued", 1))
    with pytest.raises(ValueError):
        pool.submit(print, task_id=("queued", 1))
    assert pool.statistics().queued == 1
    pool.resume()
    assert pool.wait_idle(TIMEOUT)
    pool.add_task(print, task_id=("queued", 1))  # finished ids are free again
    assert pool.wait_idle(TIMEOUT)


@pytest.mark.parametrize("submitted", [True, False])
def test_a_running_tasks_id_is_free_but_then_it_cannot_defer(
    pool: WorkerPool, caplog: pytest.LogCaptureFixture, submitted: bool
) -> None:
    rec = Recorder()
    started, release = threading.Event(), threading.Event()

    def first() -> None:
        started.set()
        assert release.wait(TIMEOUT)
        raise DeferTask()

    future = pool.submit(first, task_id="x") if submitted else None
    if not submitted:
        pool.add_task(first, task_id="x", name="first")
    assert started.wait(TIMEOUT)
    with pytest.raises(NoSuchTask):
        pool.change_priority("x", 1)  # running, not queued
    pool.add_task(rec.task("second"), task_id="x")  # so its id is free
    with caplog.at_level(logging.ERROR, logger="jobplane.workerpool"):
        release.set()
        assert pool.wait_idle(TIMEOUT)
    assert rec.items == ["second"]
    if future is not None:
        with pytest.raises(ValueError, match="'x' was taken"):
            future.result(0)
    else:
        [record] = [r for r in caplog.records if r.name == "jobplane.workerpool"]
        assert "first" in record.getMessage() and "'x' was taken" in caplog.text
    stats = pool.statistics()
    assert (stats.completed, stats.failed, stats.deferred) == (2, 1, 1)


def test_change_priority_moves_a_queued_task(pool: WorkerPool) -> None:
    rec = Recorder()

    def fill() -> None:
        pool.add_task(rec.task("a"), priority=0)
        pool.add_task(rec.task("b"), priority=5, task_id="b")
        pool.change_priority("b", -1)

    run_paused(pool, fill)
    assert rec.items == ["b", "a"]


def test_remove_takes_a_queued_task_out_and_it_never_runs(pool: WorkerPool) -> None:
    rec = Recorder()
    removed: list[bool] = []

    def fill() -> None:
        pool.add_task(rec.task("a"), priority=0, task_id="a")
        pool.add_task(rec.task("b"), priority=0, task_id="b")
        removed.extend([pool.remove("a"), pool.remove("a"), pool.remove("nobody")])
        pool.add_task(rec.task("a again"), priority=0, task_id="a")  # the id is free again

    run_paused(pool, fill)
    assert removed == [True, False, False]
    assert rec.items == ["b", "a again"]
    assert pool.statistics().queued == 0


def test_change_priority_keeps_the_original_fifo_position(pool: WorkerPool) -> None:
    rec = Recorder()

    def fill() -> None:
        pool.add_task(rec.task("early"), priority=9, task_id="early")
        pool.add_task(rec.task("x"), priority=5)
        pool.add_task(rec.task("y"), priority=5)
        pool.add_task(rec.task("late"), priority=9, task_id="late")
        pool.change_priority("late", 5)
        pool.change_priority("early", 5)

    run_paused(pool, fill)
    assert rec.items == ["early", "x", "y", "late"]


def test_change_to_the_priority_it_already_has(pool: WorkerPool) -> None:
    """The Ganeti pool broke its heap here: keys must never tie, tasks never compare."""
    rec = Recorder()

    def fill() -> None:
        for i in range(5):
            pool.add_task(rec.task(i), priority=1, task_id=i)
        for _ in range(3):
            for i in range(5):
                pool.change_priority(i, 1)  # the same priority
                pool.change_priority(i, 2)  # and back and forth: stale entries
                pool.change_priority(i, 1)  # with the very same key stay behind

    run_paused(pool, fill)
    assert rec.items == [0, 1, 2, 3, 4]


def test_many_changes_leave_the_order_intact(pool: WorkerPool) -> None:
    rec = Recorder()
    final = {i: (i * 7) % 5 for i in range(100)}

    def fill() -> None:
        for i in range(100):
            pool.add_task(rec.task(i), priority=i % 3, task_id=i)
        for round_ in range(5):
            for i in range(100):
                pool.change_priority(i, (i + round_) % 4)
        for i in range(100):
            pool.change_priority(i, final[i])

    run_paused(pool, fill)
    assert rec.items == sorted(range(100), key=lambda i: (final[i], i))


def test_change_priority_of_unknown_running_or_finished_task(pool: WorkerPool) -> None:
    with pytest.raises(NoSuchTask):
        pool.change_priority("nobody", 1)
    _, release = blocker(pool, task_id="running")
    with pytest.raises(NoSuchTask):
        pool.change_priority("running", 1)
    release.set()
    assert pool.wait_idle(TIMEOUT)
    with pytest.raises(NoSuchTask):
        pool.change_priority("running", 1)
    assert issubclass(NoSuchTask, JobplaneError)


# -- 5. failures --------------------------------------------------------------------------


def test_submit_future_carries_the_exception_and_the_worker_survives(pool: WorkerPool) -> None:
    def boom() -> None:
        raise KeyError("boom")

    failed = pool.submit(boom)
    with pytest.raises(KeyError, match="boom"):
        failed.result(TIMEOUT)
    assert pool.submit(lambda: 42).result(TIMEOUT) == 42  # the only worker still works
    stats = pool.statistics()
    assert (stats.workers, stats.completed, stats.failed) == (1, 2, 1)


def test_add_task_exception_is_logged_with_traceback(
    pool: WorkerPool, caplog: pytest.LogCaptureFixture
) -> None:
    def explode() -> None:
        raise RuntimeError("kaboom")

    with caplog.at_level(logging.ERROR, logger="jobplane.workerpool"):
        pool.add_task(explode, name="exploder", task_id="e")
        assert pool.submit(lambda: "alive").result(TIMEOUT) == "alive"
    [record] = [r for r in caplog.records if r.name == "jobplane.workerpool"]
    assert "exploder" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert "Traceback" in caplog.text and "kaboom" in caplog.text
    assert pool.statistics().failed == 1


def test_base_exception_does_not_kill_a_worker(pool: WorkerPool) -> None:
    def leave() -> None:
        raise SystemExit(3)

    future = pool.submit(leave)
    with pytest.raises(SystemExit):
        future.result(TIMEOUT)
    assert pool.submit(lambda: 1).result(TIMEOUT) == 1


def test_cancelled_future_never_runs(pool: WorkerPool) -> None:
    ran = threading.Event()
    pool.pause()
    future = pool.submit(ran.set)
    assert future.cancel()
    pool.resume()
    assert pool.wait_idle(TIMEOUT)
    assert not ran.is_set()
    stats = pool.statistics()
    assert (stats.completed, stats.failed, stats.queued) == (0, 0, 0)


# -- 6. pause, shutdown, resize, names ------------------------------------------------------


def test_pause_lets_running_tasks_finish_and_starts_none(pool: WorkerPool) -> None:
    _, release = blocker(pool)
    pool.pause()
    ran = threading.Event()
    pool.add_task(ran.set)
    release.set()  # the running task finishes while paused
    assert not pool.wait_idle(BRIEF)
    assert not ran.is_set()
    stats = pool.statistics()
    assert (stats.running, stats.queued, stats.completed) == (0, 1, 1)
    pool.resume()
    assert ran.wait(TIMEOUT)
    assert pool.wait_idle(TIMEOUT)


def test_shutdown_runs_tasks_already_queued() -> None:
    rec = Recorder()
    pool = WorkerPool(2, name="sd")
    pool.pause()  # shutdown resumes: it promises to run what is queued
    futures = [pool.submit(rec.add, i, priority=-i) for i in range(10)]
    pool.shutdown(wait=True)
    assert sorted(rec.items) == list(range(10))
    assert all(f.done() and not f.cancelled() for f in futures)
    assert pool.statistics().workers == 0
    with pytest.raises(RuntimeError, match="pool is shut down"):
        pool.submit(print)
    with pytest.raises(RuntimeError, match="pool is shut down"):
        pool.add_task(print)


def test_task_deferring_during_shutdown_runs_again() -> None:
    pool = WorkerPool(1, name="sd")
    runs: list[int] = []
    started, release = threading.Event(), threading.Event()

    def task() -> str:
        runs.append(1)
        if len(runs) == 1:
            started.set()
            assert release.wait(TIMEOUT)
            raise DeferTask(delay=0.01)
        return "again"

    future = pool.submit(task)
    assert started.wait(TIMEOUT)
    pool.shutdown(wait=False)
    release.set()
    pool.shutdown(wait=True)
    assert future.result(0) == "again"
    assert len(runs) == 2


def test_shutdown_cancel_pending_drops_what_has_not_started() -> None:
    pool = WorkerPool(1, name="sd")
    ran = Recorder()
    runs: list[int] = []

    def deferring() -> None:
        runs.append(1)
        raise DeferTask(delay=3600)

    deferred = pool.submit(deferring)
    _, release = blocker(pool)
    assert runs == [1]  # it ran once before the blocker
    queued = [pool.submit(ran.add, i) for i in range(3)]
    pool.add_task(ran.add, "dropped")
    pool.shutdown(wait=False, cancel_pending=True)
    assert all(f.cancelled() for f in queued)
    with pytest.raises(CancelledError):
        deferred.result(0)
    assert pool.statistics().queued == 0
    release.set()
    pool.shutdown(wait=True)
    assert ran.items == []
    assert runs == [1]


def test_shutdown_cancel_pending_cancels_a_task_that_defers_later() -> None:
    pool = WorkerPool(1, name="sd")
    started, release = threading.Event(), threading.Event()

    def task() -> None:
        started.set()
        assert release.wait(TIMEOUT)
        raise DeferTask()

    future = pool.submit(task)
    assert started.wait(TIMEOUT)
    pool.shutdown(wait=False, cancel_pending=True)
    release.set()
    with pytest.raises(CancelledError):
        future.result(TIMEOUT)
    pool.shutdown(wait=True)


def test_context_manager_waits_for_queued_tasks() -> None:
    done = threading.Event()
    with WorkerPool(1, name="cm") as pool:
        pool.add_task(done.set, priority=3)
        threads = [t for t in threading.enumerate() if t.name.startswith("jobplane-cm-")]
    assert done.is_set()
    assert threads and not any(t.is_alive() for t in threads)


def test_wait_idle_is_false_on_timeout_and_true_when_idle(pool: WorkerPool) -> None:
    assert pool.wait_idle(0)
    pool.pause()
    pool.add_task(print)
    assert not pool.wait_idle(0.01)
    pool.resume()
    assert pool.wait_idle(TIMEOUT)


def test_resize_grows_at_once(pool: WorkerPool) -> None:
    pool.resize(3)
    assert pool.statistics().workers == 3
    all_running = threading.Barrier(3, timeout=TIMEOUT)  # only passes if 3 run at once
    futures = [pool.submit(all_running.wait) for _ in range(3)]
    assert sorted(f.result(TIMEOUT) for f in futures) == [0, 1, 2]


def test_resize_shrinks_without_interrupting_running_tasks() -> None:
    with WorkerPool(3, name="shrink") as pool:
        all_running = threading.Barrier(4, timeout=TIMEOUT)
        release = threading.Event()

        def long_task(i: int) -> int:
            all_running.wait()
            assert release.wait(TIMEOUT)
            return i

        futures = [pool.submit(long_task, i) for i in range(3)]
        all_running.wait()
        pool.resize(1)
        assert pool.statistics().workers == 3  # nobody was interrupted
        release.set()
        assert [f.result(TIMEOUT) for f in futures] == [0, 1, 2]
        assert pool.wait_idle(TIMEOUT)
        assert pool.statistics().workers == 1
        assert pool.submit(lambda: "still works").result(TIMEOUT) == "still works"


@pytest.mark.parametrize("bad", [0, -1])
def test_worker_count_must_be_positive(pool: WorkerPool, bad: int) -> None:
    with pytest.raises(ValueError):
        WorkerPool(bad)
    with pytest.raises(ValueError):
        pool.resize(bad)
    with pytest.raises(TypeError):
        pool.resize(2.0)  # type: ignore[arg-type]


def test_threads_are_named_and_numbers_are_never_reused() -> None:
    def names_when_all_busy(pool: WorkerPool, count: int, resize_to: int | None = None) -> set[str]:
        barrier = threading.Barrier(count + 1, timeout=TIMEOUT)
        release = threading.Event()

        def task() -> str:
            barrier.wait()  # every worker runs one of these
            assert release.wait(TIMEOUT)
            return threading.current_thread().name

        futures = [pool.submit(task) for _ in range(count)]
        barrier.wait()
        if resize_to is not None:
            pool.resize(resize_to)  # while all are busy: the extra ones retire after their task
        release.set()
        return {f.result(TIMEOUT) for f in futures}

    with WorkerPool(2, name="names") as pool:
        first = names_when_all_busy(pool, 2, resize_to=1)
        assert first == {"jobplane-names-1", "jobplane-names-2"}
        assert pool.wait_idle(TIMEOUT)
        assert pool.statistics().workers == 1
        pool.resize(3)
        names = names_when_all_busy(pool, 3)
    assert len(names) == 3
    assert {"jobplane-names-3", "jobplane-names-4"} <= names  # new threads, new numbers
    assert len(names & first) == 1


def test_thread_name_shows_the_running_task_and_is_restored(pool: WorkerPool) -> None:
    def name() -> str:
        return threading.current_thread().name

    assert pool.submit(name, name="resize-disk").result(TIMEOUT) == "jobplane-test-1:resize-disk"
    assert pool.submit(name).result(TIMEOUT) == "jobplane-test-1"


def test_statistics_is_a_frozen_snapshot(pool: WorkerPool) -> None:
    pool.pause()
    for priority in (3, -1, 3):
        pool.add_task(print, priority=priority)
    stats = pool.statistics()
    assert stats == PoolStatistics(
        workers=1,
        running=0,
        queued=3,
        queued_by_priority={-1: 1, 3: 2},
        completed=0,
        deferred=0,
        failed=0,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.queued = 0  # type: ignore[misc]
    pool.resume()
    assert pool.wait_idle(TIMEOUT)
    assert pool.statistics().completed == 3


def test_worker_states_name_every_worker_and_the_task_it_runs() -> None:
    started = threading.Event()
    release = threading.Event()

    def hold() -> None:
        started.set()
        assert release.wait(TIMEOUT)

    with WorkerPool(2, name="states") as pool:
        assert pool.worker_states() == [
            WorkerState("jobplane-states-1", busy=False),
            WorkerState("jobplane-states-2", busy=False),
        ]
        done = pool.submit(hold, task_id="job-7", name="named")
        assert started.wait(TIMEOUT)
        states = pool.worker_states()
        busy = [state for state in states if state.busy]
        assert busy == [WorkerState(busy[0].name, True, "job-7")]
        assert busy[0].name in ("jobplane-states-1", "jobplane-states-2")  # not "...:named"
        assert len(states) == 2
        release.set()
        done.result(TIMEOUT)
        assert pool.wait_idle(TIMEOUT)
        assert not any(state.busy for state in pool.worker_states())


# -- add_tasks: many tasks, one lock -------------------------------------------------


def test_add_tasks_queues_each_at_its_priority_fifo_within_one(pool: WorkerPool) -> None:
    rec = Recorder()

    def fill() -> None:
        pool.add_task(rec.add, "single", priority=1)
        pool.add_tasks(rec.add, [("b", 1), ("a", 0), ("c", 1)])

    run_paused(pool, fill)
    assert rec.items == ["a", "single", "b", "c"]


def test_add_tasks_is_all_or_none(pool: WorkerPool) -> None:
    rec = Recorder()
    pool.pause()
    pool.add_task(rec.add, "x", task_id="x")
    with pytest.raises(ValueError):
        pool.add_tasks(rec.add, [("y", 0), ("x", 0)])  # "x" is queued already
    with pytest.raises(ValueError):
        pool.add_tasks(rec.add, [("z", 0), ("z", 1)])  # twice in one call
    with pytest.raises(TypeError):
        pool.add_tasks(rec.add, [("w", 0), ("v", 1.5)])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        pool.add_tasks(rec.add, [("u", 0), (None, 0)])  # every task needs an id
    pool.resume()
    assert pool.wait_idle(TIMEOUT)
    assert rec.items == ["x"]  # nothing of the refused calls ran


def test_add_tasks_ids_can_be_moved_and_removed(pool: WorkerPool) -> None:
    rec = Recorder()

    def fill() -> None:
        pool.add_tasks(rec.add, [("a", 5), ("b", 5), ("c", 5)])
        pool.change_priority("c", 0)
        pool.remove("b")

    run_paused(pool, fill)
    assert rec.items == ["c", "a"]


def test_add_tasks_after_shutdown_raises() -> None:
    pool = WorkerPool(1, name="test")
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.add_tasks(lambda task_id: None, [(1, 0)])
