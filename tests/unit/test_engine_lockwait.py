"""engine.lockwait on its own: attempt timeouts, escalation, and the curve's settings.

A job's op waits for a lock another owner holds; a ManualClock runs the
attempts' timers, a recording pool stands in for the worker pool and a
recording store for the store, so every step can be checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobplane import priorities
from jobplane.engine.lockwait import take_locks_unlocked
from jobplane.engine.state import Active, EngineState, Where
from jobplane.jobs import Job, OpState, OpStatus
from jobplane.locking import ALL, LockManager, LockTimeouts
from jobplane.operations import LockNeed
from jobplane.testing import ManualClock

NEED = [LockNeed("cluster", None, True), LockNeed("node", ("n1",), False)]


class RecordingStore:
    def __init__(self) -> None:
        self.saved: list[Job] = []
        self.logs: list[str] = []

    def save(self, job: Job, *, wait: bool = True) -> None:
        self.saved.append(job.clone())

    def append_log(self, job_id: int, index: int, at: float, message: str, **_: Any) -> None:
        self.logs.append(message)


class RecordingPool:
    def __init__(self) -> None:
        self.queued: list[tuple[int, int]] = []

    def add_task(self, fn: Callable[..., None], *args: Any, priority: int, **_: Any) -> None:
        self.queued.append((args[0], priority))


class Registry:
    big_lock_level = "cluster"


class Escalations:
    def __init__(self) -> None:
        self.count = 0

    def op_finished(self, op: str, status: OpStatus, seconds: float) -> None: ...

    def lock_waited(self, seconds: float) -> None: ...

    def escalated(self) -> None:
        self.count += 1


@pytest.fixture
def locks() -> Iterator[LockManager]:
    manager = LockManager(["cluster", "node"])
    manager.add("node", ["n1"])
    assert manager.acquire("cluster", ALL, shared=True, owner="someone else", timeout=1.0)
    assert manager.acquire("node", ["n1"], owner="someone else", timeout=1.0)
    yield manager
    manager.release("node", owner="someone else")
    manager.release("cluster", owner="someone else")
    manager.close()


def make(
    locks: LockManager, clock: ManualClock, timeouts: LockTimeouts, priority: int
) -> tuple[EngineState, Active, RecordingStore, RecordingPool]:
    store, pool = RecordingStore(), RecordingPool()
    st = EngineState(
        store=store,  # type: ignore[arg-type]
        registry=Registry(),  # type: ignore[arg-type]
        pool=pool,  # type: ignore[arg-type]
        locks=locks,
        timers=clock,
        lock_timeouts=timeouts,
        clock=clock,
        wall=clock.wall,
        on_finished=None,
        on_slot_free=None,
    )
    job = Job(id=7, ops=[OpState("test.op", {}, priority=priority)], received_at=clock.wall())
    aj = Active(job, clock(), 0)
    st.active[job.id] = aj
    return st, aj, store, pool


def ask(st: EngineState, aj: Active) -> bool:
    """What the job's turn does: ask for the op's locks."""
    with aj.mutex:
        return take_locks_unlocked(st, aj, 0, NEED)


def test_a_wait_escalates_one_step_after_its_whole_sequence_of_attempts(
    locks: LockManager,
) -> None:
    clock = ManualClock()  # not 0.0: a wait that started at 0.0 logs as 0.0 s long
    st, aj, store, pool = make(locks, clock, LockTimeouts(1.0, 1.0, 3.0), priorities.NORMAL)
    observer = Escalations()
    st.observers.append(observer)

    for attempt in range(3):  # (1, 1, 3): three attempts of 1 s (+-5%) each
        assert not ask(st, aj)
        assert aj.where is Where.LOCKS and aj.job.ops[0].status is OpStatus.WAITING
        assert aj.held == ["cluster"]  # the big lock, shared, at once
        assert len(clock.pending()) == 1
        assert aj.job.ops[0].priority == priorities.NORMAL  # not yet
        clock.advance(1.1)  # the attempt times out: withdrawn, queued again
        assert aj.where is Where.POOL and aj.request is None and clock.pending() == []
        assert aj.held == []  # what it took is given back
        assert len(pool.queued) == attempt + 1

    new = priorities.NORMAL - 1
    assert pool.queued[-1] == (7, new)  # at its escalated priority
    assert aj.job.ops[0].priority == new and aj.job.ops[0].escalations == 1
    assert store.saved[-1].ops[0].priority == new  # committed, not only in memory
    assert st.escalations == 1 and observer.count == 1
    # waited since its first attempt: 2 x 1.1 s, then the third attempt's 1 s (+-5%)
    [line] = store.logs
    assert re.fullmatch(r"priority raised from 0 to -1 after waiting 3\.[1-3] s for locks", line)
    assert [p for _, p in pool.queued[:2]] == [priorities.NORMAL, priorities.NORMAL]
    assert not ask(st, aj)  # a new sequence starts
    assert len(clock.pending()) == 1


def test_at_highest_a_wait_has_no_timeout(locks: LockManager) -> None:
    clock = ManualClock(0.0)
    st, aj, _, pool = make(locks, clock, LockTimeouts(1.0, 1.0, 3.0), priorities.HIGHEST)
    assert not ask(st, aj)
    assert aj.where is Where.LOCKS and clock.pending() == []
    clock.advance(3600)
    assert aj.where is Where.LOCKS and pool.queued == []
    assert aj.request is not None and aj.request.cancel()


def test_lock_timeouts_refuse_a_curve_that_cannot_be() -> None:
    with pytest.raises(ValueError, match="0 < min <= max <= step total"):
        LockTimeouts(2.0, 1.0, 30.0)
    assert sum(LockTimeouts(1.0, 5.0, 30.0).attempts()) == pytest.approx(30.0, rel=0.1)
