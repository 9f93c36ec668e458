"""Cancel marks every unfinished op of a job, on every path (Ganeti's MarkUnfinishedOps)."""

from __future__ import annotations

import threading
from typing import Any

import pydantic

from jobplane.jobs import CANCELED_BY_REQUEST, Job, OpState, OpStatus
from jobplane.operations import OpContext
from jobplane.processor import CRASHED, PRECEDING_FAILED
from jobplane.queue import JobQueue
from jobplane.stores import open_store

from .conftest import TIMEOUT, Recorder, gate, mark, wait_final, wait_status

CANCELING, CANCELED = OpStatus.CANCELING, OpStatus.CANCELED


def statuses(q: JobQueue, job_id: int) -> list[OpStatus]:
    return [op.status for op in q.get(job_id).ops]


def test_canceling_a_queued_job_cancels_every_op(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(start=False)
    job_id = q.submit([mark("1"), mark("2"), mark("3")])
    assert q.cancel(job_id) == (True, f"job {job_id} canceled")
    assert statuses(q, job_id) == [CANCELED] * 3
    assert {op.result for op in q.get(job_id).ops} == {CANCELED_BY_REQUEST}


def test_canceling_a_job_waiting_for_a_lock_marks_every_op_then_cancels_them(
    make_queue: Any, recorder: Recorder
) -> None:
    q = make_queue(workers=2)
    holder = q.submit([gate("hold", exclusive=["node:n1"])])
    assert recorder.gate("hold") is not None and recorder.entered["hold"].wait(TIMEOUT)
    waiting = q.submit([mark("w1", exclusive=["node:n1"]), mark("w2"), mark("w3")])
    wait_status(q, waiting, "waiting")
    q.pool.pause()  # so that its next turn waits: the state in between is visible
    assert q.cancel(waiting) == (True, f"job {waiting} will be canceled at its next turn")
    assert statuses(q, waiting) == [CANCELING] * 3
    assert q.get(waiting).status is CANCELING
    q.pool.resume()
    assert [op.status for op in wait_final(q, waiting).ops] == [CANCELED] * 3
    recorder.gate("hold").set()
    wait_final(q, holder)
    assert recorder.order == []


def test_canceling_a_job_waiting_for_a_dependency_marks_every_op(
    make_queue: Any, recorder: Recorder
) -> None:
    q = make_queue(workers=2)
    first = q.submit([gate("first")])
    assert recorder.gate("first") is not None and recorder.entered["first"].wait(TIMEOUT)
    second = q.submit([mark("s1"), mark("s2")], depends=[(first, ["success"])])
    # not claimed before its dependency is final: it waits queued in the store
    assert q.cancel(second) == (True, f"job {second} canceled")
    assert statuses(q, second) == [CANCELED, CANCELED]
    recorder.gate("first").set()
    assert wait_final(q, first).status is OpStatus.SUCCESS
    assert recorder.order == []


def test_canceling_a_running_cooperative_op_marks_every_op(make_queue: Any) -> None:
    q = make_queue()
    job_id = q.submit([{"op": "test.delay", "params": {"duration": 60}}, {"op": "test.noop"}])
    wait_status(q, job_id, "running")
    assert q.cancel(job_id) == (
        True,
        f"job {job_id} will be canceled at its running op's next check",
    )
    # the op may already have seen the cancel: canceling, or canceled already
    assert statuses(q, job_id) in ([CANCELING, CANCELING], [CANCELED, CANCELED])
    job = wait_final(q, job_id)
    assert [op.status for op in job.ops] == [CANCELED, CANCELED]
    assert job.ended_at is not None


def test_a_canceled_op_that_returns_keeps_its_result_and_the_rest_is_canceled(
    make_queue: Any, recorder: Recorder
) -> None:
    entered, leave = threading.Event(), threading.Event()

    def stubborn(ctx: OpContext, params: pydantic.BaseModel) -> str:
        ctx.check_cancel()  # cooperative, so cancel is accepted ...
        entered.set()
        assert leave.wait(TIMEOUT)
        return "done anyway"  # ... but it returns without checking again

    class Empty(pydantic.BaseModel):
        pass

    recorder.registry.add("t.stubborn", stubborn, params=Empty)
    q = make_queue()
    job_id = q.submit([{"op": "t.stubborn"}, mark("never"), mark("never2")])
    assert entered.wait(TIMEOUT)
    assert q.cancel(job_id)[0]
    assert statuses(q, job_id) == [CANCELING] * 3
    leave.set()
    job = wait_final(q, job_id)
    assert [op.status for op in job.ops] == [OpStatus.SUCCESS, CANCELED, CANCELED]
    assert job.ops[0].result == "done anyway" and job.status is CANCELED
    assert recorder.order == []


def test_a_canceled_dependency_cancels_every_op_of_the_dependent(make_queue: Any) -> None:
    q = make_queue(start=False)
    first = q.submit([mark("first")])
    second = q.submit([mark("s1"), mark("s2")], depends=[(first, ["success"])])
    assert q.cancel(first)[0]
    q.pool.resume()
    job = wait_final(q, second)
    assert [op.status for op in job.ops] == [CANCELED, CANCELED]
    assert job.ops[0].result == f"dependency job {first} was canceled"


def test_recovery_finishes_every_op_of_a_job_found_canceling(
    db_url: str, recorder: Recorder
) -> None:
    store = open_store(db_url)
    try:
        before_start, after_start = store.insert_jobs(
            [
                # as older versions left them: only the current op canceling
                Job(
                    0,
                    [OpState("rec.mark", {"tag": "a"}, status=CANCELING), OpState("test.noop", {})],
                    1.0,
                ),
                Job(
                    0,
                    [
                        OpState("test.delay", {}, status=CANCELING, started_at=2.0),
                        OpState("test.noop", {}, status=CANCELING),
                    ],
                    1.0,
                ),
            ],
            max_unarchived=None,
        )
    finally:
        store.close()
    with JobQueue.open(db_url, registry=recorder.registry, workers=1) as q:
        assert statuses(q, before_start) == [CANCELED, CANCELED]
        crashed = q.get(after_start)
        assert [op.status for op in crashed.ops] == [OpStatus.ERROR, OpStatus.ERROR]
        assert crashed.ops[0].result["message"] == CRASHED
        assert crashed.ops[1].result == PRECEDING_FAILED


def test_on_sqlite_a_cooperative_op_is_not_written_again_for_its_first_check(
    make_queue: Any, recorder: Recorder
) -> None:
    """One daemon holds every job of a SQLite store: the mark would be read by nobody."""
    checked, leave = threading.Event(), threading.Event()

    def checks(ctx: OpContext, params: pydantic.BaseModel) -> None:
        ctx.check_cancel()
        checked.set()
        assert leave.wait(TIMEOUT)
        ctx.check_cancel()

    class Empty(pydantic.BaseModel):
        pass

    recorder.registry.add("t.checks", checks, params=Empty)
    q = make_queue()
    assert q.store.one_daemon
    job_id = q.submit([{"op": "t.checks"}])
    assert checked.wait(TIMEOUT)
    answer = (True, f"job {job_id} will be canceled at its running op's next check")
    assert q.cancel(job_id) == answer  # the daemon knows it cooperates
    stored = q.store.load(job_id)  # the cancel's waited write followed any mark
    assert stored.ops[0].status is CANCELING and not stored.ops[0].cooperative
    leave.set()
    assert wait_final(q, job_id).status is CANCELED
