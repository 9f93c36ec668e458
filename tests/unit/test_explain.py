"""explain(): the words for a job, from a snapshot alone (no queue, store or threads)."""

from __future__ import annotations

from jobplane.explain import JobSnapshot, LockWaitSnapshot, explain
from jobplane.jobs import Dependency, Job, OpState, OpStatus
from jobplane.locking import LockInfo, LockStatistics


def queued_job(job_id: int = 7, *, depends: tuple[Dependency, ...] = ()) -> Job:
    return Job(id=job_id, ops=[OpState("test.delay", {})], received_at=1.0, depends=depends)


def test_a_finished_job_says_so_and_nothing_else() -> None:
    job = Job(id=3, ops=[OpState("test.noop", {}, status=OpStatus.SUCCESS)], received_at=1.0)
    assert explain(JobSnapshot(job=job, where=None)).reasons == ["job 3 has finished: success"]


def test_a_job_no_daemon_holds_waits_in_the_stores_schedule() -> None:
    out = explain(JobSnapshot(job=queued_job(), where=None))
    assert out.reasons == [
        "job 7 is queued at priority normal (0): it waits in the store's schedule until a "
        "daemon with a free worker claims it"
    ]


def test_a_job_another_daemon_holds_names_that_daemon() -> None:
    job = queued_job()
    job.owner = 3
    out = explain(JobSnapshot(job=job, where=None))
    assert out.reasons == [
        "job 7 is queued at priority normal (0): daemon 3 holds it; it waits in the store's "
        "schedule until a daemon with a free worker claims it"
    ]


def test_a_queued_job_counts_the_jobs_ahead_and_the_busy_workers() -> None:
    seen = JobSnapshot(
        job=queued_job(), where="pool", ahead_higher=2, ahead_same=1, workers=4, running=4
    )
    out = explain(seen)
    assert out.ahead == {"higher_priority": 2, "same_priority": 1}
    assert out.reasons == [
        "job 7 is queued at priority normal (0): 2 job(s) of higher priority and 1 earlier "
        "job(s) of the same priority are ahead of it; all 4 workers are busy"
    ]


def test_a_dependency_wait_names_the_job_and_the_statuses_that_let_it_go_on() -> None:
    job = queued_job(depends=(Dependency(5, (OpStatus.SUCCESS, OpStatus.ERROR)),))
    out = explain(JobSnapshot(job=job, where=None, dep_statuses={5: OpStatus.RUNNING}))
    assert out.waiting_for_job == 5
    assert out.reasons == [
        "job 7 waits for job 5 to finish (it goes on if that job ends in: success, error)"
    ]


def test_a_lock_wait_names_the_holder_its_op_and_the_waiters_ahead() -> None:
    lock = LockInfo("node", "n1", "exclusive", (4,), ((-5, False, 6), (0, False, 7)), since=None)
    wait = LockWaitSnapshot(
        level="node",
        names=("n1",),
        shared=False,
        waiting_on=None,
        locks=(lock, LockInfo("node", "n2", None, (), (), None)),
        holder_ops={4: "op 0 (test.delay)"},
    )
    out = explain(JobSnapshot(job=queued_job(), where="locks", lock_wait=wait))
    assert out.waiting_for_locks == [
        {
            "level": "node",
            "name": "n1",
            "shared": False,
            "mode": "exclusive",
            "since": None,
            "waiters_ahead": [{"job": 6, "priority": -5, "shared": False}],
            "holders": [{"job": 4, "op": "op 0 (test.delay)"}],
        }
    ]
    assert out.reasons == [
        "job 7 waits for lock node:n1 (exclusive): held exclusive by job 4 (op 0 (test.delay)) "
        "since an unknown time; 1 waiter(s) ahead of it, first job 6 (exclusive, priority -5)"
    ]


def test_waiting_to_make_names_while_all_is_held_names_the_level() -> None:
    names_lock = LockStatistics(
        "node:ALL", "shared", (9,), ((0, False, 7),), since=None, deleted=False
    )
    wait = LockWaitSnapshot(
        level="node",
        names=("n3",),
        shared=False,
        waiting_on=names_lock,
        locks=(),
        holder_ops={9: None},
    )
    out = explain(JobSnapshot(job=queued_job(), where="locks", lock_wait=wait))
    assert out.waiting_for_locks[0]["making"] == ["n3"]
    assert out.reasons == [
        "job 7 waits for the names of level node to make lock(s) n3 (ALL is held there) "
        "(exclusive): held shared by job 9 since an unknown time; 0 waiter(s) ahead of it"
    ]


def test_a_store_refusal_says_what_it_could_not_record() -> None:
    seen = JobSnapshot(
        job=queued_job(), where="store", store_error="disk full", pending="the end of op 0"
    )
    assert explain(seen).reasons == [
        "job 7: the store refused to record the end of op 0 (disk full); the daemon keeps "
        "the job and tries again until the store takes it"
    ]
