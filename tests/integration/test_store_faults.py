"""Every write the engine makes, refused by the store: no job is dropped, none runs twice.

The store is the real SQLite store with a fault injected: saves whose new
state matches a predicate fail as on a full disk, until the test heals it.
Time is a ManualClock, so the processor's retries (and lock timeouts) happen
exactly when a test moves it; no test sleeps.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobplane.errors import StoreError
from jobplane.jobs import Job, OpState, OpStatus
from jobplane.processor import CRASHED, RETRY_FIRST_S, RETRY_MAX_S
from jobplane.queue import JobQueue
from jobplane.stores.sqlite import SQLiteStore
from jobplane.testing import ManualClock

from .conftest import TIMEOUT, Recorder, mark, wait_final, wait_status

Predicate = Callable[[Job], bool]


class FaultyStore(SQLiteStore):
    """The real SQLite store; saves matching a predicate fail as on a full disk.

    It is the fault, not a mock: every other write and every read is the
    store's own. An unwaited save that is refused is lost the way the real
    store loses one: the job's next save conflicts.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._fault_mutex = threading.Lock()
        self._when: Predicate | None = None
        self._times: int | None = None
        self.refused = 0
        self.refusing = threading.Event()  # set at each refusal; tests clear it

    def refuse(self, when: Predicate, times: int | None = None) -> None:
        """Refuse the saves whose new state matches ``when``: ``times`` of them, or until heal()."""
        with self._fault_mutex:
            self._when, self._times = when, times

    def heal(self) -> None:
        with self._fault_mutex:
            self._when = None

    def save(self, job: Job, *, wait: bool = True, release: bool = False) -> None:
        with self._fault_mutex:
            refuse = self._when is not None and self._when(job)
            if refuse:
                self.refused += 1
                if self._times is not None:
                    self._times -= 1
                    if self._times == 0:
                        self._when = None
        if not refuse:
            super().save(job, wait=wait, release=release)
            return
        self.refusing.set()
        if wait:
            raise StoreError(f"writing to {self.url} failed: database or disk is full")
        with self._writer_lock:  # lost after the fact, as the store's own unwaited writes are
            self._lost.add(job.id)
        job.version += 1


def op_is(index: int, *statuses: OpStatus, job_id: int | None = None) -> Predicate:
    """A save that gives op ``index`` (of job ``job_id``, or any) one of ``statuses``."""
    return lambda job: (job_id is None or job.id == job_id) and job.ops[index].status in statuses


def escalated(job: Job) -> bool:
    return any(op.escalations for op in job.ops)


Made = tuple[JobQueue, FaultyStore, ManualClock]


@pytest.fixture
def faulty(tmp_path: Path, recorder: Recorder) -> Iterator[Callable[..., Made]]:
    """``faulty(**options) -> (queue, store, clock)``: a paused queue, FaultyStore, ManualClock."""
    queues: list[JobQueue] = []

    def make(store: FaultyStore | None = None, **options: Any) -> Made:
        store = store or FaultyStore(f"sqlite:///{tmp_path / 'jobs.db'}")
        clock = ManualClock()
        options.setdefault("workers", 1)
        options.setdefault("registry", recorder.registry)
        options.setdefault("aging_interval", 0)
        options.setdefault("lock_timeouts", (5, 5, 60))
        options.setdefault("start", False)  # tests resume the pool once the fault is set
        q = JobQueue(store, clock=clock, timers=clock, **options)
        queues.append(q)
        return q, store, clock

    yield make
    for gate_event in recorder.gates.values():
        gate_event.set()
    for q in queues:
        q.store.heal()  # type: ignore[attr-defined]
        q.close()


def hold(q: JobQueue, level: str, name: str, owner: str = "outsider") -> None:
    """Hold a job lock from outside the queue, as another process would."""
    q.locks.acquire("cluster", ["cluster"], shared=True, owner=owner)
    q.locks.add(level, [name])
    q.locks.acquire(level, [name], owner=owner)


