"""What a queue does with the jobs it finds unfinished when it opens a store."""

from __future__ import annotations

from jobplane.jobs import Job, OpState, OpStatus
from jobplane.operations import OpContext, Registry
from jobplane.operations.builtin import NoopParams
from jobplane.processor import CRASHED, PRECEDING_FAILED
from jobplane.queue import JobQueue
from jobplane.stores import open_store


def stored(url: str, *states: list[tuple[str, OpStatus, float | None]]) -> list[int]:
    """Write jobs straight into the store, as a crashed daemon would have left them."""
    store = open_store(url)
    try:
        jobs = [
            Job(
                id=0,
                ops=[
                    OpState(op, {}, status=status, started_at=started)
                    for op, status, started in ops
                ],
                received_at=1.0,
            )
            for ops in states
        ]
        return store.insert_jobs(jobs, max_unarchived=None)
    finally:
        store.close()


def registry(runs: list[str]) -> Registry:
    reg = Registry()

    def again(ctx: OpContext, params: NoopParams) -> None:
        runs.append("again")

    reg.add("t.again", again, params=NoopParams, retry_on_crash=True)
    return reg


def test_recovery_rules(db_url: str) -> None:
    runs: list[str] = []
    running, retried, waiting, canceling, gone, queued = stored(
        db_url,
        [
            ("test.noop", OpStatus.SUCCESS, 1.0),
            ("test.delay", OpStatus.RUNNING, 2.0),  # not retry_on_crash
            ("test.noop", OpStatus.QUEUED, None),
        ],
        [("t.again", OpStatus.RUNNING, 2.0)],
        [("test.noop", OpStatus.WAITING, None)],
        [("test.noop", OpStatus.CANCELING, None), ("test.noop", OpStatus.QUEUED, None)],
        [("no.such.op", OpStatus.QUEUED, None)],
        [("test.noop", OpStatus.QUEUED, None)],
    )
    with JobQueue.open(db_url, registry=registry(runs), workers=1, start=False) as q:
        job = q.get(running)
        assert [op.status for op in job.ops] == [OpStatus.SUCCESS, OpStatus.ERROR, OpStatus.ERROR]
        assert job.ops[1].result == {"error": "Crash", "message": CRASHED}
        assert job.ops[2].result == PRECEDING_FAILED
        assert q.get(retried).ops[0].status is OpStatus.QUEUED
        assert q.get(waiting).ops[0].status is OpStatus.QUEUED
        assert q.get(canceling).status is OpStatus.CANCELED
        assert "not registered" in q.get(gone).ops[0].result["message"]
        assert q.get(queued).status is OpStatus.QUEUED
        q.pool.resume()
        for job_id in (retried, waiting, queued):
            assert q.wait(job_id, timeout=10).status is OpStatus.SUCCESS
    assert runs == ["again"]


def test_unfinished_jobs_survive_a_clean_close(db_url: str) -> None:
    with JobQueue.open(db_url, workers=1, start=False) as q:
        job_id = q.submit([{"op": "test.noop"}])
    with JobQueue.open(db_url, workers=1) as q:
        assert q.wait(job_id, timeout=10).status is OpStatus.SUCCESS
