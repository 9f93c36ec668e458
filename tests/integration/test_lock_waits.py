"""Lock waits through a real queue: new names, priority changes of holders, escalation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pydantic

from jobplane.jobs import OpStatus
from jobplane.locking import ALL, SharedLock
from jobplane.operations import OpContext
from jobplane.queue import JobQueue
from jobplane.testing import ManualClock

from .conftest import TIMEOUT, Recorder, gate, mark, wait_final, wait_status

T = TypeVar("T")


def answered(fn: Callable[[], T]) -> T:
    """Call ``fn`` on another thread; fail if it does not answer within TIMEOUT."""
    box: list[T] = []
    thread = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert box, f"{fn} did not answer within {TIMEOUT} s"
    return box[0]


def grants_delivered() -> None:
    """Wait until the lock grant dispatcher has run every callback queued so far.

    It runs them in order, so a grant of a lock of our own made now comes last.
    """
    probe, delivered = SharedLock("probe"), threading.Event()
    probe.acquire(owner="a")
    assert not probe.acquire_async(False, 0, "b", lambda error: delivered.set())
    probe.release(owner="a")
    assert delivered.wait(TIMEOUT), "the grant dispatcher is stuck"


def hold(q: JobQueue, level: str, name: str, owner: str = "outsider") -> None:
    q.locks.acquire("cluster", ["cluster"], shared=True, owner=owner)
    q.locks.add(level, [name])
    q.locks.acquire(level, [name], owner=owner)


def let_go(q: JobQueue, level: str, owner: str = "outsider") -> None:
    q.locks.release(level, owner=owner)
    q.locks.release("cluster", owner=owner)


class Tag(pydantic.BaseModel):
    tag: str


def test_jobs_that_need_new_names_while_all_is_held_do_not_block_workers(
    make_queue: Any, recorder: Recorder
) -> None:
    """Defect 12, the issue's scenario: adding a lock must never block a worker."""

    def all_nodes(ctx: OpContext, params: Tag) -> str:
        recorder.order.append(params.tag)
        return params.tag

    recorder.registry.add(
        "t.all_nodes", all_nodes, params=Tag, locks=lambda p: {"node": ALL, "instance": ["i1"]}
    )
    q = make_queue(workers=2, lock_timeouts=(5, 5, 60))
    c = q.submit([gate("c", exclusive=["instance:i1"])])
    assert recorder.gate("c") is not None and recorder.entered["c"].wait(TIMEOUT)
    a = q.submit([{"op": "t.all_nodes", "params": {"tag": "a"}}])
    wait_status(q, a, "waiting")  # holds node ALL, waits for instance:i1
    b = q.submit([mark("b", exclusive=["node:nb"])])
    b2 = q.submit([mark("b2", exclusive=["node:nb2"])], priority=-20)
    wait_status(q, b, "waiting")  # parked: making node:nb waits for A's ALL
    wait_status(q, b2, "waiting")
    free = q.submit([mark("free")])  # C holds one worker; waiting jobs hold none
    assert wait_final(q, free).status is OpStatus.SUCCESS

    explanation = answered(lambda: q.explain(b2))
    assert any(
        "to make lock(s) nb2" in reason and f"job {a}" in reason for reason in explanation.reasons
    ), explanation.reasons
    assert answered(lambda: q.cancel(b)) == (True, f"job {b} will be canceled at its next turn")
    assert wait_final(q, b).status is OpStatus.CANCELED

    recorder.gate("c").set()
    assert wait_final(q, a).status is OpStatus.SUCCESS
    assert wait_final(q, b2).status is OpStatus.SUCCESS
    wait_final(q, c)
    assert recorder.order == ["free", "a", "b2"]


def test_a_priority_change_does_not_demote_a_lock_holder(
    make_queue: Any, recorder: Recorder
) -> None:
    """Defect 13: granted and queued to run next, it keeps its place; the new priority waits."""
    q = make_queue(workers=1, lock_timeouts=(5, 5, 60))
    hold(q, "node", "n1")
    holder = q.submit([mark("holder", exclusive=["node:n1"]), mark("holder-2")])
    wait_status(q, holder, "waiting")
    assert q.pool.wait_idle(TIMEOUT)
    q.pool.pause()
    other = q.submit([mark("other")])
    let_go(q, "node")  # granted: the holder is queued at -20 to run next
    grants_delivered()
    assert q.pool.statistics().queued_by_priority == {-20: 1, 0: 1}
    assert q.change_priority(holder, "low") == (True, f"job {holder} priority changed to low (10)")
    assert q.pool.statistics().queued_by_priority == {-20: 1, 0: 1}
    assert [op.priority for op in q.get(holder).ops] == [10, 10]
    q.pool.resume()
    wait_final(q, holder)
    wait_final(q, other)
    assert recorder.order == ["holder", "other", "holder-2"]  # its next op runs at 10


def test_escalation_happens_at_the_last_timeout_and_queues_at_the_new_priority(
    make_queue: Any,
) -> None:
    """Defect 14: no extra turn at the old priority after the last attempt of a sequence."""
    clock = ManualClock()
    q = make_queue(workers=1, lock_timeouts=(1, 1, 2), clock=clock, timers=clock, aging_interval=0)
    hold(q, "node", "n1")
    job = q.submit([mark("late", exclusive=["node:n1"])], priority=5)
    wait_status(q, job, "waiting")
    assert q.pool.wait_idle(TIMEOUT)  # parked; its first attempt times out in about 1 s

    q.pool.pause()
    clock.advance(1.1)  # first attempt over: back in the pool at its own priority
    assert q.pool.statistics().queued_by_priority == {5: 1}
    q.pool.resume()
    assert q.pool.wait_idle(TIMEOUT)  # parked again, for the second (last) attempt

    q.pool.pause()
    clock.advance(1.1)  # the last attempt is over: it escalates at once
    assert q.pool.statistics().queued_by_priority == {4: 1}
    stored = q.get(job)
    assert (stored.ops[0].priority, stored.ops[0].escalations) == (4, 1)
    assert any("priority raised from 5 to 4" in entry.message for entry in stored.log)
    q.pool.resume()
    assert q.pool.wait_idle(TIMEOUT)
    lock = next(info for info in q.lock_info() if info.name == "n1")
    assert lock.pending == ((4, False, job),)  # it waits at its new priority
    let_go(q, "node")
    assert wait_final(q, job).status is OpStatus.SUCCESS
