"""Two daemons on one store: claim, fence, lease (issue 10).

Two JobQueues share one InMemoryStore database and one LockManager (as the
elected lock scheduler would be shared). Time is a ManualClock, so leases
expire exactly when a test moves it; waits are on events, with timeouts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from jobplane.errors import LeaseLost
from jobplane.jobs import DAEMON_LOST, OpStatus
from jobplane.locking import LockManager
from jobplane.operations import OpContext, Registry
from jobplane.queue import JobQueue
from jobplane.testing import InMemoryStore, ManualClock, MemoryDatabase

TIMEOUT = 15.0
LEASE_S = 15.0


class Params(pydantic.BaseModel):
    tag: str
    node: str = ""


class Ops:
    """Ops that record where they ran, check a lock is never held twice, and gates."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.runs: dict[str, list[str]] = {}  # tag -> the daemons that ran it
        self.holding: dict[str, int] = {}  # node -> ops running under its lock now
        self.overlaps: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}
        self.registry = Registry()
        self.registry.add("two.mark", self._mark, locks=_node_lock)
        self.registry.add("two.gate", self._gate, locks=_node_lock)
        self.registry.add("two.again", self._gate, locks=_node_lock, retry_on_crash=True)
        self.registry.add("two.coop", self._cooperative)  # checks for cancel; not `cancellable`

    def gate(self, tag: str) -> threading.Event:
        with self.mutex:
            self.entered.setdefault(tag, threading.Event())
            return self.gates.setdefault(tag, threading.Event())

    def _record(self, ctx: OpContext, params: Params) -> None:
        with self.mutex:
            self.runs.setdefault(params.tag, []).append(threading.current_thread().name)
            if params.node:
                self.holding[params.node] = self.holding.get(params.node, 0) + 1
                if self.holding[params.node] > 1:
                    self.overlaps.append(params.tag)

    def _leave(self, params: Params) -> None:
        if params.node:
            with self.mutex:
                self.holding[params.node] -= 1

    def _mark(self, ctx: OpContext, params: Params) -> str:
        self._record(ctx, params)
        self._leave(params)
        return params.tag

    def _gate(self, ctx: OpContext, params: Params) -> str:
        event = self.gate(params.tag)
        self._record(ctx, params)
        self.entered[params.tag].set()
        try:
            if not event.wait(TIMEOUT):
                raise TimeoutError(f"gate {params.tag} was never opened")
        finally:
            self._leave(params)
        return params.tag

    def _cooperative(self, ctx: OpContext, params: Params) -> str:
        event = self.gate(params.tag)
        ctx.check_cancel()  # from here on the op cooperates
        self.entered[params.tag].set()
        if not event.wait(TIMEOUT):
            raise TimeoutError(f"gate {params.tag} was never opened")
        ctx.check_cancel()
        return params.tag


def _node_lock(params: Any) -> dict[str, list[str]]:
    return {"node": [params.node]} if params.node else {}


def op(name: str, tag: str, node: str = "") -> dict[str, Any]:
    return {"op": name, "params": {"tag": tag, "node": node}}


class Pair:
    def __init__(self, ops: Ops) -> None:
        self.clock = ManualClock()
        self.database = MemoryDatabase()
        self.locks = LockManager(levels=ops.registry.levels)
        self.ops = ops
        self.a = self.queue()
        self.b = self.queue()

    def queue(self, workers: int = 2) -> JobQueue:
        store = InMemoryStore(self.database, clock=self.clock.wall, lease_s=LEASE_S)
        return JobQueue(
            store,
            self.ops.registry,
            workers=workers,
            aging_interval=0,
            clock=self.clock,
            wall=self.clock.wall,
            timers=self.clock,
            locks=self.locks,
            cancel_wait=TIMEOUT,  # a remote cancel waits for the owner: answers do not race
        )

    def heartbeats(self, queue: JobQueue, times: int = 4) -> None:
        """Move the clock a heartbeat interval at a time; only ``queue`` renews its lease."""
        for _ in range(times):
            self.clock.advance(LEASE_S / 3 + 0.1)
            queue._intake.claimer.run_once()


@pytest.fixture
def pair() -> Iterator[Pair]:
    ops = Ops()
    made = Pair(ops)
    yield made
    for event in ops.gates.values():
        event.set()
    for q in (made.a, made.b):
        q.close()


def owner_of(q: JobQueue, job_id: int) -> int | None:
    return q.store.load(job_id).owner


def test_every_job_runs_once_and_a_lock_is_never_held_by_both(pair: Pair) -> None:
    ids = []
    for i in range(40):
        q = pair.a if i % 2 else pair.b
        ids.append(q.submit([op("two.mark", f"j{i}", node=f"n{i % 3}")]))
    for job_id in ids:
        assert pair.a.wait(job_id, timeout=TIMEOUT).status is OpStatus.SUCCESS
    assert sorted(pair.ops.runs) == sorted(f"j{i}" for i in range(40))
    assert all(len(daemons) == 1 for daemons in pair.ops.runs.values())
    assert pair.ops.overlaps == []


