"""The store as the schedule (guarantees 5 and 8 to 13 of ``jobplane.stores.base``).

Daemons, leases, claims in schedule order with aging, dependencies,
fencing, reclaim and control requests, checked against every store. Time
is the ``clock`` fixture (a ManualClock): nothing here sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from jobplane import priorities
from jobplane.errors import JobNotFound, LeaseLost, StoreConflict
from jobplane.jobs import Dependency, Job, OpStatus
from jobplane.stores import Store
from jobplane.testing import ManualClock

MakeJob = Callable[..., Job]
Damage = Callable[[int, "str | bytes"], None]
OpenStore = Callable[..., Store]
WAIT = 10.0
LEASE_S = 15.0  # what conftest's open_new gives every store
INTERVAL = 60.0  # the aging interval conftest's open_new gives every store


def insert(store: Store, *jobs: Job) -> list[int]:
    return store.insert_jobs(list(jobs), max_unarchived=None)


def claimed_ids(store: Store, daemon: int, limit: int = 100) -> list[int]:
    return [job.id for job in store.claim(daemon, limit)]


def finish(job: Job, status: OpStatus = OpStatus.SUCCESS) -> Job:
    for op in job.ops:
        op.status, op.ended_at = status, 2000.0
    job.ended_at = 2000.0
    return job


# -- guarantee 8: daemons and leases ---------------------------------------


def test_daemons_get_new_ids_and_epochs_counted_per_name(store: Store) -> None:
    first = store.register_daemon("alpha")
    other = store.register_daemon("beta")
    again = store.register_daemon("alpha")

    assert len({first.daemon_id, other.daemon_id, again.daemon_id}) == 3
    assert (first.epoch, other.epoch, again.epoch) == (1, 1, 2)


def test_heartbeat_extends_the_lease(store: Store, clock: ManualClock) -> None:
    daemon = store.register_daemon().daemon_id
    for _ in range(5):
        clock.advance(LEASE_S * 0.8)
        store.heartbeat(daemon)
    assert store.claim(daemon, 1) == []  # still live long after its first lease


def test_a_lease_that_expired_is_lost_for_good(store: Store, clock: ManualClock) -> None:
    daemon = store.register_daemon().daemon_id
    clock.advance(LEASE_S + 0.001)
    with pytest.raises(LeaseLost):
        store.heartbeat(daemon)
    with pytest.raises(LeaseLost):
        store.claim(daemon, 1)
    with pytest.raises(LeaseLost):
        store.heartbeat(daemon)  # no way back


def test_unregister_ends_the_lease_at_once(store: Store) -> None:
    daemon = store.register_daemon().daemon_id
    store.unregister_daemon(daemon)
    store.unregister_daemon(daemon)  # idempotent
    with pytest.raises(LeaseLost):
        store.heartbeat(daemon)


# -- guarantee 9: claims in schedule order -----------------------------------


def test_claim_takes_ready_jobs_by_priority_then_id(store: Store, make_job: MakeJob) -> None:
    ids = insert(store, *[make_job(priority=p) for p in (10, 0, -10, 0, 19, -20)])
    daemon = store.register_daemon().daemon_id

    assert claimed_ids(store, daemon, 3) == [ids[5], ids[2], ids[1]]
    assert claimed_ids(store, daemon, 10) == [ids[3], ids[0], ids[4]]
    assert store.claim(daemon, 10) == []


def test_a_claimed_job_is_owned_and_fenced(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    daemon = store.register_daemon().daemon_id
    [job] = store.claim(daemon, 1)

    assert (job.id, job.owner, job.fence, job.version) == (job_id, daemon, 1, 2)
    loaded = store.load(job_id)
    assert (loaded.owner, loaded.fence, loaded.version) == (daemon, 1, 2)


def test_an_unreadable_ready_job_is_never_claimed_and_ends_in_error(
    store: Store, make_job: MakeJob, damage: Damage
) -> None:
    first, spoiled, last = insert(store, make_job(), make_job(), make_job())
    damage(spoiled, "{")
    daemon = store.register_daemon().daemon_id

    assert [job.id for job in store.claim(daemon, 3)] == [first, last]
    assert store.counts() == {(OpStatus.QUEUED, 0): 2, (OpStatus.ERROR, 0): 1}  # before a read
    assert [found.job_id for found in store.quarantined()] == [spoiled]
    job = store.load(spoiled)
    assert (job.status, job.is_final, job.owner) == (OpStatus.ERROR, True, None)
    assert store.claim(daemon, 3) == []  # nor later


def test_insert_and_claim_claims_in_schedule_order_with_the_new_jobs(
    store: Store, make_job: MakeJob
) -> None:
    [older] = insert(store, make_job(priority=10))
    daemon = store.register_daemon().daemon_id

    ids, claimed = store.insert_and_claim(
        [make_job(priority=0), make_job(priority=19), make_job(depends=[older])],
        max_unarchived=None,
        daemon_id=daemon,
        limit=2,
    )

    assert [job.id for job in claimed] == [ids[0], older]  # a waiting dependant is not ready
    assert all(store.load(job.id).owner == daemon for job in claimed)
    assert store.load(ids[1]).owner is None
    assert claimed_ids(store, daemon) == [ids[1]]


def test_insert_and_claim_behind_a_backlog_takes_a_new_job_only_if_it_comes_first(
    store: Store, make_job: MakeJob
) -> None:
    backlog = insert(store, make_job(priority=10), make_job(priority=10))
    daemon = store.register_daemon().daemon_id

    [urgent], claimed = store.insert_and_claim(
        [make_job(priority=0)], max_unarchived=None, daemon_id=daemon, limit=1
    )
    assert [job.id for job in claimed] == [urgent]
    assert (store.load(urgent).owner, claimed[0].owner) == (daemon, daemon)

    [late], claimed = store.insert_and_claim(
        [make_job(priority=10)], max_unarchived=None, daemon_id=daemon, limit=1
    )
    assert [job.id for job in claimed] == [backlog[0]]  # same priority: the older first
    assert store.load(late).owner is None
    assert claimed_ids(store, daemon) == [backlog[1], late]


def test_insert_and_claim_inserts_even_when_the_lease_is_lost(
    store: Store, make_job: MakeJob
) -> None:
    daemon = store.register_daemon().daemon_id
    store.unregister_daemon(daemon)

    ids, claimed = store.insert_and_claim(
        [make_job()], max_unarchived=None, daemon_id=daemon, limit=5
    )

    assert claimed == []
    other = store.register_daemon().daemon_id
    assert claimed_ids(store, other) == ids


def test_concurrent_claims_never_return_a_job_twice(store: Store, make_job: MakeJob) -> None:
    ids = insert(store, *[make_job() for _ in range(60)])
    daemons = [store.register_daemon(f"d{n}").daemon_id for n in range(4)]
    start = threading.Barrier(len(daemons), timeout=WAIT)

    def work(daemon: int) -> list[int]:
        start.wait()
        taken: list[int] = []
        while batch := claimed_ids(store, daemon, 4):
            taken += batch
        return taken

    with ThreadPoolExecutor(len(daemons)) as pool:
        results = [f.result(timeout=WAIT) for f in [pool.submit(work, d) for d in daemons]]

    everything = [job_id for taken in results for job_id in taken]
    assert sorted(everything) == ids  # each exactly once


def test_a_job_waits_a_priority_step_per_aging_interval(
    store: Store, make_job: MakeJob, clock: ManualClock
) -> None:
    [old_low] = insert(store, make_job(priority=10))
    clock.advance(5.5 * INTERVAL)  # old_low has earned 5 steps (and half of the sixth)
    newer_same, newer_above = insert(store, make_job(priority=5), make_job(priority=4))
    daemon = store.register_daemon().daemon_id

    jobs = store.claim(daemon, 10)

    assert [job.id for job in jobs] == [newer_above, old_low, newer_same]
    aged = jobs[1]
    assert (aged.priority, aged.ops[0].priority, aged.ops[0].escalations) == (5, 5, 1)
    assert (jobs[0].ops[0].escalations, jobs[2].ops[0].escalations) == (0, 0)
    assert store.load(old_low).priority == 5  # the aging is stored with the claim


def test_jobs_aged_to_highest_tie_there_and_go_by_id(
    store: Store, make_job: MakeJob, clock: ManualClock
) -> None:
    lowest, highest = insert(store, make_job(priority=19), make_job(priority=-20))
    clock.advance(39 * INTERVAL)  # lowest has aged all the way to -20
    later_highest, nearly = insert(store, make_job(priority=-20), make_job(priority=-19))
    daemon = store.register_daemon().daemon_id

    jobs = store.claim(daemon, 10)

    assert [job.id for job in jobs] == [lowest, highest, later_highest, nearly]
    assert jobs[0].priority == priorities.HIGHEST


def test_without_aging_the_order_is_priority_then_id(
    open_new: OpenStore, make_job: MakeJob, clock: ManualClock
) -> None:
    store = open_new(aging_interval=0)
    [old_low] = insert(store, make_job(priority=10))
    clock.advance(1000 * INTERVAL)
    [normal] = insert(store, make_job(priority=0))
    daemon = store.register_daemon().daemon_id

    jobs = store.claim(daemon, 10)
    assert [job.id for job in jobs] == [normal, old_low]
    assert jobs[1].priority == 10


def test_a_job_is_claimed_only_once_its_dependencies_are_final(
    store: Store, make_job: MakeJob
) -> None:
    first, second, either = insert(
        store,
        make_job(),
        make_job(depends=[-1]),
        make_job(depends=[Dependency(-2, ()), -1]),
    )
    daemon = store.register_daemon().daemon_id

    [job] = store.claim(daemon, 10)
    assert job.id == first
    assert store.claim(daemon, 10) == []

    store.save(finish(job, OpStatus.ERROR))  # a failed dependency is final too
    [job] = store.claim(daemon, 10)
    assert job.id == second  # the engine, not the store, judges the dependency's outcome
    assert store.claim(daemon, 10) == []
    store.save(finish(job))
    assert claimed_ids(store, daemon) == [either]


def test_a_dependency_final_before_submission_does_not_block(
    store: Store, make_job: MakeJob
) -> None:
    [done] = insert(store, make_job())
    daemon = store.register_daemon().daemon_id
    [job] = store.claim(daemon, 1)
    store.save(finish(job))
    store.archive([done])

    [waiter] = insert(store, make_job(depends=[done]))
    assert claimed_ids(store, daemon) == [waiter]


def test_only_pending_unowned_unarchived_jobs_are_ready(store: Store, make_job: MakeJob) -> None:
    queued, running, waiting, done = insert(store, *[make_job() for _ in range(4)])
    for job_id, status in ((running, OpStatus.RUNNING), (waiting, OpStatus.WAITING)):
        job = store.load(job_id)
        job.ops[0].status = status
        store.save(job)
    store.save(finish(store.load(done)))
    store.archive([done])
    daemon = store.register_daemon().daemon_id

    assert claimed_ids(store, daemon) == [queued, waiting]


def test_a_released_job_is_ready_again_from_now(
    store: Store, make_job: MakeJob, clock: ManualClock
) -> None:
    first, second = insert(store, make_job(ops=2), make_job())
    daemon = store.register_daemon().daemon_id
    [job] = store.claim(daemon, 1)
    job.ops[0].status = OpStatus.SUCCESS
    clock.advance(1.0)

    store.save(job, release=True)

    assert job.owner is None
    assert store.load(first).owner is None
    again = store.claim(daemon, 10)
    assert [j.id for j in again] == [second, first]  # released later, so behind
    assert again[1].fence == 2


def test_a_new_priority_restarts_aging(store: Store, make_job: MakeJob, clock: ManualClock) -> None:
    waited, fresh = insert(store, make_job(priority=10), make_job(priority=0))
    clock.advance(20 * INTERVAL)
    job = store.load(waited)
    job.ops[0].priority = 0  # what change_priority does to an unowned job
    store.save(job)
    daemon = store.register_daemon().daemon_id

    assert claimed_ids(store, daemon) == [fresh, waited]


# -- guarantee 10: fencing ---------------------------------------------------


def test_only_the_owner_saves_an_owned_job(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    before_claim = store.load(job_id)
    daemon = store.register_daemon().daemon_id
    [job] = store.claim(daemon, 1)

    before_claim.ops[0].status = OpStatus.CANCELED
    with pytest.raises(StoreConflict):
        store.save(before_claim)

    job.ops[0].status = OpStatus.RUNNING
    store.save(job)
    assert store.load(job_id).status is OpStatus.RUNNING


def test_a_write_with_a_stale_fence_raises_lease_lost_and_writes_nothing(
    store: Store, make_job: MakeJob, clock: ManualClock
) -> None:
    [job_id] = insert(store, make_job())
    lost = store.register_daemon("lost").daemon_id
    [stale] = store.claim(lost, 1)
    clock.advance(LEASE_S / 2)
    heir = store.register_daemon("heir").daemon_id
    clock.advance(LEASE_S / 2 + 0.001)  # lost's lease is over; heir's is not

    [taken] = store.reclaim(heir)
    assert (taken.id, taken.owner, taken.fence) == (job_id, heir, stale.fence + 1)

    stale.ops[0].status = OpStatus.SUCCESS
    with pytest.raises(LeaseLost):
        store.save(stale)
    with pytest.raises(LeaseLost):
        store.append_log(job_id, 0, 1.0, "late", fence=(lost, stale.fence))
    loaded = store.load(job_id, with_log=True)
    assert (loaded.status, loaded.log, loaded.owner) == (OpStatus.QUEUED, [], heir)

    store.append_log(job_id, 0, 1.0, "mine", fence=(heir, taken.fence))
    taken.ops[0].status = OpStatus.RUNNING
    store.save(taken)


def test_an_owner_whose_lease_expired_cannot_write_even_before_a_reclaim(
    store: Store, make_job: MakeJob, clock: ManualClock
) -> None:
    insert(store, make_job())
    daemon = store.register_daemon().daemon_id
    [job] = store.claim(daemon, 1)
    clock.advance(LEASE_S + 0.001)

    job.ops[0].status = OpStatus.RUNNING
    with pytest.raises(LeaseLost):
        store.save(job)
    assert store.load(job.id).status is OpStatus.QUEUED


def test_a_final_save_gives_the_job_up(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    daemon = store.register_daemon().daemon_id
    [job] = store.claim(daemon, 1)
    store.save(finish(job))
    assert store.load(job_id).owner is None


# -- guarantee 11: reclaim -----------------------------------------------------


def test_reclaim_takes_only_the_jobs_of_daemons_whose_lease_ended(
    store: Store, make_job: MakeJob, clock: ManualClock
) -> None:
    insert(store, *[make_job() for _ in range(6)])
    alive, dead, stopped, heir = (store.register_daemon(n).daemon_id for n in "adsh")
    mine = claimed_ids(store, heir, 1)
    kept = claimed_ids(store, alive, 2)
    lost = claimed_ids(store, dead, 2)
    quit_ = claimed_ids(store, stopped, 1)
    store.unregister_daemon(stopped)
    clock.advance(LEASE_S - 1)
    store.heartbeat(alive)
    store.heartbeat(heir)
    assert store.reclaim(heir) == [store.load(quit_[0])]  # only the unregistered one's so far
    clock.advance(2)  # dead's lease is over; alive's and heir's are not

    taken = store.reclaim(heir)

    assert [job.id for job in taken] == lost
    assert all(job.owner == heir for job in taken)
    assert [store.load(job_id).owner for job_id in kept] == [alive, alive]
    assert [store.load(job_id).owner for job_id in mine] == [heir]
    assert store.reclaim(heir) == []


def test_a_daemon_whose_lease_ended_cannot_reclaim(store: Store, clock: ManualClock) -> None:
    daemon = store.register_daemon().daemon_id
    clock.advance(LEASE_S + 1)
    with pytest.raises(LeaseLost):
        store.reclaim(daemon)


# -- guarantee 12: control requests --------------------------------------------


def test_a_control_request_for_an_unowned_job_records_nothing(
    store: Store, make_job: MakeJob
) -> None:
    [job_id] = insert(store, make_job())
    assert store.request_control(job_id, cancel=True) is None
    assert not store.load(job_id).requests.pending
    with pytest.raises(JobNotFound):
        store.request_control(job_id + 100, cancel=True)


def test_a_control_request_reaches_the_owner_without_moving_the_version(
    store: Store, make_job: MakeJob
) -> None:
    [job_id] = insert(store, make_job())
    daemon = store.register_daemon().daemon_id
    [job] = store.claim(daemon, 1)
    heard: list[int] = []
    store.add_listener(heard.append)

    asked = store.request_control(job_id, priority=-5)
    assert asked is not None
    assert heard == [job_id]
    assert (asked.requests.serial, asked.requests.priority, asked.requests.cancel) == (1, -5, False)
    asked = store.request_control(job_id, cancel=True)
    assert asked is not None and asked.requests.serial == 2
    assert (asked.requests.priority, asked.requests.cancel) == (-5, True)
    assert asked.version == job.version

    job.ops[0].status = OpStatus.CANCELING  # the owner applies them
    store.save(job)
    store.clear_requests(job, 2)
    assert not store.load(job_id).requests.pending


def test_request_listeners_hear_control_requests_only(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    daemon = store.register_daemon().daemon_id
    heard: list[int] = []
    store.add_request_listener(heard.append)
    [job] = store.claim(daemon, 1)
    job.ops[0].status = OpStatus.RUNNING
    store.save(job)  # the owner's own writes are no requests
    assert heard == []

    store.request_control(job_id, cancel=True)
    assert heard == [job_id]


def test_clearing_keeps_a_request_newer_than_what_was_applied(
    store: Store, make_job: MakeJob
) -> None:
    [job_id] = insert(store, make_job())
    daemon = store.register_daemon().daemon_id
    [job] = store.claim(daemon, 1)
    store.request_control(job_id, priority=3)
    store.request_control(job_id, cancel=True)  # arrives while the owner applies serial 1

    store.clear_requests(job, 1)

    requests = store.load(job_id).requests
    assert (requests.serial, requests.cancel) == (2, True)


def test_only_the_owner_clears_requests(
    store: Store, make_job: MakeJob, clock: ManualClock
) -> None:
    [job_id] = insert(store, make_job())
    daemon = store.register_daemon().daemon_id
    [job] = store.claim(daemon, 1)
    store.request_control(job_id, cancel=True)
    clock.advance(LEASE_S + 1)
    with pytest.raises(LeaseLost):
        store.clear_requests(job, 1)
    assert store.load(job_id).requests.cancel


# -- guarantee 13: cheap status -------------------------------------------------


def test_oldest_queued_is_the_lowest_queued_job(store: Store, make_job: MakeJob) -> None:
    assert store.oldest_queued() is None
    _first, second, blocked = insert(
        store,
        make_job(received_at=10.0),
        make_job(received_at=20.0),
        make_job(received_at=30.0, depends=[-2]),
    )
    assert store.oldest_queued() == 10.0
    daemon = store.register_daemon().daemon_id
    [job] = store.claim(daemon, 1)
    job.ops[0].status = OpStatus.RUNNING
    store.save(job)
    assert store.oldest_queued() == 20.0
    store.save(finish(store.load(second)))
    assert store.oldest_queued() == 30.0  # waiting for its dependency, but queued
    store.save(finish(store.load(blocked)))
    assert store.oldest_queued() is None


def test_counts_follow_claims_and_aging(
    store: Store, make_job: MakeJob, clock: ManualClock
) -> None:
    insert(store, make_job(priority=10), make_job(priority=10))
    clock.advance(3 * INTERVAL)
    daemon = store.register_daemon().daemon_id
    store.claim(daemon, 1)
    assert store.counts() == {(OpStatus.QUEUED, 10): 1, (OpStatus.QUEUED, 7): 1}


# -- guarantee 5: listeners, for several daemons ---------------------------------


@pytest.mark.stores("memory")  # SQLite admits one daemon per database
def test_a_store_on_the_same_database_hears_of_the_other_stores_changes(
    store: Store, open_new: OpenStore, make_job: MakeJob, store_url: str
) -> None:
    other = open_new()
    heard: list[int] = []
    other.add_listener(heard.append)

    [job_id] = insert(store, make_job())
    daemon = store.register_daemon().daemon_id
    store.claim(daemon, 1)
    store.request_control(job_id, cancel=True)

    assert heard == [job_id, job_id, job_id]
    assert other.load(job_id).owner == daemon