def let_go(q: JobQueue, level: str, owner: str = "outsider") -> None:
    q.locks.release(level, owner=owner)
    q.locks.release("cluster", owner=owner)


def refused_and_settled(q: JobQueue, store: FaultyStore) -> None:
    """Wait for a refusal and for the turn that met it to end."""
    assert store.refusing.wait(TIMEOUT), "the store was never asked for that write"
    store.refusing.clear()
    assert q.pool.wait_idle(TIMEOUT)


def holders(q: JobQueue, level: str, name: str) -> tuple[Any, ...]:
    return next(i.owners for i in q.lock_info() if (i.level, i.name) == (level, name))


def test_a_refused_outcome_is_kept_and_recorded_once_the_store_takes_it(
    faulty: Callable[..., Made], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's defect 1: the job is not dropped; locks and dependants wait for the record."""
    caplog.set_level(logging.INFO, logger="jobplane.engine")
    q, store, clock = faulty()
    job = q.submit([mark("one", exclusive=["node:n1"])])
    dependant = q.submit([mark("after")], depends=[(job, ["success"])])
    store.refuse(op_is(0, OpStatus.SUCCESS, job_id=job), times=3)
    q.pool.resume()
    refused_and_settled(q, store)
    for delay in (RETRY_FIRST_S, 2 * RETRY_FIRST_S):  # backoff: 0.05 s, doubling
        assert clock.pending() == [pytest.approx(clock() + delay)]
        clock.advance(delay)
        refused_and_settled(q, store)
    assert recorder.order == ["one"]  # it ran once and is not run again

    # Not recorded yet: the job is still in the daemon's care, the truth is kept.
    assert q.get(job).ops[0].status is OpStatus.RUNNING
    assert q.processor.tracked(job) is not None
    assert holders(q, "node", "n1") == (job,)  # its locks wait for the record
    waiter = q.submit([mark("waiter", exclusive=["node:n1"])])
    wait_status(q, waiter, "waiting")
    assert q.get(dependant).status is OpStatus.QUEUED  # not claimed before the record
    ok, message = q.cancel(job)
    assert not ok and "is recording the outcome of op 0 (success)" in message
    assert any("the store refused" in r for r in q.explain(job).reasons)

    clock.advance(4 * RETRY_FIRST_S)  # the store takes it this time
    done = wait_final(q, job)
    assert done.status is OpStatus.SUCCESS and done.ops[0].result == "one"
    assert wait_final(q, dependant).status is OpStatus.SUCCESS
    assert wait_final(q, waiter).status is OpStatus.SUCCESS
    assert recorder.order[0] == "one" and sorted(recorder.order[1:]) == ["after", "waiter"]
    assert store.refused == 3
    lines = [r.getMessage() for r in caplog.records if f"job {job}:" in r.getMessage()]
    assert len([m for m in lines if "the store refused a write" in m]) == 1  # once per episode
    assert len([m for m in lines if "took its write again after 3 refusal(s)" in m]) == 1


def test_the_backoff_doubles_up_to_its_cap(faulty: Callable[..., Made]) -> None:
    q, store, clock = faulty()
    job = q.submit([mark("one")])
    store.refuse(op_is(0, OpStatus.SUCCESS, job_id=job))
    q.pool.resume()
    refused_and_settled(q, store)
    delays = []
    for _ in range(9):
        delay = clock.pending()[0] - clock()
        delays.append(round(delay, 3))
        clock.advance(delay)
        refused_and_settled(q, store)
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, RETRY_MAX_S, RETRY_MAX_S]
    store.heal()
    clock.advance(RETRY_MAX_S)
    assert wait_final(q, job).status is OpStatus.SUCCESS


