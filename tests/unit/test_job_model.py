"""The job model's state changes (jobplane.jobs): start, end and recover after a crash."""

from __future__ import annotations

import pytest

from jobplane.jobs import (
    CANCELED_BY_REQUEST,
    DAEMON_LOST,
    PRECEDING_FAILED,
    Job,
    OpState,
    OpStatus,
    end_op,
    mark_cooperative,
    recover,
    start_op,
)


def job_of(*statuses: OpStatus, names: tuple[str, ...] = ()) -> Job:
    ops = [
        OpState(names[i] if i < len(names) else "test.noop", {}, status=status)
        for i, status in enumerate(statuses)
    ]
    for op in ops:
        if op.status in (OpStatus.RUNNING, OpStatus.CANCELING):
            op.started_at = 5.0
    return Job(id=1, ops=ops, received_at=1.0)


def retry_noop_only(name: str) -> bool | None:
    return {"test.noop": True, "slow": False}.get(name)


def test_starting_an_op_starts_the_job_once() -> None:
    job = job_of(OpStatus.QUEUED, OpStatus.QUEUED)
    start_op(job, 0, 10.0)
    assert (job.status, job.started_at, job.ops[0].started_at) == (OpStatus.RUNNING, 10.0, 10.0)
    end_op(job, 0, OpStatus.SUCCESS, "ok", 11.0)
    start_op(job, 1, 12.0)
    assert (job.started_at, job.ops[1].started_at, job.ended_at) == (10.0, 12.0, None)


def test_a_cooperative_op_is_kept_in_its_document_and_a_new_run_starts_without_it() -> None:
    job = job_of(OpStatus.QUEUED, OpStatus.QUEUED)
    start_op(job, 0, 10.0)
    mark_cooperative(job, 0)
    docs = job.to_doc()["ops"]
    assert docs[0]["cooperative"] is True and "cooperative" not in docs[1]
    copy = Job.from_doc(1, 1, False, job.to_doc())
    assert [op.cooperative for op in copy.ops] == [True, False]
    assert [op.cooperative for op in copy.clone().ops] == [True, False]
    recover(copy, retry_noop_only, 20.0)  # the op runs again (retry_on_crash) ...
    assert copy.ops[0].cooperative is False  # ... and cooperates only once it checks again
    mark_cooperative(copy, 0)
    start_op(copy, 0, 21.0)
    assert copy.ops[0].cooperative is False  # a new run, whatever the copy said


def test_a_failed_op_fails_the_ops_after_it_and_ends_the_job() -> None:
    job = job_of(OpStatus.RUNNING, OpStatus.QUEUED, OpStatus.QUEUED)
    end_op(job, 0, OpStatus.ERROR, {"error": "Boom"}, 20.0)
    assert [op.status for op in job.ops] == [OpStatus.ERROR] * 3
    assert [op.result for op in job.ops[1:]] == [PRECEDING_FAILED] * 2
    assert job.ended_at == 20.0


def test_an_op_that_was_canceling_cancels_the_rest_even_if_it_succeeded() -> None:
    job = job_of(OpStatus.CANCELING, OpStatus.QUEUED)
    end_op(job, 0, OpStatus.SUCCESS, "done anyway", 20.0)
    assert [op.status for op in job.ops] == [OpStatus.SUCCESS, OpStatus.CANCELED]
    assert job.ops[1].result == CANCELED_BY_REQUEST
    assert job.status is OpStatus.CANCELED


def test_a_successful_op_with_more_to_do_leaves_the_job_queued() -> None:
    job = job_of(OpStatus.RUNNING, OpStatus.QUEUED)
    end_op(job, 0, OpStatus.SUCCESS, 1, 20.0)
    assert (job.status, job.ended_at) == (OpStatus.QUEUED, None)


@pytest.mark.parametrize(
    ("statuses", "names", "after", "changed"),
    [
        # a started op that may run again is queued again
        ((OpStatus.RUNNING,), ("test.noop",), [OpStatus.QUEUED], True),
        # any other started op fails, and the ops after it
        ((OpStatus.RUNNING, OpStatus.QUEUED), ("slow",), [OpStatus.ERROR, OpStatus.ERROR], True),
        ((OpStatus.CANCELING,), ("test.noop",), [OpStatus.ERROR], True),
        # waiting goes back to queued; queued stays
        ((OpStatus.SUCCESS, OpStatus.WAITING), (), [OpStatus.SUCCESS, OpStatus.QUEUED], True),
        ((OpStatus.QUEUED,), (), [OpStatus.QUEUED], False),
        # an op nobody registered fails the job
        ((OpStatus.QUEUED,), ("gone",), [OpStatus.ERROR], True),
    ],
)
def test_the_crash_rules(
    statuses: tuple[OpStatus, ...], names: tuple[str, ...], after: list[OpStatus], changed: bool
) -> None:
    job = job_of(*statuses, names=names)
    assert recover(job, retry_noop_only, 30.0) is changed
    assert [op.status for op in job.ops] == after


def test_a_lost_op_says_the_daemon_was_lost() -> None:
    job = job_of(OpStatus.RUNNING, names=("slow",))
    recover(job, retry_noop_only, 30.0)
    assert job.ops[0].result == {"error": "Crash", "message": DAEMON_LOST}
    assert job.ended_at == 30.0


def test_a_cancel_that_never_started_its_op_ends_canceled() -> None:
    job = job_of(OpStatus.CANCELING, OpStatus.QUEUED)
    job.ops[0].started_at = None
    assert recover(job, retry_noop_only, 30.0) is True
    assert [op.status for op in job.ops] == [OpStatus.CANCELED, OpStatus.CANCELED]
