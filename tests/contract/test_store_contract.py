"""The store contract (``jobplane.stores.base``), checked against every store.

Each test states one promise; "guarantee N" refers to the numbered list in
the base module's docstring.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from jobplane.errors import (
    DependencyError,
    JobNotFound,
    JobStateError,
    QueueDrained,
    QueueFull,
    StoreConflict,
    StoreError,
)
from jobplane.jobs import Dependency, Job, OpStatus
from jobplane.stores import UNREADABLE, Store, open_store

MakeJob = Callable[..., Job]  # the ``make_job`` fixture
OpenStore = Callable[..., Store]  # the ``open_new`` fixture
Damage = Callable[[int, str | bytes], None]  # the ``damage`` fixture
WAIT = 10.0  # seconds any thread or barrier may take in these tests


def insert(store: Store, *jobs: Job, limit: int | None = None) -> list[int]:
    return store.insert_jobs(list(jobs), max_unarchived=limit)


def finish(job: Job, status: OpStatus = OpStatus.SUCCESS, *, ended_at: float = 2000.0) -> Job:
    """Mark every op of ``job`` final with ``status`` (in memory)."""
    for op in job.ops:
        op.status = status
        op.ended_at = ended_at
    job.ended_at = ended_at
    return job


def set_status(store: Store, job_id: int, status: OpStatus, *, ended_at: float = 2000.0) -> Job:
    """Load the job, give all its ops ``status`` and save it."""
    job = store.load(job_id)
    if status in (OpStatus.SUCCESS, OpStatus.ERROR, OpStatus.CANCELED):
        finish(job, status, ended_at=ended_at)
    else:
        for op in job.ops:
            op.status = status
    store.save(job)
    return job


# -- guarantee 1: ids -------------------------------------------------------


def test_insert_gives_increasing_ids_in_batch_order(store: Store, make_job: MakeJob) -> None:
    [first] = insert(store, make_job())
    batch = [make_job(), make_job(), make_job()]
    ids = insert(store, *batch)

    assert first < ids[0] < ids[1] < ids[2]
    assert [job.id for job in batch] == ids


def test_inserted_job_reads_back_as_given(store: Store, make_job: MakeJob) -> None:
    job = make_job(ops=2, priority=-5, received_at=1234.5)
    [job_id] = insert(store, job)

    loaded = store.load(job_id)
    assert loaded.id == job_id
    assert loaded.version == job.version
    assert loaded.ops == job.ops
    assert loaded.received_at == 1234.5
    assert loaded.status is OpStatus.QUEUED
    assert loaded.priority == -5
    assert loaded.archived is False


def test_ids_are_never_reused_after_archive_and_reopen(
    store: Store, open_new: OpenStore, make_job: MakeJob
) -> None:
    ids = insert(store, make_job(), make_job())
    for job_id in ids:
        set_status(store, job_id, OpStatus.SUCCESS)
    assert store.archive(ids) == ids
    store.close()

    reopened = open_new()
    [new_id] = insert(reopened, make_job())
    assert new_id > max(ids)


# -- guarantee 2: atomic submission ------------------------------------------


def test_a_bad_dependency_in_a_batch_inserts_none_of_it(store: Store, make_job: MakeJob) -> None:
    batch = [make_job(), make_job(depends=[-1]), make_job(depends=[987654])]
    with pytest.raises(DependencyError, match="987654"):
        insert(store, *batch, limit=3)

    assert store.list_jobs(archived=None) == []
    assert store.counts() == {}
    # The failed batch did not use up room under the limit either.
    assert len(insert(store, make_job(), make_job(), make_job(), limit=3)) == 3


def test_negative_dependency_names_a_job_earlier_in_the_batch(
    store: Store, make_job: MakeJob
) -> None:
    either = Dependency(-2, (OpStatus.SUCCESS, OpStatus.ERROR))
    batch = [make_job(), make_job(depends=[-1]), make_job(depends=[either, -1])]
    ids = insert(store, *batch)

    expected = (Dependency(ids[0], (OpStatus.SUCCESS, OpStatus.ERROR)), Dependency(ids[1]))
    assert store.load(ids[2]).depends == expected
    assert batch[2].depends == expected
    assert store.load(ids[1]).depends == (Dependency(ids[0]),)


def test_negative_dependency_before_the_batch_is_refused(store: Store, make_job: MakeJob) -> None:
    insert(store, make_job())
    with pytest.raises(DependencyError, match="before the batch"):
        insert(store, make_job(), make_job(depends=[-2]))
    assert len(store.list_jobs()) == 1


def test_dependency_on_an_existing_job_is_kept(store: Store, make_job: MakeJob) -> None:
    [old] = insert(store, make_job())
    set_status(store, old, OpStatus.SUCCESS)
    store.archive([old])

    [new] = insert(store, make_job(depends=[old]))
    assert store.load(new).depends == (Dependency(old),)


def test_dependency_on_an_unknown_job_is_refused(store: Store, make_job: MakeJob) -> None:
    [existing] = insert(store, make_job())
    with pytest.raises(DependencyError):
        insert(store, make_job(depends=[0]))
    with pytest.raises(DependencyError, match="unknown"):
        insert(store, make_job(depends=[existing + 1000]))
    assert [job.id for job in store.list_jobs()] == [existing]


def test_dependency_on_itself_or_a_later_job_is_refused(store: Store, make_job: MakeJob) -> None:
    [existing] = insert(store, make_job())
    # Ids increase, so every new job gets an id above ``existing``: these name
    # the job itself, a later job of the batch, or no job at all.
    for dep in (existing + 1, existing + 2):
        with pytest.raises(DependencyError):
            insert(store, make_job(depends=[dep]), make_job(depends=[dep]))
    assert [job.id for job in store.list_jobs()] == [existing]


def test_drained_store_refuses_submissions_until_undrained(store: Store, make_job: MakeJob) -> None:
    assert store.is_drained() is False
    store.set_drained(True)
    assert store.is_drained() is True

    with pytest.raises(QueueDrained):
        insert(store, make_job())
    assert store.list_jobs() == []

    store.set_drained(False)
    assert len(insert(store, make_job())) == 1


def test_drain_flag_survives_reopen(store: Store, open_new: OpenStore) -> None:
    store.set_drained(True)
    store.close()
    assert open_new().is_drained() is True


def test_queue_full_at_the_limit_and_room_again_after_archive(
    store: Store, make_job: MakeJob
) -> None:
    ids = insert(store, make_job(), make_job(), limit=2)
    with pytest.raises(QueueFull):
        insert(store, make_job(), limit=2)

    set_status(store, ids[0], OpStatus.SUCCESS)
    with pytest.raises(QueueFull):
        insert(store, make_job(), limit=2)  # finished is not enough: archived counts

    assert store.archive([ids[0]]) == [ids[0]]
    assert len(insert(store, make_job(), limit=2)) == 1
    with pytest.raises(QueueFull):
        insert(store, make_job(), limit=2)


def test_queue_full_counts_the_whole_batch(store: Store, make_job: MakeJob) -> None:
    insert(store, make_job())
    with pytest.raises(QueueFull):
        insert(store, make_job(), make_job(), make_job(), limit=3)
    assert len(store.list_jobs()) == 1
    assert len(insert(store, make_job(), make_job(), limit=3)) == 2
    assert len(insert(store, make_job(), make_job())) == 2  # no limit


# -- guarantees 3 and 4: committed saves, compare-and-set -------------------


def test_save_commits_the_job_and_bumps_its_version(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job(ops=2))
    job = store.load(job_id)
    version = job.version
    job.ops[0].status = OpStatus.SUCCESS
    job.ops[0].result = {"answer": 42}
    job.ops[1].status = OpStatus.RUNNING
    job.ops[1].priority = -20
    job.started_at = 1500.0

    store.save(job)

    assert job.version == version + 1
    loaded = store.load(job_id)
    assert loaded.version == version + 1
    assert loaded.ops == job.ops
    assert loaded.started_at == 1500.0
    assert loaded.status is OpStatus.RUNNING
    assert loaded.priority == -20


def test_an_ops_cooperative_flag_is_saved_and_reads_back(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job(ops=2))
    job = store.load(job_id)
    assert [op.cooperative for op in job.ops] == [False, False]
    job.ops[0].status, job.ops[0].cooperative = OpStatus.RUNNING, True

    store.save(job)

    loaded = store.load(job_id)
    assert [op.cooperative for op in loaded.ops] == [True, False]
    assert [op.cooperative for op in store.list_jobs()[0].ops] == [True, False]


def test_save_of_a_stale_copy_conflicts_and_writes_nothing(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    first, second = store.load(job_id), store.load(job_id)
    first.ops[0].status = OpStatus.RUNNING
    store.save(first)

    stale_version = second.version
    finish(second, OpStatus.ERROR)
    with pytest.raises(StoreConflict):
        store.save(second)

    assert second.version == stale_version
    loaded = store.load(job_id)
    assert loaded.status is OpStatus.RUNNING
    assert loaded.version == first.version


def test_save_without_waiting_is_committed_soon_and_tells_the_listeners(
    store: Store, make_job: MakeJob
) -> None:
    [job_id] = insert(store, make_job())
    committed = threading.Event()
    store.add_listener(lambda changed: changed == job_id and committed.set())
    job = store.load(job_id)
    version = job.version
    job.ops[0].status = OpStatus.RUNNING

    store.save(job, wait=False)

    assert job.version == version + 1
    assert committed.wait(WAIT), "a save that was not waited for was never committed"
    assert store.load(job_id).status is OpStatus.RUNNING


def test_save_without_waiting_lands_before_the_next_save_of_the_job(
    store: Store, make_job: MakeJob, open_new: OpenStore
) -> None:
    [job_id] = insert(store, make_job())
    job = store.load(job_id)
    job.ops[0].status = OpStatus.RUNNING
    store.save(job, wait=False)
    store.save(finish(job))  # compares with the version the first save wrote

    loaded = store.load(job_id)
    assert loaded.status is OpStatus.SUCCESS and loaded.version == job.version
    quick = store.load(job_id)
    quick.ops[0].result = "late"
    store.save(quick, wait=False)
    store.close()  # commits what is still pending
    assert open_new().load(job_id).ops[0].result == "late"


def test_a_lost_save_without_waiting_shows_in_the_next_save(
    store: Store, make_job: MakeJob
) -> None:
    [job_id] = insert(store, make_job())
    stale = store.load(job_id)
    set_status(store, job_id, OpStatus.RUNNING)  # moves the stored version on
    stale.ops[0].status = OpStatus.ERROR
    store.save(stale, wait=False)  # conflicts when committed: writes nothing
    finish(stale)
    with pytest.raises(StoreConflict):
        store.save(stale)
    assert store.load(job_id).status is OpStatus.RUNNING


def test_save_of_an_unknown_job_raises_job_not_found(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    ghost = store.load(job_id)
    ghost.id = job_id + 1000
    with pytest.raises(JobNotFound):
        store.save(ghost)


def test_concurrent_saves_of_different_jobs_all_land(
    store: Store, open_new: OpenStore, make_job: MakeJob
) -> None:
    threads, rounds = 8, 25
    ids = insert(store, *[make_job() for _ in range(threads)])
    start = threading.Barrier(threads, timeout=WAIT)

    def work(job_id: int) -> None:
        job = store.load(job_id)
        start.wait()
        for n in range(rounds):
            job.ops[0].result = n
            store.save(job)
            # Committed before returned: any reader sees this save now.
            seen = store.load(job_id)
            assert (seen.version, seen.ops[0].result) == (job.version, n)

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, job_id) for job_id in ids]:
            future.result(timeout=WAIT)

    store.close()
    reopened = open_new()
    for job_id in ids:
        job = reopened.load(job_id)
        assert (job.version, job.ops[0].result) == (1 + rounds, rounds - 1)


def test_concurrent_saves_of_one_version_have_exactly_one_winner(
    store: Store, make_job: MakeJob
) -> None:
    threads = 8
    [job_id] = insert(store, make_job())
    copies = [store.load(job_id) for _ in range(threads)]
    start = threading.Barrier(threads, timeout=WAIT)

    def work(n: int) -> bool:
        copies[n].ops[0].result = n
        start.wait()
        try:
            store.save(copies[n])
        except StoreConflict:
            return False
        return True

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(work, n) for n in range(threads)]
        won = [future.result(timeout=WAIT) for future in futures]

    assert won.count(True) == 1
    winner = won.index(True)
    loaded = store.load(job_id)
    assert loaded.ops[0].result == winner
    assert loaded.version == copies[winner].version == 2


# -- log lines --------------------------------------------------------------


def test_log_serials_count_from_one_per_job(store: Store, make_job: MakeJob) -> None:
    first, second = insert(store, make_job(), make_job())
    lines = [
        store.append_log(first, 0, 10.0, "a1"),
        store.append_log(second, 0, 11.0, "b1"),
        store.append_log(first, 0, 12.0, "a2"),
        store.append_log(first, 1, 13.0, "a3"),
        store.append_log(second, 0, 14.0, "b2"),
    ]

    assert [(line.serial, line.message) for line in lines] == [
        (1, "a1"),
        (1, "b1"),
        (2, "a2"),
        (3, "a3"),
        (2, "b2"),
    ]
    assert store.read_log(first) == [lines[0], lines[2], lines[3]]
    assert store.read_log(second) == [lines[1], lines[4]]


def test_read_log_returns_the_lines_after_a_serial(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    lines = [store.append_log(job_id, 0, float(n), f"line {n}") for n in range(5)]

    assert store.read_log(job_id, since_serial=3) == lines[3:]
    assert store.read_log(job_id, since_serial=5) == []


def test_load_includes_the_log_only_when_asked(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    line = store.append_log(job_id, 0, 10.0, "hello")

    assert store.load(job_id).log == []
    assert store.load(job_id, with_log=True).log == [line]


def test_log_of_an_unknown_job_raises_job_not_found(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    with pytest.raises(JobNotFound):
        store.append_log(job_id + 1000, 0, 10.0, "lost")
    with pytest.raises(JobNotFound):
        store.read_log(job_id + 1000)
    assert store.read_log(job_id) == []


# -- guarantee 5: listeners -------------------------------------------------


def test_listeners_run_after_each_commit_and_see_it(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    seen: list[dict[str, Any]] = []

    def listener(changed: int) -> None:
        job = store.load(changed, with_log=True)
        seen.append(
            {"id": changed, "status": job.status, "log": len(job.log), "archived": job.archived}
        )

    store.add_listener(listener)

    job = set_status(store, job_id, OpStatus.RUNNING)
    assert seen[-1] == {"id": job_id, "status": OpStatus.RUNNING, "log": 0, "archived": False}

    store.append_log(job_id, 0, 10.0, "working")
    assert seen[-1] == {"id": job_id, "status": OpStatus.RUNNING, "log": 1, "archived": False}

    calls = len(seen)
    stale = store.load(job_id)
    stale.version -= 1
    with pytest.raises(StoreConflict):
        store.save(stale)
    assert len(seen) == calls  # nothing committed, nobody told

    store.save(finish(job))
    assert seen[-1] == {"id": job_id, "status": OpStatus.SUCCESS, "log": 1, "archived": False}

    store.archive([job_id])
    assert seen[-1] == {"id": job_id, "status": OpStatus.SUCCESS, "log": 1, "archived": True}


# -- listing and archiving ---------------------------------------------------


def test_list_jobs_filters_by_status_and_archived(store: Store, make_job: MakeJob) -> None:
    queued, running, done, failed = insert(store, *[make_job() for _ in range(4)])
    set_status(store, running, OpStatus.RUNNING)
    set_status(store, done, OpStatus.SUCCESS)
    set_status(store, failed, OpStatus.ERROR)
    store.archive([done])

    def ids(**filters: Any) -> list[int]:
        return [job.id for job in store.list_jobs(**filters)]

    assert ids() == [queued, running, failed]
    assert ids(statuses=[OpStatus.ERROR, OpStatus.RUNNING]) == [running, failed]
    assert ids(archived=True) == [done]
    assert ids(archived=None) == [queued, running, done, failed]
    assert ids(statuses=[OpStatus.SUCCESS], archived=None) == [done]
    assert ids(statuses=[OpStatus.SUCCESS]) == []
    assert ids(statuses=[]) == []


def test_list_jobs_pages_through_ids_in_ascending_order(store: Store, make_job: MakeJob) -> None:
    ids = insert(store, *[make_job() for _ in range(7)])

    pages: list[list[int]] = []
    after = None
    while True:
        page = [job.id for job in store.list_jobs(after=after, limit=3)]
        if not page:
            break
        pages.append(page)
        after = page[-1]

    assert pages == [ids[0:3], ids[3:6], ids[6:7]]
    assert store.list_jobs(archived=None, after=ids[4], limit=100)[0].id == ids[5]


def test_list_jobs_newest_first_pages_down_with_before(store: Store, make_job: MakeJob) -> None:
    ids = insert(store, *[make_job() for _ in range(7)])

    pages: list[list[int]] = []
    before = None
    while True:
        page = [job.id for job in store.list_jobs(newest_first=True, before=before, limit=3)]
        if not page:
            break
        pages.append(page)
        before = page[-1]

    newest = ids[::-1]
    assert pages == [newest[0:3], newest[3:6], newest[6:7]]


def test_list_jobs_between_after_and_before_in_either_order(
    store: Store, make_job: MakeJob
) -> None:
    ids = insert(store, *[make_job() for _ in range(6)])
    store.archive([ids[2]])  # unfinished: stays unarchived

    def between(**order: Any) -> list[int]:
        jobs = store.list_jobs(after=ids[1], before=ids[4], archived=None, **order)
        return [job.id for job in jobs]

    assert between() == [ids[2], ids[3]]
    assert between(newest_first=True) == [ids[3], ids[2]]


def test_list_jobs_newest_first_keeps_the_status_and_archived_filters(
    store: Store, make_job: MakeJob
) -> None:
    first, second, third, fourth = insert(store, *[make_job() for _ in range(4)])
    for job_id in (first, second, fourth):
        set_status(store, job_id, OpStatus.SUCCESS)
    store.archive([second])

    def newest(**filters: Any) -> list[int]:
        return [job.id for job in store.list_jobs(newest_first=True, **filters)]

    assert newest() == [fourth, third, first]
    assert newest(statuses=[OpStatus.SUCCESS]) == [fourth, first]
    assert newest(archived=True) == [second]
    assert newest(archived=None, before=fourth) == [third, second, first]


def test_list_jobs_filters_by_a_priority_range(store: Store, make_job: MakeJob) -> None:
    high, normal, low, highest = insert(
        store, make_job(priority=-10), make_job(), make_job(priority=10), make_job(priority=-20)
    )

    def ids(priority: tuple[int, int], **more: Any) -> list[int]:
        return [job.id for job in store.list_jobs(priority=priority, **more)]

    assert ids((-10, -10)) == [high]
    assert ids((-20, -1)) == [high, highest]
    assert ids((0, 19)) == [normal, low]
    assert ids((-20, -1), newest_first=True) == [highest, high]
    assert ids((1, 9)) == []


def test_list_jobs_filters_by_text_in_an_op_name(store: Store, make_job: MakeJob) -> None:
    def job(*names: str) -> Job:
        built = make_job(ops=len(names))
        for op, name in zip(built.ops, names, strict=True):
            op.op = name
        return built

    migrate, start, both, params_only, quoted = insert(
        store,
        job("instance.migrate"),
        job("instance.start"),
        job("node.health", "instance.migrate"),
        job("test.noop"),
        job('odd "quoted" \\ Name'),
    )
    named = store.load(params_only)
    named.ops[0].params = {"note": "migrate"}  # a match in the params is not a match
    store.save(named)

    def ids(op: str, **more: Any) -> list[int]:
        return [job.id for job in store.list_jobs(op=op, **more)]

    assert ids("instance.migrate") == [migrate, both]
    assert ids("MIGR") == [migrate, both]  # any part of the name, ASCII case ignored
    assert ids("instance.") == [migrate, start, both]
    assert ids("migrate", newest_first=True, limit=1) == [both]
    assert ids("%") == []  # no wildcards: the text is taken literally
    assert ids("_") == []
    assert ids("e.s") == [start]
    assert ids('"quoted" \\ n') == [quoted]  # JSON escapes these characters in the document


def test_unfinished_lists_every_job_not_yet_final(store: Store, make_job: MakeJob) -> None:
    ids = {status: insert(store, make_job())[0] for status in OpStatus}
    for status, job_id in ids.items():
        if status is not OpStatus.QUEUED:
            set_status(store, job_id, status)
    halfway = store.load(insert(store, make_job(ops=2))[0])
    halfway.ops[0].status = OpStatus.SUCCESS  # between its two ops: reads "queued"
    store.save(halfway)
    store.archive([ids[OpStatus.SUCCESS]])

    final = (OpStatus.SUCCESS, OpStatus.ERROR, OpStatus.CANCELED)
    expected = sorted([job_id for status, job_id in ids.items() if status not in final])
    assert [job.id for job in store.unfinished()] == [*expected, halfway.id]


def test_archive_takes_only_finished_jobs_not_yet_archived(store: Store, make_job: MakeJob) -> None:
    queued, running, done, failed, canceled = insert(store, *[make_job() for _ in range(5)])
    set_status(store, running, OpStatus.RUNNING)
    set_status(store, done, OpStatus.SUCCESS)
    set_status(store, failed, OpStatus.ERROR)
    set_status(store, canceled, OpStatus.CANCELED)

    everything = [queued, running, done, failed, canceled, canceled + 1000]
    assert store.archive(everything) == [done, failed, canceled]
    assert store.archive(everything) == []
    assert store.archive([]) == []

    archived = store.load(done)
    assert archived.archived is True
    assert archived.status is OpStatus.SUCCESS
    assert store.load(queued).archived is False
    assert store.load(running).archived is False


def test_archive_finished_before_takes_jobs_that_ended_earlier(
    store: Store, make_job: MakeJob
) -> None:
    old, recent, running = insert(store, make_job(), make_job(), make_job())
    set_status(store, old, OpStatus.SUCCESS, ended_at=100.0)
    set_status(store, recent, OpStatus.ERROR, ended_at=300.0)
    set_status(store, running, OpStatus.RUNNING)

    assert store.archive_finished_before(200.0) == [old]
    assert store.archive_finished_before(200.0) == []
    assert store.archive_finished_before(1e12) == [recent]
    assert [job.id for job in store.list_jobs()] == [running]


def test_counts_group_unarchived_jobs_by_status_and_priority(
    store: Store, make_job: MakeJob
) -> None:
    insert(store, make_job(priority=-10), make_job(priority=-10), make_job(priority=5))
    running, done, archived = insert(store, *[make_job(priority=10) for _ in range(3)])
    set_status(store, running, OpStatus.RUNNING)
    set_status(store, done, OpStatus.SUCCESS)
    set_status(store, archived, OpStatus.SUCCESS)
    store.archive([archived])

    assert store.counts() == {
        (OpStatus.QUEUED, -10): 2,
        (OpStatus.QUEUED, 5): 1,
        (OpStatus.RUNNING, 10): 1,
        (OpStatus.SUCCESS, 0): 1,  # a finished job has the default priority
    }


def test_load_of_an_unknown_job_raises_job_not_found(store: Store) -> None:
    with pytest.raises(JobNotFound):
        store.load(1)


# -- guarantee 6: errors ----------------------------------------------------


@pytest.mark.stores("sqlite")  # a database in memory cannot be damaged
def test_an_unusable_database_raises_store_error(unusable_url: str) -> None:
    with pytest.raises(StoreError):
        open_store(unusable_url)


def test_a_closed_store_refuses_work_with_store_error(store: Store, make_job: MakeJob) -> None:
    [job_id] = insert(store, make_job())
    store.close()
    store.close()  # idempotent

    with pytest.raises(StoreError):
        store.load(job_id)
    with pytest.raises(StoreError):
        insert(store, make_job())


# -- guarantee 7: unreadable records ------------------------------------------


def _spoiled(change: Callable[[dict[str, Any]], Any]) -> str:
    """A job document that is JSON, with ``change`` applied to a good one."""
    doc = _make_job_doc()
    change(doc)
    return json.dumps(doc)


def _make_job_doc() -> dict[str, Any]:
    op = {"op": "test.noop", "params": {}, "priority": 0, "status": "queued"}
    return {"ops": [op], "depends": [], "received_at": 1000.0}


DAMAGE: dict[str, str | bytes] = {
    "cut short": '{"ops": [{"op": "test.noop", "params": {}, "prio',
    "not JSON at all": b"\x00\xff\xfe garbage",
    "not an object": "[1, 2, 3]",
    "no ops": _spoiled(lambda doc: doc.pop("ops")),
    "empty ops": _spoiled(lambda doc: doc.update(ops=[])),
    "ops not a list": _spoiled(lambda doc: doc.update(ops="test.noop")),
    "op without a name": _spoiled(lambda doc: doc["ops"][0].pop("op")),
    "params not an object": _spoiled(lambda doc: doc["ops"][0].update(params=[1])),
    "unknown status": _spoiled(lambda doc: doc["ops"][0].update(status="exploded")),
    "priority a word": _spoiled(lambda doc: doc["ops"][0].update(priority="urgent")),
    "priority off the scale": _spoiled(lambda doc: doc["ops"][0].update(priority=10**6)),
    "received_at a word": _spoiled(lambda doc: doc.update(received_at="yesterday")),
    "cooperative a word": _spoiled(lambda doc: doc["ops"][0].update(cooperative="yes")),
    "dependency not a job": _spoiled(lambda doc: doc.update(depends=[{"job": "x"}])),
    "too deep": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_an_unreadable_record_reads_as_a_finished_job_in_error(
    store: Store, make_job: MakeJob, damage: Damage, kind: str
) -> None:
    before, spoiled, after = insert(store, make_job(), make_job(priority=-5), make_job())
    damage(spoiled, DAMAGE[kind])

    job = store.load(spoiled, with_log=True)
    assert (job.id, job.status, job.is_final) == (spoiled, OpStatus.ERROR, True)
    assert [op.status for op in job.ops] == [OpStatus.ERROR]
    assert job.ops[0].result == {"error": "UnreadableRecord", "message": UNREADABLE}
    assert [j.id for j in store.list_jobs()] == [before, spoiled, after]
    assert [j.id for j in store.unfinished()] == [before, after]  # never run again
    assert store.list_jobs()[1].ops == job.ops
    assert store.counts() == {(OpStatus.QUEUED, 0): 2, (OpStatus.ERROR, 0): 1}
    assert [j.id for j in store.list_jobs(statuses=[OpStatus.ERROR])] == [spoiled]
    assert [j.id for j in store.list_jobs(statuses=[OpStatus.QUEUED])] == [before, after]
    [found] = store.quarantined()
    assert (found.job_id, found.archived) == (spoiled, False)
    assert found.reason and found.size == len(DAMAGE[kind])
    if isinstance(DAMAGE[kind], str) and len(DAMAGE[kind]) < 1000:
        assert DAMAGE[kind] not in found.reason  # the record's text stays out


def test_quarantined_finds_records_not_yet_read_when_asked_to_scan(
    store: Store, make_job: MakeJob, damage: Damage
) -> None:
    ids = insert(store, *[make_job() for _ in range(5)])
    set_status(store, ids[1], OpStatus.SUCCESS)
    store.archive([ids[1]])
    damage(ids[1], "{")
    damage(ids[3], "{")

    found = store.quarantined(scan=True)
    assert [(u.job_id, u.archived) for u in found] == [(ids[1], True), (ids[3], False)]
    assert [u.job_id for u in store.quarantined()] == [ids[1], ids[3]]


def test_remove_unreadable_deletes_only_an_unreadable_record(
    store: Store, make_job: MakeJob, damage: Damage
) -> None:
    good, spoiled = insert(store, make_job(), make_job())
    store.append_log(spoiled, 0, 1.0, "a line")
    damage(spoiled, "{")

    with pytest.raises(JobStateError, match=f"job {good} is readable"):
        store.remove_unreadable(good)
    store.remove_unreadable(spoiled)

    with pytest.raises(JobNotFound):
        store.load(spoiled)
    with pytest.raises(JobNotFound):
        store.read_log(spoiled)
    with pytest.raises(JobNotFound):
        store.remove_unreadable(spoiled)
    assert store.quarantined() == []
    assert [j.id for j in store.list_jobs()] == [good]
    assert insert(store, make_job(), limit=2) == [spoiled + 1]  # its room is free, its id gone


def test_a_save_of_a_copy_read_before_the_damage_repairs_the_record(
    store: Store, make_job: MakeJob, damage: Damage
) -> None:
    [job_id] = insert(store, make_job())
    copy = store.load(job_id)
    damage(job_id, "{")
    assert store.load(job_id).status is OpStatus.ERROR

    copy.ops[0].status = OpStatus.RUNNING
    store.save(copy)

    assert store.load(job_id).status is OpStatus.RUNNING
    assert store.quarantined() == []
    assert store.counts() == {(OpStatus.RUNNING, 0): 1}


def test_an_unreadable_record_can_be_archived_once_read(
    store: Store, make_job: MakeJob, damage: Damage
) -> None:
    [job_id] = insert(store, make_job())
    damage(job_id, "{")
    store.load(job_id)

    assert store.archive([job_id]) == [job_id]
    assert store.load(job_id).archived is True


def test_a_record_repaired_by_hand_reads_and_counts_as_itself_again(
    store: Store, make_job: MakeJob, damage: Damage
) -> None:
    [job_id] = insert(store, make_job(priority=-3))
    original = json.dumps(store.load(job_id).to_doc())
    damage(job_id, "{")
    assert store.load(job_id).status is OpStatus.ERROR
    assert store.counts() == {(OpStatus.ERROR, 0): 1}

    damage(job_id, original)

    assert store.load(job_id).status is OpStatus.QUEUED
    assert store.counts() == {(OpStatus.QUEUED, -3): 1}
    assert [job.id for job in store.unfinished()] == [job_id]
    assert store.quarantined() == []
