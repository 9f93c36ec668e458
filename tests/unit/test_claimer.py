"""engine.Claimer: lease, reclaim and claim, on an InMemoryStore with a manual clock."""

from __future__ import annotations

from jobplane.engine.claimer import Claimer
from jobplane.jobs import DAEMON_LOST, Job, OpState, OpStatus
from jobplane.testing import InMemoryStore, ManualClock, MemoryDatabase

LEASE_S = 15.0


class Daemon:
    """The engine's side of a claimer: what it holds, how much it wants."""

    def __init__(self, store: InMemoryStore, clock: ManualClock, capacity: int = 2) -> None:
        self.store = store
        self.capacity = capacity
        self.held: dict[int, Job] = {}
        self.lost_calls = 0
        self.claimer = Claimer(
            store,
            wanted=lambda: self.capacity - len(self.held),
            admit=self.admit,
            retry_on_crash=lambda name: {"retry": True, "once": False}.get(name),
            on_lease_lost=self.lost,
            clock=clock.monotonic,
            wall=clock.wall,
        )

    def admit(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.held[job.id] = job

    def lost(self) -> None:
        self.lost_calls += 1
        self.held.clear()

    def start_all(self) -> None:
        for job in self.held.values():
            job.ops[0].status, job.ops[0].started_at = OpStatus.RUNNING, 1.0
            self.store.save(job)


def make_store(clock: ManualClock, database: MemoryDatabase) -> InMemoryStore:
    return InMemoryStore(database, clock=clock.wall, lease_s=LEASE_S)


def submit(store: InMemoryStore, op: str = "retry", priority: int = 0) -> int:
    job = Job(id=0, ops=[OpState(op, {}, priority=priority)], received_at=0.0)
    return store.insert_jobs([job], max_unarchived=None)[0]


def test_a_pass_claims_what_the_daemon_wants_in_order() -> None:
    clock, database = ManualClock(), MemoryDatabase()
    store = make_store(clock, database)
    low, high, normal = (submit(store, priority=p) for p in (10, -10, 0))
    daemon = Daemon(store, clock, capacity=2)

    assert daemon.claimer.run_once() == 2
    assert sorted(daemon.held) == sorted([high, normal])
    assert daemon.claimer.run_once() == 0  # it wants nothing more
    daemon.held.pop(high)
    assert daemon.claimer.run_once() == 1
    assert low in daemon.held


def test_a_lost_daemons_jobs_are_reclaimed_under_the_crash_rules() -> None:
    clock, database = ManualClock(), MemoryDatabase()
    store_a = make_store(clock, database)
    retry, once = submit(store_a, "retry"), submit(store_a, "once")
    a = Daemon(store_a, clock)
    a.claimer.run_once()
    a.start_all()
    b = Daemon(make_store(clock, database), clock, capacity=0)
    b.claimer.register()

    for _ in range(4):  # b heartbeats; a, stopped, does not
        clock.advance(LEASE_S / 3)
        b.claimer.run_once()

    assert store_a.load(retry).status is OpStatus.QUEUED  # runs again, wherever claimed
    assert store_a.load(retry).owner is None
    lost = store_a.load(once)
    assert lost.status is OpStatus.ERROR
    assert lost.ops[0].result == {"error": "Crash", "message": DAEMON_LOST}
    b.capacity = 5
    b.claimer.run_once()
    assert list(b.held) == [retry]  # the lost op does not run twice


def test_a_daemon_that_lost_its_lease_drops_its_jobs_and_starts_anew() -> None:
    clock, database = ManualClock(), MemoryDatabase()
    store = make_store(clock, database)
    job_id = submit(store)
    daemon = Daemon(store, clock)
    daemon.claimer.run_once()
    first_id = daemon.claimer.daemon_id

    clock.advance(LEASE_S + 1)  # a pause longer than the lease
    daemon.claimer.run_once()

    assert daemon.lost_calls == 1
    assert daemon.claimer.daemon_id != first_id
    daemon.claimer.run_once()  # the new incarnation reclaimed the old one's job, and claims it
    assert list(daemon.held) == [job_id]
    assert daemon.held[job_id].fence == 3  # claimed, reclaimed, claimed again


def test_stopping_ends_the_lease_so_another_daemon_reclaims_at_once() -> None:
    clock, database = ManualClock(), MemoryDatabase()
    a = Daemon(make_store(clock, database), clock)
    job_id = submit(a.store)
    a.claimer.run_once()
    a.claimer.stop()

    b = Daemon(make_store(clock, database), clock)
    b.claimer.run_once()  # no waiting for a's lease to run out
    assert list(b.held) == [job_id]


def test_a_submission_during_a_pass_claims_its_job_beside_it() -> None:
    """Concurrent claims: one job beside the pass, in the submission's own write."""
    clock, database = ManualClock(), MemoryDatabase()
    store = make_store(clock, database)
    daemon = Daemon(store, clock, capacity=4)
    daemon.claimer.register()
    submitted: list[int] = []
    limits: list[int] = []

    def claim_on_submit(daemon_id: int, limit: int) -> list[Job]:
        limits.append(limit)
        job = Job(id=0, ops=[OpState("retry", {})], received_at=0.0)
        ids, claimed = store.insert_and_claim(
            [job], max_unarchived=None, daemon_id=daemon_id, limit=limit
        )
        submitted.extend(ids)
        return claimed

    def admit_and_submit(jobs: list[Job]) -> None:  # a submission while the pass admits
        daemon.admit(jobs)
        if not limits:
            assert daemon.claimer.claim_with(claim_on_submit)

    submit(store)
    daemon.claimer._admit = admit_and_submit
    assert daemon.claimer.run_once() == 1
    assert limits == [1]  # beside the pass: one job, whatever is wanted
    assert sorted(daemon.held) == sorted([1, *submitted])
    assert daemon.claimer.kicked()  # more is wanted: the next pass claims it
    daemon.claimer._admit = daemon.admit
    assert daemon.claimer.claim_with(claim_on_submit)  # no pass: all that is wanted
    assert limits == [1, 2]
    assert len(daemon.held) == 3