def test_a_refused_start_does_not_run_the_op_until_the_store_takes_it(
    faulty: Callable[..., Made], recorder: Recorder
) -> None:
    q, store, clock = faulty()
    job = q.submit([mark("one", exclusive=["node:n1"])])
    store.refuse(op_is(0, OpStatus.RUNNING, job_id=job))
    q.pool.resume()
    refused_and_settled(q, store)
    clock.advance(RETRY_FIRST_S)
    refused_and_settled(q, store)
    assert recorder.order == []
    assert q.get(job).status is OpStatus.QUEUED
    assert holders(q, "node", "n1") == (job,)  # it keeps what it took
    store.heal()
    clock.advance(RETRY_MAX_S)
    assert wait_final(q, job).status is OpStatus.SUCCESS
    assert recorder.order == ["one"]


def test_a_lost_unwaited_start_is_applied_again_with_the_outcome(
    faulty: Callable[..., Made],
) -> None:
    """test.noop is retry_on_crash: its start is saved without waiting, and may be lost."""
    q, store, _ = faulty()
    job = q.submit([{"op": "test.noop"}, {"op": "test.noop"}])
    store.refuse(op_is(0, OpStatus.RUNNING, job_id=job), times=1)
    q.pool.resume()
    done = wait_final(q, job)
    assert store.refused == 1
    assert [op.status for op in done.ops] == [OpStatus.SUCCESS, OpStatus.SUCCESS]
    assert done.ops[0].started_at is not None and done.started_at is not None


def test_a_refused_lock_wait_leaves_no_request_behind(
    faulty: Callable[..., Made], recorder: Recorder
) -> None:
    q, store, clock = faulty()
    hold(q, "node", "n1")
    job = q.submit([mark("one", exclusive=["node:n1"])])
    store.refuse(op_is(0, OpStatus.WAITING, job_id=job))
    q.pool.resume()
    refused_and_settled(q, store)
    assert q.get(job).status is OpStatus.QUEUED
    lock = next(i for i in q.lock_info() if i.name == "n1")
    assert lock.pending == ()  # not parked half way: a grant could not reach it
    let_go(q, "node")
    store.heal()
    clock.advance(RETRY_MAX_S)
    assert wait_final(q, job).status is OpStatus.SUCCESS
    assert recorder.order == ["one"]


def test_a_refused_escalation_is_committed_before_the_next_lock_wait(
    faulty: Callable[..., Made],
) -> None:
    q, store, clock = faulty(lock_timeouts=(1, 1, 2))  # two attempts per step
    hold(q, "node", "n1")
    job = q.submit([mark("one", exclusive=["node:n1"])])
    q.pool.resume()
    wait_status(q, job, "waiting")
    assert q.pool.wait_idle(TIMEOUT)
    clock.advance(1.1)  # the first attempt times out
    assert q.pool.wait_idle(TIMEOUT)
    store.refuse(escalated)
    clock.advance(1.1)  # the last one: escalating is refused, and so is it at the next turn
    refused_and_settled(q, store)
    assert q.get(job).ops[0].priority == 0
    store.heal()
    clock.advance(RETRY_MAX_S)
    assert q.pool.wait_idle(TIMEOUT)
    stored = q.get(job)
    assert (stored.ops[0].priority, stored.ops[0].escalations) == (-1, 1)
    assert any("priority raised from 0 to -1" in e.message for e in stored.log)
    let_go(q, "node")
    assert wait_final(q, job).status is OpStatus.SUCCESS


def test_refused_aging_is_done_at_the_next_pass(faulty: Callable[..., Made]) -> None:
    q, store, clock = faulty(aging_interval=10.0)
    job = q.submit([mark("old")], priority="low")
    store.refuse(escalated)
    clock.advance(25)  # two intervals
    assert q.run_maintenance() == 0  # refused: nothing aged, nothing raised to the caller
    assert q.get(job).priority == 10
    store.heal()
    q.run_maintenance()  # (or the maintenance thread did it just before)
    assert q.get(job).priority == 8  # its age was kept
    assert q.pool.statistics().queued_by_priority == {8: 1}