def test_a_daemon_that_stops_heartbeating_loses_its_jobs_to_the_other(pair: Pair) -> None:
    a, b = pair.a, pair.b
    once = a.submit([op("two.gate", "once", node="n1")])
    again = a.submit([op("two.again", "again", node="n2")])
    for tag in ("once", "again"):
        pair.ops.gate(tag)
        assert pair.ops.entered[tag].wait(TIMEOUT)
    queued = a.submit([op("two.mark", "queued", node="n1")])  # claimed by a, waits for n1
    a_id = a._intake.claimer.daemon_id
    assert owner_of(a, once) == owner_of(a, queued) == a_id

    a._intake.stop(unregister=False)  # a hangs: no more heartbeats, its ops still running
    pair.heartbeats(b)  # past a's lease; b renews its own and reclaims in the pass

    lost = b.get(once)  # reclaimed under the crash rules in b's pass
    assert lost.status is OpStatus.ERROR
    assert lost.ops[0].result == {"error": "Crash", "message": DAEMON_LOST}
    assert b.get(again).status in (OpStatus.QUEUED, OpStatus.WAITING)  # it runs again
    # a is hung but its ops still hold n1 and n2: b's jobs wait for them, never sharing
    assert owner_of(b, queued) == owner_of(b, again) == b._intake.claimer.daemon_id

    # a's late writes are refused: its copy's fence is stale
    stale = a.processor.tracked(once)
    assert stale is not None and stale.owner == a_id
    with pytest.raises(LeaseLost):
        a.store.save(stale.clone())
    pair.ops.gates["once"].set()  # a's ops end now: a records nothing, drops the jobs and
    pair.ops.gates["again"].set()  # lets their locks go
    assert b.wait(queued, timeout=TIMEOUT).status is OpStatus.SUCCESS
    assert b.wait(again, timeout=TIMEOUT).status is OpStatus.SUCCESS
    assert a.pool.wait_idle(TIMEOUT)
    assert a.processor.tracked(once) is None and a.processor.tracked(again) is None
    assert b.get(once).ops[0].result == {"error": "Crash", "message": DAEMON_LOST}
    assert len(pair.ops.runs["once"]) == 1  # it never ran twice
    assert len(pair.ops.runs["queued"]) == 1
    assert len(pair.ops.runs["again"]) == 2  # retry_on_crash: on a, then on b
    assert pair.ops.overlaps == []


def test_control_of_a_job_the_other_daemon_holds_goes_through_the_store(pair: Pair) -> None:
    a, b = pair.a, pair.b
    holder = a.submit([op("two.gate", "holder", node="n1")])
    pair.ops.gate("holder")
    assert pair.ops.entered["holder"].wait(TIMEOUT)
    waiter = a.submit([op("two.mark", "waiter", node="n1")])
    assert owner_of(a, waiter) == a._intake.claimer.daemon_id
    assert b.processor.tracked(waiter) is None

    assert b.change_priority(waiter, "high") == (
        True,
        f"job {waiter} priority changed to high (-10)",
    )
    assert a.get(waiter).priority == -10  # a applied it (from its listener) and cleared it
    assert a.store.load(waiter).requests.pending is False
    # a waits for n1: b waits (on its listener) while a kicks it out of the wait and ends it
    assert b.cancel(waiter) == (True, f"job {waiter} canceled")
    assert a.wait(waiter, timeout=TIMEOUT).status is OpStatus.CANCELED
    assert b.cancel(holder) == (
        False,
        f"job {holder} is no longer waiting in the queue: op 0 (two.gate) is running "
        "and does not check for cancellation",
    )
    pair.ops.gates["holder"].set()
    assert b.wait(holder, timeout=TIMEOUT).status is OpStatus.SUCCESS
    assert "waiter" not in pair.ops.runs


def test_a_cooperative_running_op_is_canceled_through_the_other_daemon(pair: Pair) -> None:
    a, b = pair.a, pair.b
    job_id = a.submit([op("two.coop", "coop"), op("two.mark", "after")])
    pair.ops.gate("coop")
    assert pair.ops.entered["coop"].wait(TIMEOUT)  # it has called check_cancel once
    assert owner_of(a, job_id) == a._intake.claimer.daemon_id
    assert a.store.load(job_id).ops[0].cooperative  # stored, so b need not ask a

    assert b.cancel(job_id) == (
        True,
        f"job {job_id} will be canceled at its running op's next check",
    )  # the words a's own processor says (test_cancel.py)
    assert [op.status for op in b.get(job_id).ops] == [OpStatus.CANCELING] * 2
    pair.ops.gates["coop"].set()
    job = b.wait(job_id, timeout=TIMEOUT)
    assert [op.status for op in job.ops] == [OpStatus.CANCELED] * 2
    assert "after" not in pair.ops.runs


def _busy(pair: Pair, q: JobQueue, workers: int = 2) -> None:
    """Hold every worker of ``q`` with a gate op, so what it claims next waits in its pool."""
    for i in range(workers):
        q.submit([op("two.gate", f"busy{i}")])
        pair.ops.gate(f"busy{i}")
        assert pair.ops.entered[f"busy{i}"].wait(TIMEOUT)


