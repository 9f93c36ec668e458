"""Scenario tests: real jobs through a queue with one worker, checking the order they ran in."""

from __future__ import annotations

import threading
import time
from typing import Any

import pydantic
import pytest

from jobplane.errors import (
    DependencyError,
    JobNotFound,
    OpNotFound,
    QueueDrained,
    QueueFull,
    ValidationError,
)
from jobplane.jobs import OpStatus
from jobplane.operations import OpContext, Registry
from jobplane.operations.builtin import NoopParams

from .conftest import TIMEOUT, Recorder, gate, mark, wait_final, wait_status


def test_lower_priority_number_runs_first_fifo_within(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(start=False)
    plan = [
        ("a", "low"),
        ("b", "normal"),
        ("c", "high"),
        ("d", "normal"),
        ("e", -20),
        ("f", "high"),
    ]
    ids = [q.submit([mark(tag)], priority=prio) for tag, prio in plan]
    q.pool.resume()
    for job_id in ids:
        assert wait_final(q, job_id).status is OpStatus.SUCCESS
    assert recorder.order == ["e", "c", "f", "b", "d", "a"]


def test_high_job_overtakes_a_long_job_between_its_ops(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue()
    long_job = q.submit([gate("g1"), mark("long-2"), mark("long-3")])
    assert recorder.gate("g1") and recorder.entered["g1"].wait(TIMEOUT)
    urgent = q.submit([mark("urgent")], priority="high")
    recorder.gate("g1").set()
    wait_final(q, long_job)
    wait_final(q, urgent)
    assert recorder.order == ["urgent", "long-2", "long-3"]


def test_op_error_fails_the_rest_of_the_job(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue()
    job_id = q.submit([mark("one"), {"op": "rec.fail", "params": {"tag": "two"}}, mark("three")])
    job = wait_final(q, job_id)
    assert job.status is OpStatus.ERROR
    assert [op.status for op in job.ops] == [OpStatus.SUCCESS, OpStatus.ERROR, OpStatus.ERROR]
    assert job.ops[1].result == {"error": "RuntimeError", "message": "two failed on purpose"}
    assert job.ops[2].result == "Preceding operation failed"
    assert recorder.order == ["one"]


def test_invalid_jobs_are_refused_before_queueing(make_queue: Any) -> None:
    q = make_queue()
    with pytest.raises(OpNotFound, match="unknown op 'nope'"):
        q.submit([{"op": "nope"}])
    with pytest.raises(ValidationError, match=r"ops\[0\]: invalid params for op 'rec.mark': tag"):
        q.submit([{"op": "rec.mark", "params": {}}])
    with pytest.raises(ValidationError, match="priority"):
        q.submit([mark("x")], priority=99)
    with pytest.raises(ValidationError, match="non-empty list"):
        q.submit([])
    with pytest.raises(ValidationError, match="duration"):
        q.submit([{"op": "test.delay", "params": {"duration": -1}}])
    with pytest.raises(ValidationError, match="level:name"):
        q.submit([{"op": "test.delay", "params": {"exclusive": ["n1"]}}])
    with pytest.raises(ValidationError, match="no lone surrogates"):
        q.submit([{"op": "test.delay", "params": {"message": "bad \ud800"}}])
    with pytest.raises(DependencyError, match="non-zero integer"):
        q.submit([mark("x")], depends=[(2**63, ["success"])])
    assert q.list(archived=None) == []
    for too_big in (2**63, 2**64):
        with pytest.raises(ValidationError, match="job id must be an integer from 1 to"):
            q.get(too_big)
        with pytest.raises(ValidationError, match="after must be an integer"):
            q.list(after=too_big)
        with pytest.raises(ValidationError, match="since_log_serial"):
            q.wait_for_change(1, too_big, 0)


def test_waiting_job_gets_lock_when_holder_finishes(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(workers=2)
    holder = q.submit([gate("hold", exclusive=["node:n1"])])
    assert recorder.gate("hold") is not None and recorder.entered["hold"].wait(TIMEOUT)
    waiter = q.submit([mark("after", exclusive=["node:n1"])])
    job = wait_status(q, waiter, "waiting")
    assert job.ops[0].status is OpStatus.WAITING
    # the waiting job gave its worker back: the second worker is free for others
    free = q.submit([mark("free")])
    assert wait_final(q, free).status is OpStatus.SUCCESS
    recorder.gate("hold").set()
    assert wait_final(q, waiter).status is OpStatus.SUCCESS
    assert recorder.order == ["free", "after"]
    wait_final(q, holder)


def test_lock_waiters_are_granted_in_priority_order(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(workers=4, lock_timeouts=(5, 5, 60))
    holder = q.submit([gate("hold", exclusive=["node:n1"])])
    assert recorder.gate("hold") is not None and recorder.entered["hold"].wait(TIMEOUT)
    ids = []
    for tag, prio in [("low", "low"), ("normal", "normal"), ("high", "high")]:
        ids.append(q.submit([mark(tag, exclusive=["node:n1"])], priority=prio))
        wait_status(q, ids[-1], "waiting")
    recorder.gate("hold").set()
    for job_id in [holder, *ids]:
        wait_final(q, job_id)
    assert recorder.order == ["high", "normal", "low"]


def test_low_job_escalates_past_a_stream_of_normal_jobs(
    make_queue: Any, recorder: Recorder
) -> None:
    """A steady stream of normal jobs on one lock cannot starve a low job: it escalates."""
    q = make_queue(workers=2, lock_timeouts=(0.05, 0.1, 0.25))
    busy = {"op": "test.delay", "params": {"duration": 0.02, "exclusive": ["node:n1"]}}
    low_done = threading.Event()
    stream: list[int] = []
    ran_out = threading.Event()

    def feeder() -> None:
        deadline = time.monotonic() + 60
        while not low_done.is_set():
            if time.monotonic() > deadline:
                ran_out.set()
                return
            pending = [jid for jid in stream[-4:] if not q.get(jid).is_final]
            if len(pending) < 4:
                stream.append(q.submit([busy]))
            else:
                q.wait_for_change(pending[0], 0, 1.0, since_status=q.get(pending[0]).status)

    stream.append(q.submit([busy]))
    thread = threading.Thread(target=feeder, daemon=True)
    thread.start()
    wait_status(q, stream[0], "running", "success")
    low = q.submit([mark("low", exclusive=["node:n1"])], priority="low")
    try:
        job = q.wait(low, timeout=60)
    finally:
        low_done.set()
        thread.join(TIMEOUT)
    assert not ran_out.is_set(), "the stream ended before the low job got its lock"
    assert job.status is OpStatus.SUCCESS
    # How many steps it needed depends on timing (a waiter that times out leaves the
    # lock queue for a moment); at -20 it waits without timeouts and must be served.
    steps = job.ops[0].escalations
    assert job.ops[0].priority == 10 - steps
    raised = [e.message for e in job.log if "priority raised" in e.message]
    assert len(raised) == steps
    if raised:
        assert "from 10 to 9 after waiting" in raised[0]
    assert len(stream) > 10


def test_job_escalated_to_the_top_is_served_before_normal_waiters(
    make_queue: Any, recorder: Recorder
) -> None:
    q = make_queue(workers=2, lock_timeouts=(0.01, 0.01, 0.02))
    holder = q.submit([gate("hold", exclusive=["node:n1"])])
    assert recorder.gate("hold") is not None and recorder.entered["hold"].wait(TIMEOUT)
    low = q.submit([mark("low", exclusive=["node:n1"])], priority="low")
    serial, deadline = 0, time.monotonic() + TIMEOUT
    while q.get(low).ops[0].priority > -20:
        assert time.monotonic() < deadline, "the waiting job did not escalate to -20"
        change = q.wait_for_change(low, serial, 1.0)
        if change is not None and change.log:
            serial = change.log[-1].serial
    normal = q.submit([mark("normal", exclusive=["node:n1"])])
    wait_status(q, normal, "waiting")
    recorder.gate("hold").set()
    for job_id in (holder, low, normal):
        wait_final(q, job_id)
    assert recorder.order == ["low", "normal"]
    job = q.get(low)
    assert job.ops[0].escalations == 30
    steps = [e.message for e in job.log if "priority raised" in e.message]
    assert steps[0].startswith("priority raised from 10 to 9 after waiting")
    assert steps[-1].startswith("priority raised from -19 to -20")


def test_aging_raises_queued_jobs_one_step_per_interval(make_queue: Any) -> None:
    now = [1000.0]
    q = make_queue(start=False, aging_interval=10.0, clock=lambda: now[0])
    job_id = q.submit([mark("old")], priority="low")
    now[0] += 9.9
    assert q.run_maintenance() == 0
    now[0] += 15.2  # 25.1 s queued: two intervals
    assert q.run_maintenance() == 2
    job = q.get(job_id)
    assert job.priority == 8
    assert job.ops[0].escalations == 1
    assert any("by aging" in e.message for e in job.log)


def test_dependencies_chain_and_outcomes(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(workers=2)
    ids = q.submit_many(
        [
            {"ops": [gate("dep")]},
            {"ops": [mark("needs-success")], "depends": [(-1, ["success"])]},
            {"ops": [{"op": "rec.fail", "params": {"tag": "boom"}}]},
            {
                "ops": [mark("needs-success-of-failed")],
                "depends": [{"job": -1, "statuses": ["success"]}],
            },
            {"ops": [mark("accepts-error")], "depends": [{"job": -2, "statuses": ["error"]}]},
        ]
    )
    assert recorder.gate("dep") is not None and recorder.entered["dep"].wait(TIMEOUT)
    waiting = q.get(ids[1])  # not claimed before its dependency is final: queued in the store
    assert waiting.status is OpStatus.QUEUED and waiting.depends[0].job_id == ids[0]
    explanation = q.explain(ids[1])
    assert explanation.waiting_for_job == ids[0]
    recorder.gate("dep").set()
    assert wait_final(q, ids[1]).status is OpStatus.SUCCESS
    failed = wait_final(q, ids[3])
    assert failed.status is OpStatus.ERROR
    assert f"dependency job {ids[2]} ended with status error" in failed.ops[0].result["message"]
    assert wait_final(q, ids[4]).status is OpStatus.SUCCESS
    assert "needs-success-of-failed" not in recorder.order


def test_canceled_dependency_cancels_the_dependent(make_queue: Any) -> None:
    q = make_queue(start=False)
    first = q.submit([mark("first")])
    second = q.submit([mark("second")], depends=[(first, ["success"])])
    assert q.cancel(first) == (True, f"job {first} canceled")
    q.pool.resume()
    job = wait_final(q, second)
    assert job.status is OpStatus.CANCELED
    assert job.ops[0].result == f"dependency job {first} was canceled"


def test_bad_dependencies_are_refused(make_queue: Any) -> None:
    q = make_queue(start=False)
    with pytest.raises(DependencyError, match="unknown job 42"):
        q.submit([mark("x")], depends=[(42, ["success"])])
    with pytest.raises(DependencyError, match="only valid for a later job"):
        q.submit([mark("x")], depends=[(-1, ["success"])])
    with pytest.raises(ValidationError, match="not a final status"):
        q.submit([mark("x")], depends=[(1, ["running"])])
    next_id = q.submit([mark("x")]) + 1
    with pytest.raises(DependencyError):
        q.submit([mark("self")], depends=[(next_id, ["success"])])


def test_cancel_in_every_state(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(workers=2)
    hold = q.submit([gate("hold", exclusive=["node:n1"])])
    assert recorder.gate("hold") is not None and recorder.entered["hold"].wait(TIMEOUT)
    ok, message = q.cancel(hold)
    assert not ok and "no longer waiting" in message

    waiting = q.submit([mark("w", exclusive=["node:n1"])])
    wait_status(q, waiting, "waiting")
    ok, message = q.cancel(waiting)
    assert ok and "next turn" in message
    assert wait_final(q, waiting).status is OpStatus.CANCELED

    sleeper = q.submit([{"op": "test.delay", "params": {"duration": 60}}])
    wait_status(q, sleeper, "running")
    assert q.cancel(sleeper)[0]
    assert wait_final(q, sleeper).status is OpStatus.CANCELED

    recorder.gate("hold").set()
    wait_final(q, hold)
    ok, message = q.cancel(hold)
    assert not ok and "already finished" in message
    with pytest.raises(JobNotFound):
        q.cancel(10_000)


def test_cancel_queued_job_never_runs(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(start=False)
    job_id = q.submit([mark("never"), mark("never2")])
    assert q.cancel(job_id) == (True, f"job {job_id} canceled")
    q.pool.resume()
    assert q.pool.wait_idle(TIMEOUT)
    job = q.get(job_id)
    assert [op.status for op in job.ops] == [OpStatus.CANCELED, OpStatus.CANCELED]
    assert recorder.order == []


def test_change_priority_in_every_state(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(start=False)
    a = q.submit([mark("a")], priority="low")
    b = q.submit([mark("b")], priority="normal")
    assert q.change_priority(a, "high") == (True, f"job {a} priority changed to high (-10)")
    q.pool.resume()
    wait_final(q, a)
    wait_final(q, b)
    assert recorder.order == ["a", "b"]
    ok, message = q.change_priority(a, "low")
    assert not ok and "already finished" in message

    running = q.submit([gate("g")])
    assert recorder.entered.setdefault("g", __import__("threading").Event()).wait(TIMEOUT)
    ok, message = q.change_priority(running, "high")
    assert not ok and "no pending ops" in message
    recorder.gate("g").set()
    wait_final(q, running)
    with pytest.raises(ValidationError):
        q.change_priority(a, "urgent")


def test_change_priority_of_lock_waiter_reorders_grants(
    make_queue: Any, recorder: Recorder
) -> None:
    q = make_queue(workers=4, lock_timeouts=(5, 5, 60))
    holder = q.submit([gate("hold", exclusive=["node:n1"])])
    assert recorder.gate("hold") is not None and recorder.entered["hold"].wait(TIMEOUT)
    first = q.submit([mark("first", exclusive=["node:n1"])])
    wait_status(q, first, "waiting")
    second = q.submit([mark("second", exclusive=["node:n1"])])
    wait_status(q, second, "waiting")
    assert q.change_priority(second, "high")[0]
    # The change takes the job out of the lock queue and back into the pool; its
    # status stays "waiting" throughout, so wait until it is queued in the lock again.
    wait_lock_waiters(q, "node:n1", [second, first])
    recorder.gate("hold").set()
    for job_id in (holder, first, second):
        wait_final(q, job_id)
    assert recorder.order == ["second", "first"]


def wait_lock_waiters(q: Any, lock: str, owners: list[int]) -> None:
    """Poll (with a timeout) until the lock's waiters are ``owners``, in grant order."""
    level, _, name = lock.partition(":")
    deadline = time.monotonic() + TIMEOUT
    pause = threading.Event()
    while True:
        waiters = [
            owner
            for info in q.lock_info()
            if info.level == level and info.name == name
            for _, _, owner in info.pending
        ]
        if waiters == owners:
            return
        assert time.monotonic() < deadline, f"{lock} waiters stayed {waiters}, wanted {owners}"
        pause.wait(0.005)  # lock grants send no notification: look again shortly


def test_explain_names_the_lock_holder(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(workers=2, lock_timeouts=(5, 5, 60))
    holder = q.submit([gate("hold", exclusive=["node:n1"])])
    assert recorder.gate("hold") is not None and recorder.entered["hold"].wait(TIMEOUT)
    waiter = q.submit([mark("w", exclusive=["node:n1"])])
    wait_status(q, waiter, "waiting")
    explanation = q.explain(waiter)
    assert explanation.waiting_for_locks[0]["holders"][0]["job"] == holder
    assert any("lock node:n1" in r and f"job {holder}" in r for r in explanation.reasons)
    recorder.gate("hold").set()
    wait_final(q, waiter)


def test_explain_gives_queue_position(make_queue: Any) -> None:
    q = make_queue(start=False)
    q.submit([mark("h")], priority="high")
    q.submit([mark("n1")])
    mine = q.submit([mark("n2")])
    explanation = q.explain(mine)
    assert explanation.ahead == {"higher_priority": 1, "same_priority": 1}
    assert "queued at priority normal (0)" in explanation.reasons[0]


def test_wait_for_change_sees_log_and_status(make_queue: Any, recorder: Recorder) -> None:
    q = make_queue(start=False)
    job_id = q.submit([{"op": "test.delay", "params": {"message": "hello"}}])
    assert q.wait_for_change(job_id, 0, 0.05) is None
    q.pool.resume()
    change = q.wait_for_change(job_id, 0, TIMEOUT)
    assert change is not None
    final = wait_final(q, job_id)
    assert [e.message for e in final.log] == ["hello"]
    assert final.log[0].serial == 1
    # A finished job never changes again: waiting for a change returns at once.
    start = time.monotonic()
    assert q.wait_for_change(job_id, 1, 20) is None
    assert q.wait_for_change(job_id, 1, 20, since_status="success") is None
    assert time.monotonic() - start < 10, "waited for a finished job to change"
    change = q.wait_for_change(job_id, 0, 20, since_status="running")
    assert change is not None and change.job.status is OpStatus.SUCCESS


def test_drain_limit_and_archive(make_queue: Any) -> None:
    q = make_queue(max_jobs=2)
    first = q.submit([mark("1")])
    q.submit([mark("2")])
    with pytest.raises(QueueFull):
        q.submit([mark("3")])
    wait_final(q, first)
    q.archive(first)
    assert q.get(first).archived
    assert first not in [j.id for j in q.list()]
    q.set_drained(True)
    with pytest.raises(QueueDrained):
        q.submit([mark("4")])
    q.set_drained(False)
    q.submit([mark("4")])


def test_oldest_queued_is_the_first_job_still_waiting_for_a_worker(make_queue: Any) -> None:
    q = make_queue(start=False)
    assert q.processor.oldest_queued() is None
    first, second = q.submit([mark("a")]), q.submit([mark("b")])
    assert q.processor.oldest_queued() == q.get(first).received_at
    assert q.cancel(first)[0]
    assert q.processor.oldest_queued() == q.get(second).received_at
    q.pool.resume()
    wait_final(q, second)
    assert q.processor.oldest_queued() is None


def test_values_json_cannot_carry_are_refused_in_params_and_results(make_queue: Any) -> None:
    class Anything(pydantic.BaseModel):
        value: Any = None

    registry = Registry()
    registry.add("t.echo", lambda ctx, p: p.value, params=Anything)
    registry.add("t.object", lambda ctx, p: object(), params=Anything)
    q = make_queue(registry=registry)
    with pytest.raises(ValidationError, match="numbers must be finite"):
        q.submit([{"op": "t.echo", "params": {"value": [1.0, float("nan")]}}])
    with pytest.raises(ValidationError, match="no lone surrogates"):
        q.submit([{"op": "t.echo", "params": {"value": {"k": "\ud800"}}}])

    def echo_later(ctx: OpContext, params: Anything) -> Any:
        return {"inf": float("inf")}

    registry.add("t.inf", echo_later, params=Anything)
    for op, message in (("t.inf", "finite"), ("t.object", "object is not a JSON type")):
        job = wait_final(q, q.submit([{"op": op}]))
        assert job.status is OpStatus.ERROR
        assert job.ops[0].result["error"] == "InvalidResult"
        assert message in job.ops[0].result["message"]


def test_a_handler_without_a_params_argument_is_called_with_the_context_only(
    make_queue: Any,
) -> None:
    registry = Registry()

    @registry.op("t.bare")
    def bare(ctx: OpContext) -> str:
        return f"job {ctx.job_id}"

    with pytest.raises(ValueError, match="takes no params argument"):
        registry.add("t.wrong", bare, params=NoopParams)
    q = make_queue(registry=registry)
    job_id = q.submit([{"op": "t.bare"}])
    assert wait_final(q, job_id).ops[0].result == f"job {job_id}"
    with pytest.raises(ValidationError, match=r"invalid params for op 't\.bare'"):
        q.submit([{"op": "t.bare", "params": {"x": 1}}])


def test_idle_job_locks_are_pruned_and_made_again_on_demand(make_queue: Any) -> None:
    q = make_queue(aging_interval=0)
    delay = {"op": "test.delay", "params": {"exclusive": ["node:n1", "instance:i1"]}}
    asked: list[tuple[str, float]] = []
    prune = q.locks.prune
    q.locks.prune = lambda level, older_than=1.0: asked.append((level, older_than)) or 0
    q.run_maintenance()
    assert asked == [("node", 1.0), ("instance", 1.0)]
    q.locks.prune = prune

    # A prune that lands between a job making its lock and taking it: the
    # request makes it again (up to CREATE_RETRIES times), then the op fails cleanly.
    make = q.locks._make_missing_unlocked
    prunes = [1]

    def make_then_prune(req: Any, may_queue: bool) -> bool:
        made = make(req, may_queue)
        if made and prunes[0] > 0:
            prunes[0] -= 1
            assert q.locks.prune(req.level, older_than=-1) >= 1  # even the lock just made
        return made

    q.locks._make_missing_unlocked = make_then_prune  # type: ignore[method-assign]
    assert wait_final(q, q.submit([delay])).status is OpStatus.SUCCESS
    assert prunes == [0]
    prunes[0] = 1000
    failed = wait_final(q, q.submit([delay]))
    assert failed.status is OpStatus.ERROR
    assert failed.ops[0].result["error"] == "LockError"
    assert "add it first" in failed.ops[0].result["message"]
    prunes[0] = 0
    assert wait_final(q, q.submit([delay])).status is OpStatus.SUCCESS

    q.close()  # every turn is over: the jobs' locks are released
    assert {i.name for i in q.lock_info() if i.level != "cluster"} == {"n1", "i1"}
    assert q.locks.prune("node", older_than=3600) == 0  # made less than an hour ago: kept
    assert q.locks.prune("node", older_than=-1) + q.locks.prune("instance", older_than=-1) == 2
    assert [i.level for i in q.lock_info()] == ["cluster"]


def test_pruning_all_the_time_never_breaks_mutual_exclusion(make_queue: Any) -> None:
    class Name(pydantic.BaseModel):
        name: str

    inside: dict[str, int] = {}
    guard = threading.Lock()
    violations: list[str] = []

    def exclusive(ctx: OpContext, params: Name) -> None:
        with guard:
            inside[params.name] = inside.get(params.name, 0) + 1
            if inside[params.name] != 1:
                violations.append(params.name)
        time.sleep(0)  # let another worker run while this one is inside
        with guard:
            inside[params.name] -= 1

    registry = Registry()
    registry.add("t.exclusive", exclusive, params=Name, locks=lambda p: {"node": [p.name]})
    q = make_queue(registry=registry, workers=4, aging_interval=0)
    stop = threading.Event()
    pruned = [0]

    def prune_forever() -> None:
        while not stop.wait(0.0005):  # pacing, not synchronisation: prune ~1000 times/s
            pruned[0] += q.locks.prune("node", older_than=0.01)

    pruner = threading.Thread(target=prune_forever)
    pruner.start()
    try:
        ids = q.submit_many(
            [{"ops": [{"op": "t.exclusive", "params": {"name": f"n{i % 7}"}}]} for i in range(300)]
        )
        finals = [wait_final(q, job_id) for job_id in ids]
    finally:
        stop.set()
        pruner.join(TIMEOUT)
    assert violations == []
    assert [job.id for job in finals if job.status is not OpStatus.SUCCESS] == []
    assert pruned[0] > 0, "the pruner never found an idle lock: the test tested nothing"


def test_submit_each_accepts_or_refuses_each_job_as_if_alone(make_queue: Any) -> None:
    q = make_queue(start=False, max_jobs=3)
    q.submit([mark("already")])
    outcomes = q.submit_each(
        [
            {"ops": [mark("a")]},
            {"ops": [{"op": "no.such.op"}]},
            {"ops": [mark("b")], "depends": [(999, ["success"])]},
            {"ops": [mark("c")]},
            {"ops": [mark("d")]},  # the limit of 3 unarchived jobs is reached by then
        ]
    )
    a, unknown_op, unknown_dependency, c, full = outcomes
    assert isinstance(a, int) and isinstance(c, int) and a < c
    assert isinstance(unknown_op, OpNotFound)
    assert isinstance(unknown_dependency, DependencyError)
    assert str(unknown_dependency) == "the job depends on unknown job 999"  # not "in the batch"
    assert isinstance(full, QueueFull)
    assert "holds 3 unarchived jobs, the limit is 3" in str(full)
    assert [q.get(job_id).status for job_id in (a, c)] == [OpStatus.QUEUED, OpStatus.QUEUED]


def test_submit_each_commits_jobs_that_all_pass_together(
    make_queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = make_queue(start=False)
    inserts: list[int] = []  # jobs per insert, claimed with it or not
    insert_jobs = q.store.insert_jobs
    insert_and_claim = q.store.insert_and_claim

    def counting(jobs: Any, **options: Any) -> list[int]:
        inserts.append(len(jobs))
        return insert_jobs(jobs, **options)  # type: ignore[no-any-return]

    def counting_claim(jobs: Any, **options: Any) -> Any:
        inserts.append(len(jobs))
        return insert_and_claim(jobs, **options)

    monkeypatch.setattr(q.store, "insert_jobs", counting)
    monkeypatch.setattr(q.store, "insert_and_claim", counting_claim)
    ids = q.submit_each([{"ops": [mark(tag)], "priority": "high"} for tag in "abc"])
    assert inserts == [3]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
    assert all(q.get(job_id).priority == -10 for job_id in ids)
