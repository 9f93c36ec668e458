"""The daemon pulls: it holds only what it can start soon; the backlog stays in the store."""

from __future__ import annotations

from typing import Any

from jobplane.jobs import Job, OpState, OpStatus
from jobplane.stores import open_store

from .conftest import TIMEOUT, Recorder, gate, mark, wait_final


def test_a_daemon_holds_only_workers_plus_prefetch_of_a_backlog(
    db_url: str, make_queue: Any
) -> None:
    store = open_store(db_url)
    try:
        store.insert_jobs(
            [Job(0, [OpState("test.noop", {})], 1.0) for _ in range(100)], max_unarchived=None
        )
    finally:
        store.close()
    q = make_queue(workers=2, prefetch=3, start=False)
    assert q.processor.tracked_count() == 5
    assert q.status().jobs_by_status["queued"] == 100  # counted by the store
    assert q.oldest_queued_age() is not None
    q.submit([mark("more")])
    assert q.processor.tracked_count() == 5  # it waits in the store
    q.pool.resume()
    assert wait_final(q, 101).status is OpStatus.SUCCESS
    for job_id in range(1, 101):  # with 2 workers, job 100 may end after job 101
        assert wait_final(q, job_id).status is OpStatus.SUCCESS
    assert q.status().jobs_by_status["success"] == 101


def test_a_high_job_starts_at_the_next_free_worker_behind_a_claimed_backlog(
    make_queue: Any, recorder: Recorder
) -> None:
    q = make_queue(workers=1, prefetch=2)
    busy = q.submit([gate("busy")])
    assert recorder.gate("busy") is not None and recorder.entered["busy"].wait(TIMEOUT)
    lows = [q.submit([mark(f"low{i}")], priority="low") for i in range(6)]
    assert q.processor.tracked_count() == 3  # the running one and the prefetch
    high = q.submit([mark("high")], priority="high")
    assert q.processor.tracked(high) is not None  # claimed at once, over the prefetch
    recorder.gate("busy").set()
    for job_id in (busy, high, *lows):
        assert wait_final(q, job_id).status is OpStatus.SUCCESS
    assert recorder.order == ["high"] + [f"low{i}" for i in range(6)]


def test_an_urgent_claim_left_for_the_next_free_slot_survives_a_submission_meanwhile(
    make_queue: Any, recorder: Recorder
) -> None:
    # A high job submitted past the prefetch is left for the next free slot
    # (the "urgent" mark). If that slot's claim cannot run at once (a pass
    # is under way), a submission that comes meanwhile must not use the mark
    # up without claiming: the high job would wait behind a claimed low one.
    q = make_queue(workers=1, prefetch=1)
    claimer = q._intake.claimer
    busy = q.submit([gate("busy")])
    assert recorder.gate("busy") is not None and recorder.entered["busy"].wait(TIMEOUT)
    low0 = q.submit([mark("low0")], priority="low")  # the prefetch
    high1 = q.submit([gate("high1")], priority="high")  # one over the prefetch
    assert recorder.gate("high1") is not None
    high2 = q.submit([mark("high2")], priority="high")  # past that: left for the next slot
    assert q.processor.tracked(high2) is None
    assert claimer._pass_mutex.acquire(timeout=TIMEOUT)  # a pass under way
    try:
        recorder.gate("busy").set()  # its slot's claim finds the pass: it asks for another
        assert recorder.entered["high1"].wait(TIMEOUT)
        low2 = q.submit([mark("low2")], priority="low")
    finally:
        claimer._pass_mutex.release()
    claimer.run_once()  # the pass asked for (or the claimer thread's, if it came first)
    assert q.processor.tracked(high2) is not None
    recorder.gate("high1").set()
    for job_id in (busy, high1, high2, low0, low2):
        assert wait_final(q, job_id).status is OpStatus.SUCCESS
    assert recorder.order == ["high2", "low0", "low2"]


def test_a_job_waiting_for_a_dependency_is_not_claimed(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(workers=2)
    first = q.submit([gate("first")])
    assert recorder.gate("first") is not None and recorder.entered["first"].wait(TIMEOUT)
    second = q.submit([mark("second")], depends=[(first, ["success"])])
    assert q.processor.tracked(second) is None
    assert q.explain(second).waiting_for_job == first
    recorder.gate("first").set()
    assert wait_final(q, second).status is OpStatus.SUCCESS
    assert recorder.order == ["second"]


def test_a_request_committed_between_a_claim_and_its_admission_is_applied(
    make_queue: Any, recorder: Recorder
) -> None:
    q = make_queue(workers=1, start=False)
    claimer = q._intake.claimer
    admit = claimer._admit

    def request_first(jobs: list[Job]) -> None:
        for job in jobs:  # another client asks while the claim is not admitted yet
            assert q.store.request_control(job.id, cancel=True) is not None
        admit(jobs)

    claimer._admit = request_first
    job_id = q.submit([mark("never")])
    claimer._admit = admit
    q.pool.resume()
    assert wait_final(q, job_id).status is OpStatus.CANCELED
    assert recorder.order == []