class SlowOwner:
    """Stands in for ``a``'s store listener: holds back what ``a`` hears of job ``job_id``."""

    def __init__(self, q: JobQueue, job_id: int) -> None:
        self.heard = q._control.heard
        self.job_id = job_id
        self.held = threading.Event()

    def __call__(self, job_id: int) -> None:
        if job_id == self.job_id and not self.held.is_set():
            self.held.set()  # a learns of it only when the test says so
            return
        self.heard(job_id)

    def hears_it_now(self) -> None:
        self.heard(self.job_id)


def test_a_queued_job_the_other_daemon_holds_is_canceled_as_if_locally(pair: Pair) -> None:
    a, b = pair.a, pair.b
    _busy(pair, a)
    queued = a.submit([op("two.mark", "queued")])
    twin = a.submit([op("two.mark", "twin")])
    assert owner_of(a, queued) == owner_of(a, twin) == a._intake.claimer.daemon_id
    assert a.processor.tracked(queued) is not None  # claimed: in a's pool, not started

    assert a.cancel(twin) == (True, f"job {twin} canceled")  # what a says of its own job
    assert b.cancel(queued) == (True, f"job {queued} canceled")  # b says the same
    assert [op.status for op in b.get(queued).ops] == [OpStatus.CANCELED]
    assert "queued" not in pair.ops.runs


def test_a_remote_cancel_answers_once_the_owner_applies_it_within_the_wait(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair.a, pair.b
    _busy(pair, a)
    queued = a.submit([op("two.mark", "queued")])
    assert a.processor.tracked(queued) is not None
    owner = SlowOwner(a, queued)
    monkeypatch.setattr(a._control, "heard", owner)
    b._control.cancel_wait = 4 * TIMEOUT  # only hearing the change ends b's wait in time
    answers: list[tuple[bool, str]] = []
    asking = threading.Thread(target=lambda: answers.append(b.cancel(queued)))
    asking.start()
    assert owner.held.wait(TIMEOUT)  # b's request is stored; a has not acted on it yet
    assert a.store.load(queued).status is OpStatus.QUEUED
    owner.hears_it_now()  # a cancels it; b, waiting on its listener, hears the outcome
    asking.join(TIMEOUT)
    assert answers == [(True, f"job {queued} canceled")]


def test_a_remote_cancel_the_owner_is_slow_to_apply_will_happen_at_its_next_turn(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair.a, pair.b
    _busy(pair, a)
    queued = a.submit([op("two.mark", "queued")])
    owner = SlowOwner(a, queued)
    monkeypatch.setattr(a._control, "heard", owner)
    b._control.cancel_wait = 0.0  # a does not apply it within b's wait

    assert b.cancel(queued) == (True, f"job {queued} will be canceled at its next turn")
    assert owner.held.is_set()
    assert a.store.load(queued).requests.cancel  # recorded, waiting for a
    owner.hears_it_now()
    assert a.wait(queued, timeout=TIMEOUT).status is OpStatus.CANCELED
    assert "queued" not in pair.ops.runs


def test_a_remote_cancel_the_owner_refuses_gets_the_owners_refusal(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair.a, pair.b
    job_id = a.submit([op("two.gate", "late")])
    pair.ops.gate("late")
    assert pair.ops.entered["late"].wait(TIMEOUT)
    # b read the op before it started (queued), and a applies the request only now, when
    # the op runs and does not cooperate: a refuses, and so does b, in a's words
    _reads_it_queued_once(b, job_id, monkeypatch)
    b._control.cancel_wait = 0.0

    assert b._control.cancel(job_id) == (  # b's cancel after it checked the job exists
        False,
        f"job {job_id} is no longer waiting in the queue: op 0 (two.gate) is running "
        "and does not check for cancellation",
    )
    assert not a.store.load(job_id).requests.cancel  # a applied (refused) and cleared it
    pair.ops.gates["late"].set()
    assert a.wait(job_id, timeout=TIMEOUT).status is OpStatus.SUCCESS


def test_a_remote_cancel_the_owner_accepts_for_an_op_started_meanwhile_says_so(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair.a, pair.b
    job_id = a.submit([op("two.coop", "started")])
    pair.ops.gate("started")
    assert pair.ops.entered["started"].wait(TIMEOUT)
    _reads_it_queued_once(b, job_id, monkeypatch)  # b read it before the op started
    b._control.cancel_wait = 0.0  # and the op does not check again within b's wait

    assert b._control.cancel(job_id) == (
        True,
        f"job {job_id} will be canceled at its running op's next check",
    )
    pair.ops.gates["started"].set()
    assert a.wait(job_id, timeout=TIMEOUT).status is OpStatus.CANCELED


def _reads_it_queued_once(q: JobQueue, job_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``q``'s next read of the job sees its op queued, as it was before it started."""
    stale = q.store.load(job_id).clone()
    stale.ops[0].status, stale.ops[0].cooperative = OpStatus.QUEUED, False
    loads = iter([stale])
    load = q.store.load
    monkeypatch.setattr(q.store, "load", lambda i, **kw: next(loads, None) or load(i, **kw))