def test_a_refused_cancel_changes_nothing_and_says_so(
    faulty: Callable[..., Made], recorder: Recorder
) -> None:
    q, store, _ = faulty()
    job = q.submit([mark("one"), mark("two")])
    store.refuse(op_is(0, OpStatus.CANCELED, OpStatus.CANCELING))
    with pytest.raises(StoreError, match="disk is full"):
        q.cancel(job)
    assert q.get(job).status is OpStatus.QUEUED
    store.heal()
    assert q.cancel(job) == (True, f"job {job} canceled")
    q.pool.resume()
    assert q.pool.wait_idle(TIMEOUT)
    assert recorder.order == []


def test_a_refused_end_of_a_cancel_is_recorded_later(
    faulty: Callable[..., Made], recorder: Recorder
) -> None:
    q, store, clock = faulty()
    hold(q, "node", "n1")
    job = q.submit([mark("one", exclusive=["node:n1"]), mark("two")])
    q.pool.resume()
    wait_status(q, job, "waiting")
    store.refuse(op_is(0, OpStatus.CANCELED, job_id=job))
    assert q.cancel(job) == (True, f"job {job} will be canceled at its next turn")
    refused_and_settled(q, store)
    assert q.get(job).status is OpStatus.CANCELING
    store.heal()
    clock.advance(RETRY_MAX_S)
    done = wait_final(q, job)
    assert [op.status for op in done.ops] == [OpStatus.CANCELED, OpStatus.CANCELED]
    assert recorder.order == []


def test_a_refused_dependency_outcome_is_recorded_later(
    faulty: Callable[..., Made], recorder: Recorder
) -> None:
    q, store, clock = faulty()
    failing = q.submit([{"op": "rec.fail", "params": {"tag": "x"}}])
    dependant = q.submit([mark("never")], depends=[(failing, ["success"])])
    store.refuse(op_is(0, OpStatus.ERROR, job_id=dependant))
    q.pool.resume()
    assert wait_final(q, failing).status is OpStatus.ERROR
    refused_and_settled(q, store)
    assert q.get(dependant).status in (OpStatus.QUEUED, OpStatus.WAITING)
    store.heal()
    clock.advance(RETRY_MAX_S)
    done = wait_final(q, dependant)
    assert done.status is OpStatus.ERROR
    assert done.ops[0].result["error"] == "DependencyFailed"
    assert recorder.order == []


def test_refused_recovery_saves_are_made_once_the_store_takes_them(
    faulty: Callable[..., Made], tmp_path: Path, recorder: Recorder
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store = FaultyStore(url)
    crashed, waiting, canceling = store.insert_jobs(
        [
            Job(0, [OpState("test.delay", {}, status=OpStatus.RUNNING, started_at=2.0)], 1.0),
            Job(0, [OpState("rec.mark", {"tag": "w"}, status=OpStatus.WAITING)], 1.0),
            Job(0, [OpState("rec.mark", {"tag": "c"}, status=OpStatus.CANCELING)], 1.0),
        ],
        max_unarchived=None,
    )
    store.refuse(lambda job: True)
    q, _, clock = faulty(store=store, start=False)  # the daemon starts despite the refusals
    assert {q.get(i).status for i in (crashed, waiting, canceling)} == {
        OpStatus.RUNNING,
        OpStatus.WAITING,
        OpStatus.CANCELING,
    }
    q.pool.resume()
    assert q.pool.wait_idle(TIMEOUT)
    store.heal()
    clock.advance(RETRY_MAX_S)
    gone = wait_final(q, crashed)
    assert gone.status is OpStatus.ERROR and gone.ops[0].result["message"] == CRASHED
    assert wait_final(q, waiting).status is OpStatus.SUCCESS
    assert wait_final(q, canceling).status is OpStatus.CANCELED
    assert recorder.order == ["w"]
