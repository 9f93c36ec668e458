"""What only the SQLite store promises: its schema and migrations, the URL
forms, the process lock, durability settings and group commit.

The behaviour every store shares is in ``tests/contract``.
"""

from __future__ import annotations

import json
import os
import re
import select
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from jobplane.errors import (
    DependencyError,
    LeaseLost,
    QueueFull,
    StoreConflict,
    StoreError,
    StoreLocked,
    ValidationError,
)
from jobplane.jobs import Dependency, Job, OpState, OpStatus
from jobplane.stores import open_store
from jobplane.stores import sqlite as sqlite_module
from jobplane.stores.sql import Migration
from jobplane.stores.sqlite import (
    MIGRATIONS,
    Q,
    SQLiteStore,
    apply_migrations,
    database_path,
    split_statements,
)

WAIT = 10.0  # seconds any thread, process or event may take in these tests

# The schema a database has after all migrations, as sqlite_master holds it
# (whitespace collapsed). A new migration changes this on purpose, in the
# same commit; the tests below then check an old database reaches it too.
EXPECTED_SCHEMA = [
    (
        "table",
        "daemons",
        "CREATE TABLE daemons ( id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
        "epoch INTEGER NOT NULL, started_at REAL NOT NULL, lease_until REAL NOT NULL, ended "
        "INTEGER NOT NULL DEFAULT 0 )",
    ),
    (
        "table",
        "job_deps",
        "CREATE TABLE job_deps ( dep_id INTEGER NOT NULL, job_id INTEGER NOT NULL, PRIMARY "
        "KEY (dep_id, job_id) ) WITHOUT ROWID",
    ),
    (
        "table",
        "job_log",
        "CREATE TABLE job_log ( job_id INTEGER NOT NULL, serial INTEGER NOT NULL, op_index "
        "INTEGER NOT NULL, time REAL NOT NULL, message TEXT NOT NULL, PRIMARY KEY (job_id, "
        "serial) ) WITHOUT ROWID",
    ),
    (
        "table",
        "jobs",
        "CREATE TABLE jobs ( id INTEGER PRIMARY KEY AUTOINCREMENT, status TEXT NOT NULL, "
        "priority INTEGER NOT NULL, archived INTEGER NOT NULL DEFAULT 0, received_at REAL NOT"
        " NULL, ended_at REAL, version INTEGER NOT NULL, doc TEXT NOT NULL , unreadable "
        "INTEGER NOT NULL DEFAULT 0, owner INTEGER, fence INTEGER NOT NULL DEFAULT 0, "
        "deps_left INTEGER NOT NULL DEFAULT 0, ready_at REAL, sched_key REAL, req_serial "
        "INTEGER NOT NULL DEFAULT 0, req_cancel INTEGER NOT NULL DEFAULT 0, req_priority "
        "INTEGER)",
    ),
    ("index", "jobs_archived", "CREATE INDEX jobs_archived ON jobs (id) WHERE archived = 1"),
    ("index", "jobs_owner", "CREATE INDEX jobs_owner ON jobs (owner) WHERE owner IS NOT NULL"),
    (
        "index",
        "jobs_schedule",
        "CREATE INDEX jobs_schedule ON jobs (sched_key, id) WHERE sched_key IS NOT NULL",
    ),
    (
        "index",
        "jobs_unarchived",
        "CREATE INDEX jobs_unarchived ON jobs (status, priority, archived) WHERE archived = 0",
    ),
    (
        "index",
        "jobs_unfiled",
        "CREATE INDEX jobs_unfiled ON jobs (id) WHERE sched_key IS NULL AND deps_left = 0 AND"
        " owner IS NULL AND archived = 0 AND status IN ('queued', 'waiting')",
    ),
    ("index", "jobs_unreadable", "CREATE INDEX jobs_unreadable ON jobs (id) WHERE unreadable = 1"),
    ("table", "meta", "CREATE TABLE meta ( key TEXT PRIMARY KEY, value TEXT NOT NULL )"),
    (
        "table",
        "schema_migrations",
        "CREATE TABLE schema_migrations ( version INTEGER PRIMARY KEY, applied_at REAL NOT NULL )",
    ),
    ("index", "sqlite_autoindex_meta_1", ""),
    ("table", "sqlite_sequence", "CREATE TABLE sqlite_sequence(name,seq)"),
]


def make_job(*, depends: tuple[int, ...] = ()) -> Job:
    return Job(
        id=0,
        ops=[OpState("test.noop", {})],
        received_at=1000.0,
        depends=tuple(Dependency(d) for d in depends),
    )


def schema(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    return [(kind, name, " ".join((sql or "").split())) for kind, name, sql in rows]


def applied_versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    conn.close()
    return [version for (version,) in rows]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@pytest.fixture
def url(db: Path) -> str:
    return f"sqlite:///{db}"


@pytest.fixture
def store(url: str) -> Iterator[SQLiteStore]:
    store = SQLiteStore(url)
    yield store
    store.close()


# -- schema and migrations --------------------------------------------------


def test_a_new_database_gets_the_expected_schema(db: Path, url: str) -> None:
    SQLiteStore(url).close()

    assert schema(db) == EXPECTED_SCHEMA
    assert applied_versions(db) == [m.version for m in MIGRATIONS]


@pytest.mark.parametrize("already", range(len(MIGRATIONS)))
def test_a_database_at_any_older_version_migrates_to_the_same_schema(
    db: Path, url: str, already: int
) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    apply_migrations(conn, MIGRATIONS[:already])
    conn.close()

    SQLiteStore(url).close()

    assert schema(db) == EXPECTED_SCHEMA
    assert applied_versions(db) == [m.version for m in MIGRATIONS]


def test_migrating_jobs_from_0001_fills_the_schedule_counters_and_dependencies(
    db: Path, url: str
) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    apply_migrations(conn, MIGRATIONS[:1])
    insert = (
        "INSERT INTO jobs (id, status, priority, archived, received_at, version, doc) "
        "VALUES (?, ?, ?, 0, ?, 1, ?)"
    )
    for job_id, status, priority, depends in (
        (1, "success", 0, []),
        (2, "queued", 10, [1]),  # its dependency is final: ready
        (3, "queued", -10, [2]),  # waits for job 2
        (4, "running", 0, []),
    ):
        doc = make_job(depends=tuple(depends)).to_doc()
        doc["ops"][0]["status"], doc["ops"][0]["priority"] = status, priority
        conn.execute(insert, (job_id, status, priority, 1000.0 + job_id, json.dumps(doc)))
    conn.execute("UPDATE meta SET value = '4' WHERE key = 'unarchived'")
    conn.close()

    store = SQLiteStore(url)
    try:
        assert store.counts() == {
            (OpStatus.SUCCESS, 0): 1,
            (OpStatus.QUEUED, 10): 1,
            (OpStatus.QUEUED, -10): 1,
            (OpStatus.RUNNING, 0): 1,
        }
        daemon = store.register_daemon().daemon_id
        [job] = store.claim(daemon, 10)
        assert job.id == 2
        job.ops[0].status = OpStatus.SUCCESS
        store.save(job)
        assert [j.id for j in store.claim(daemon, 10)] == [3]
    finally:
        store.close()


def test_opening_ends_the_leases_of_earlier_daemons(db: Path, url: str) -> None:
    store = SQLiteStore(url)
    [job_id] = store.insert_jobs([make_job()], max_unarchived=None)
    previous = store.register_daemon("jobplaned").daemon_id
    store.claim(previous, 1)
    store.close()

    store = SQLiteStore(url)  # the lock says nobody else uses the file: no lease to wait for
    try:
        lease = store.register_daemon("jobplaned")
        assert lease.epoch == 2
        [job] = store.reclaim(lease.daemon_id)
        assert (job.id, job.owner) == (job_id, lease.daemon_id)
    finally:
        store.close()


def test_reopening_applies_no_migration_twice(db: Path, url: str) -> None:
    SQLiteStore(url).close()
    conn = sqlite3.connect(db, isolation_level=None)
    assert apply_migrations(conn, MIGRATIONS) == []
    conn.close()


def test_a_failed_migration_leaves_the_database_untouched(db: Path) -> None:
    broken = Migration(2, "broken", "CREATE TABLE extra (x INTEGER);\nCREATE TABLE oops (;\n")
    conn = sqlite3.connect(db, isolation_level=None)
    with pytest.raises(sqlite3.Error):
        apply_migrations(conn, [MIGRATIONS[0], broken])
    conn.close()

    assert schema(db) == []


def test_a_database_newer_than_this_code_is_refused(db: Path, url: str) -> None:
    SQLiteStore(url).close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (len(MIGRATIONS) + 1,))
    conn.close()

    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(url)


def test_split_statements_keeps_comments_and_semicolons_in_strings() -> None:
    script = "-- a table\nCREATE TABLE t (x TEXT);\nINSERT INTO t VALUES ('a;b');\n-- the end\n"
    assert split_statements(script) == [
        "-- a table\nCREATE TABLE t (x TEXT);",
        "INSERT INTO t VALUES ('a;b');",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE t (x TEXT)")


def _explain_params(sql: str) -> dict[str, Any]:
    params: dict[str, Any] = dict.fromkeys(re.findall(r":(\w+)", sql), 1)
    return params | {"ids": "[1]", "statuses": '["queued"]'}


@pytest.mark.parametrize(
    "name",
    sorted(n for n, sql in Q.items() if re.search(r"^(SELECT|UPDATE)\b", sql, re.MULTILINE)),
)
def test_no_query_reads_a_whole_table(store: SQLiteStore, db: Path, name: str) -> None:
    conn = sqlite3.connect(db)
    plan = [
        row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + Q[name], _explain_params(Q[name]))
    ]
    conn.close()
    full_scans = [step for step in plan if re.fullmatch(r"SCAN (jobs|job_log)", step)]
    assert full_scans == [], plan


# -- URLs and opening -------------------------------------------------------


def test_relative_and_absolute_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///./here.db")
    assert isinstance(relative, SQLiteStore)
    assert relative.path == str(tmp_path / "here.db")
    relative.close()

    absolute = open_store(f"sqlite:///{tmp_path / 'there.db'}")  # sqlite:////tmp/...
    assert isinstance(absolute, SQLiteStore)
    assert absolute.path == str(tmp_path / "there.db")
    absolute.close()
    assert (tmp_path / "here.db").exists()
    assert (tmp_path / "there.db").exists()


@pytest.mark.parametrize("bad", ["sqlite://jobs.db", "sqlite:///", "sqlite:jobs.db"])
def test_malformed_urls_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        SQLiteStore(bad)


def test_a_missing_directory_is_named_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(StoreError, match=re.escape(str(missing))):
        SQLiteStore(f"sqlite:///{missing / 'jobs.db'}")
    assert not missing.exists()


def test_a_file_that_is_not_a_database_is_a_store_error(db: Path, url: str) -> None:
    db.write_bytes(b"certainly not SQLite\n" * 200)
    for _ in range(2):  # the failed open let go of the process lock
        with pytest.raises(StoreError, match="not a database") as info:
            SQLiteStore(url)
        assert not isinstance(info.value, StoreLocked)
        assert isinstance(info.value.__cause__, sqlite3.Error)


@pytest.mark.parametrize(("durability", "synchronous"), [("normal", 1), ("full", 2)])
def test_durability_sets_wal_and_synchronous(
    db: Path, url: str, durability: Any, synchronous: int
) -> None:
    store = SQLiteStore(url, durability=durability)
    try:
        writer = store._writer
        assert writer is not None
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == synchronous
        assert writer.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    finally:
        store.close()


# -- the process lock -------------------------------------------------------


def test_a_second_store_on_the_same_file_is_refused_naming_the_holder(
    db: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = SQLiteStore(url)
    monkeypatch.chdir(db.parent)
    for same_file in (
        url,
        "sqlite:///jobs.db",
        f"sqlite:///{db.parent}/../{db.parent.name}/jobs.db",
    ):
        with pytest.raises(StoreLocked) as info:
            SQLiteStore(same_file)
        assert str(db) in str(info.value)
        assert f"process {os.getpid()}" in str(info.value)

    assert first.insert_jobs([make_job()], max_unarchived=None) == [1]  # undisturbed
    first.close()
    second = SQLiteStore(url)  # close() let go of the lock
    assert second.load(1).id == 1
    second.close()


AliasMaker = Callable[[Path, Path], None]


def _another_name(kind: str, db: Path, bind_mount: AliasMaker) -> Path:
    """The file ``db`` under a second name: a hard link, a bind mount of the file
    itself, or its folder under another name."""
    if kind == "hard link":
        alias = db.parent / "alias.db"
        os.link(db, alias)
        return alias
    if kind == "bind-mounted file":
        alias = db.parent / "alias.db"
        alias.touch()
        bind_mount(db, alias)
        return alias
    other = db.parent.parent / f"{db.parent.name}-other"
    if kind == "symlinked folder":
        other.symlink_to(db.parent, target_is_directory=True)
    else:
        bind_mount(db.parent, other)
    return other / db.name


NAMES = ["hard link", "bind-mounted file", "symlinked folder", "bind-mounted folder"]


@pytest.mark.parametrize("kind", NAMES)
def test_the_same_file_under_another_name_is_refused(
    db: Path, url: str, kind: str, bind_mount: AliasMaker
) -> None:
    first = SQLiteStore(url)
    alias = _another_name(kind, db, bind_mount)

    with pytest.raises(StoreLocked) as info:
        SQLiteStore(f"sqlite:///{alias}")
    assert f"process {os.getpid()} (this process)" in str(info.value)
    assert str(alias) in str(info.value)
    if kind in ("hard link", "bind-mounted file"):
        assert not Path(f"{alias}-wal").exists()  # SQLite never opened that name

    assert first.insert_jobs([make_job()], max_unarchived=None) == [1]  # undisturbed
    first.close()
    second = SQLiteStore(f"sqlite:///{alias}")  # close() let go of the lock
    assert second.load(1).id == 1
    second.close()


def test_a_refused_open_leaves_the_holders_sqlite_locks_alone(db: Path, url: str) -> None:
    # SQLite's own locks are POSIX locks, which a process loses when it closes
    # *any* descriptor of the file. Had the refused open closed one, the
    # holder's shared lock would be gone, and the next connection to close
    # (here, in another process) would think itself the last one and delete
    # the write-ahead log from under the holder.
    first = SQLiteStore(url)
    first.insert_jobs([make_job()], max_unarchived=None)
    alias = db.parent / "alias.db"
    os.link(db, alias)
    for name in (url, f"sqlite:///{alias}"):
        with pytest.raises(StoreLocked):
            SQLiteStore(name)

    other = subprocess.run(
        [sys.executable, "-c", LOOK, str(db)], capture_output=True, text=True, timeout=WAIT
    )
    assert other.returncode == 0, other.stderr
    assert Path(f"{db}-wal").exists(), "another process took the holder's database away"
    assert first.load(1).id == 1
    first.close()


def test_a_read_still_running_at_close_keeps_the_file_locked_until_it_ends(url: str) -> None:
    first = SQLiteStore(url)
    with first._reading() as conn:  # a read another thread is in the middle of
        first.close()
        with pytest.raises(StoreLocked):  # its connection still holds SQLite locks
            SQLiteStore(url)
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)
    SQLiteStore(url).close()


LOOK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT COUNT(*) FROM jobs").fetchone()
conn.close()
"""


CHILD = """
import sys
from jobplane.jobs import Job, OpState, OpStatus
from jobplane.stores.sqlite import SQLiteStore

store = SQLiteStore(sys.argv[1])
[job_id] = store.insert_jobs([Job(0, [OpState("test.noop", {})], 1.0)], max_unarchived=None)
job = store.load(job_id)
job.ops[0].status = OpStatus.RUNNING
store.save(job)
print("ready", job_id, job.version, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def child(url: str) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """A process that opened the store, saved a job and waits; yields (process, id, version)."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            readable, _, _ = select.select([proc.stdout], [], [], WAIT)
            assert readable, "the child did not open the store in time"
            word, job_id, version = proc.stdout.readline().split()
            assert word == "ready"
            yield proc, int(job_id), int(version)
        finally:
            proc.kill()
            proc.wait(WAIT)


def test_a_killed_holder_releases_the_lock(
    url: str, child: tuple[subprocess.Popen[str], int, int]
) -> None:
    proc, _, _ = child
    with pytest.raises(StoreLocked, match=f"process {proc.pid}"):
        SQLiteStore(url)
    alias = Path(database_path(url)).parent / "alias.db"
    os.link(database_path(url), alias)
    with pytest.raises(StoreLocked, match=f"process {proc.pid}"):
        SQLiteStore(f"sqlite:///{alias}")

    proc.kill()  # SIGKILL: no cleanup runs in the child
    proc.wait(WAIT)
    SQLiteStore(url).close()


def test_a_save_that_returned_survives_the_process_being_killed(
    url: str, child: tuple[subprocess.Popen[str], int, int]
) -> None:
    proc, job_id, version = child
    proc.kill()
    proc.wait(WAIT)

    store = SQLiteStore(url)
    try:
        job = store.load(job_id)
        assert (job.version, job.status) == (version, OpStatus.RUNNING)
    finally:
        store.close()


# -- group commit -----------------------------------------------------------


class Arrivals(list[Any]):
    """A pending list that sets ``all_here`` once ``expected`` writes queued up."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.all_here = threading.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        if len(self) >= self.expected:
            self.all_here.set()


def test_a_failing_write_in_a_group_commit_undoes_only_itself(store: SQLiteStore) -> None:
    first, second = store.insert_jobs([make_job(), make_job()], max_unarchived=None)
    stale = store.load(second)
    moved = store.load(second)
    moved.ops[0].status = OpStatus.WAITING
    store.save(moved)
    good_first, good_second = store.load(first), store.load(second)
    good_first.ops[0].result = "first"
    good_first.ops[0].status = OpStatus.RUNNING  # moves a count, in the batch that fails one
    good_second.ops[0].result = "second"
    # Its first job is written before its second one fails the batch.
    bad_batch = [make_job(), make_job(depends=(-5,))]

    arrivals = Arrivals(4)
    with ThreadPoolExecutor(4) as pool:
        with store._writer_lock:  # hold the writer so that all four queue up
            store._pending = arrivals
            futures: list[Future[Any]] = [
                pool.submit(store.save, good_first),
                pool.submit(store.insert_jobs, bad_batch, max_unarchived=None),
                pool.submit(store.save, stale),
                pool.submit(store.save, good_second),
            ]
            assert arrivals.all_here.wait(WAIT)
        # One of the four now leads and commits all of them in one transaction.
        assert futures[0].result(timeout=WAIT) is None
        with pytest.raises(DependencyError):
            futures[1].result(timeout=WAIT)
        with pytest.raises(StoreConflict):
            futures[2].result(timeout=WAIT)
        assert futures[3].result(timeout=WAIT) is None

    assert [job.id for job in store.list_jobs(archived=None)] == [first, second]
    assert store.load(first).ops[0].result == "first"
    assert store.load(second).ops[0].result == "second"
    assert store.load(second).version == good_second.version
    listed: dict[tuple[OpStatus, int], int] = {}
    for job in store.list_jobs():
        listed[job.status, job.priority] = listed.get((job.status, job.priority), 0) + 1
    assert store.counts() == listed  # only the writes that stayed moved the counts
    # The undone insert did not count toward the limit either.
    store.insert_jobs([make_job()], max_unarchived=3)
    with pytest.raises(QueueFull, match="holds 3 unarchived jobs, the limit is 3"):
        store.insert_jobs([make_job()], max_unarchived=3)


def test_saves_in_submission_order_read_only_the_rows_beyond_the_remembered_ones(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "RECENT_ROWS", 4)
    ids = store.insert_jobs([make_job() for _ in range(6)], max_unarchived=None)
    reads: list[str] = []
    assert store._writer is not None
    store._writer.set_trace_callback(
        lambda sql: reads.append(sql) if sql.startswith("SELECT status, priority") else None
    )
    for status in (OpStatus.RUNNING, OpStatus.SUCCESS):
        for job_id in ids:
            job = store.load(job_id)
            job.ops[0].status = status
            store.save(job)
    # Jobs 1-4 were remembered at insert and 5-6 not (full): only theirs are
    # read, at each of their two saves. Forgetting the oldest row to make room
    # read every row at every save: each save evicted the row saved next.
    assert len(reads) == 4
    assert store.counts() == {(OpStatus.SUCCESS, 0): 6}


def test_inserts_in_one_group_commit_count_toward_the_limit_together(
    store: SQLiteStore,
) -> None:
    arrivals = Arrivals(2)
    with ThreadPoolExecutor(2) as pool:
        with store._writer_lock:  # hold the writer so that both queue up
            store._pending = arrivals
            futures = [
                pool.submit(store.insert_jobs, [make_job(), make_job()], max_unarchived=3)
                for _ in range(2)
            ]
            assert arrivals.all_here.wait(WAIT)
        outcomes = []
        for future in futures:
            try:
                outcomes.append(len(future.result(timeout=WAIT)))
            except QueueFull:
                outcomes.append("full")
    assert sorted(outcomes, key=str) == [2, "full"]
    assert len(store.list_jobs()) == 2


def test_the_limit_counts_the_jobs_found_at_open(url: str) -> None:
    store = SQLiteStore(url)
    first, _ = store.insert_jobs([make_job(), make_job()], max_unarchived=None)
    job = store.load(first)
    job.ops[0].status = OpStatus.SUCCESS
    store.save(job)
    store.archive([first])
    store.close()

    store = SQLiteStore(url)
    try:
        store.insert_jobs([make_job()], max_unarchived=2)
        with pytest.raises(QueueFull, match="holds 2 unarchived jobs, the limit is 2"):
            store.insert_jobs([make_job()], max_unarchived=2)
    finally:
        store.close()


def test_a_failed_unwaited_save_fails_the_next_save_in_the_same_commit(
    store: SQLiteStore,
) -> None:
    [job_id] = store.insert_jobs([make_job()], max_unarchived=None)
    stale = store.load(job_id)
    moved = store.load(job_id)
    moved.ops[0].status = OpStatus.WAITING
    store.save(moved)  # the stored version is now stale.version + 1
    stale.ops[0].status = OpStatus.RUNNING

    arrivals = Arrivals(2)
    with ThreadPoolExecutor(1) as pool:
        with store._writer_lock:  # hold the writer so both land in one batch
            store._pending = arrivals
            store.save(stale, wait=False, release=True)  # will conflict; version bumped anyway
            # ... so this save's version matches the stored one by accident.
            # (A release is never absorbed by the next save: it stays pending.)
            later = pool.submit(store.save, stale)
            assert arrivals.all_here.wait(WAIT)
        with pytest.raises(StoreConflict, match="not waited for failed"):
            later.result(timeout=WAIT)
    loaded = store.load(job_id)
    assert loaded.status is OpStatus.WAITING and loaded.version == moved.version


def test_values_orjson_refuses_are_stored_by_the_standard_library(store: SQLiteStore) -> None:
    [job_id] = store.insert_jobs([make_job()], max_unarchived=None)
    job = store.load(job_id)
    job.ops[0].result = {"big": 2**70, "text": "é ✓"}
    store.save(job)
    assert store.load(job_id).ops[0].result == {"big": 2**70, "text": "é ✓"}


# -- unreadable records (guarantee 7) ---------------------------------------


def _damage(db: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql, params)
    conn.close()


def test_an_unreadable_record_is_logged_once_without_its_text(
    store: SQLiteStore, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good, spoiled = store.insert_jobs([make_job(), make_job()], max_unarchived=None)
    _damage(db, "UPDATE jobs SET doc = ? WHERE id = ?", '{"ops": [{"password": "hunter2"', spoiled)

    with caplog.at_level("INFO", logger="jobplane.stores.sqlite"):
        for _ in range(3):
            store.load(spoiled, with_log=True)
            store.list_jobs(archived=None)
            store.unfinished()
            store.quarantined(scan=True)

    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.job_id == spoiled  # type: ignore[attr-defined]
    assert f"job {spoiled}: its stored record cannot be read (not JSON; 31 characters)" in (
        record.getMessage()
    )
    assert "hunter2" not in caplog.text
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, unreadable, status FROM jobs ORDER BY id").fetchall()
    conn.close()
    assert rows == [(good, 0, "queued"), (spoiled, 1, "error")]  # marked, once


def test_damaged_columns_never_fail_a_read(store: SQLiteStore, db: Path) -> None:
    [job_id] = store.insert_jobs([make_job()], max_unarchived=None)
    store.append_log(job_id, 0, 1.0, "fine")
    store.append_log(job_id, 0, 2.0, "spoiled")
    _damage(db, "UPDATE jobs SET status = 'exploded', version = 'v' WHERE id = ?", job_id)
    _damage(db, "UPDATE job_log SET message = x'ff00', time = 'then' WHERE serial = 2")

    job = store.load(job_id, with_log=True)
    assert job.status is OpStatus.ERROR
    assert [(e.serial, e.message) for e in job.log] == [(1, "fine"), (2, "(log line unreadable)")]
    assert [e.time for e in store.read_log(job_id)] == [1.0, 0.0]


def test_counts_of_damaged_columns_after_reopening(url: str, db: Path) -> None:
    # The store counts in memory from its own writes: a row changed behind
    # its back (by hand, while it was closed) counts as what it reads as
    # once the store opens again.
    store = SQLiteStore(url)
    [job_id] = store.insert_jobs([make_job()], max_unarchived=None)
    store.close()
    _damage(db, "UPDATE jobs SET status = 'exploded', priority = 'p' WHERE id = ?", job_id)

    store = SQLiteStore(url)
    try:
        assert store.counts() == {(OpStatus.ERROR, 0): 1}
    finally:
        store.close()


# -- counts kept in memory -------------------------------------------------


def _recount(db: Path) -> dict[tuple[Any, Any], int]:
    conn = sqlite3.connect(db)
    rows = conn.execute(Q["count_jobs"]).fetchall()
    conn.close()
    return {(status, priority): n for status, priority, n in rows}


def _counted(store: SQLiteStore) -> dict[tuple[Any, Any], int]:
    return {(status.value, priority): n for (status, priority), n in store.counts().items()}


def test_counts_in_memory_follow_every_kind_of_write(store: SQLiteStore, db: Path) -> None:
    first, second, third, waiting = store.insert_jobs(
        [make_job(), make_job(), make_job(), make_job(depends=(1,))], max_unarchived=None
    )
    assert _counted(store) == _recount(db) == {("queued", 0): 4}

    job = store.load(first)
    job.ops[0].status = OpStatus.RUNNING
    stale = job.clone()
    store.save(job, wait=False)
    job.ops[0].status = OpStatus.SUCCESS
    store.save(job)  # commits the unwaited save too
    stale.ops[0].status = OpStatus.CANCELED
    with pytest.raises(StoreConflict):
        store.save(stale)  # refused: counts nothing
    other = store.load(second)
    other.ops[0].priority = -5
    store.save(other)
    assert _counted(store) == _recount(db)

    lease = store.register_daemon("counting")
    claimed = store.claim(lease.daemon_id, 10)
    assert {job.id for job in claimed} == {second, third, waiting}  # first released it
    assert store.archive([first]) == [first]
    _damage(db, "UPDATE jobs SET doc = 'spoiled' WHERE id = ?", third)
    store.load(third)  # quarantined: marked error
    store.remove_unreadable(third)
    assert _counted(store) == _recount(db) == {("queued", -5): 1, ("queued", 0): 1}


def test_counts_never_trail_a_state_a_reader_has_seen(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between the COMMIT (seen at once by readers' own connections) and the
    # counts taking the commit in, a reader that saw the job must not get
    # counts without it: status() right after wait() would be one short.
    [job_id] = store.insert_jobs([make_job()], max_unarchived=None)
    committed, go = threading.Event(), threading.Event()
    count = store._count

    def held_after_commit(moves: Any) -> None:  # the writer, between COMMIT and counting
        committed.set()
        assert go.wait(WAIT)
        count(moves)

    class Gate:
        """The counts' lock for the reader: lets the writer go on only if the lock is taken."""

        def __init__(self, lock: Any) -> None:
            self.lock = lock

        def __enter__(self) -> None:
            if not self.lock.acquire(blocking=False):  # the writer holds it: let it count
                go.set()
                assert self.lock.acquire(timeout=WAIT)

        def __exit__(self, *exc: object) -> None:
            self.lock.release()
            go.set()

    monkeypatch.setattr(store, "_count", held_after_commit)
    job = store.load(job_id)
    job.ops[0].status = OpStatus.SUCCESS
    with ThreadPoolExecutor(1) as pool:
        saving = pool.submit(store.save, job)
        assert committed.wait(WAIT)
        assert store.load(job_id).status is OpStatus.SUCCESS  # a reader sees it committed
        monkeypatch.setattr(store, "_counts_lock", Gate(store._counts_lock))
        assert store.counts() == {(OpStatus.SUCCESS, 0): 1}
        saving.result(WAIT)


# -- claims -------------------------------------------------------------------------


def test_with_full_durability_a_claim_alone_commits_without_fsync(url: str) -> None:
    store = SQLiteStore(url, durability="full")
    try:
        store.insert_jobs([make_job(), make_job()], max_unarchived=None)
        daemon = store.register_daemon().daemon_id
        writer = store._writer
        assert writer is not None
        statements: list[str] = []
        writer.set_trace_callback(statements.append)

        [job] = store.claim(daemon, 1)
        assert statements[0] == "PRAGMA synchronous = NORMAL"
        assert statements[-1] == "PRAGMA synchronous = FULL"
        assert "COMMIT" in statements

        statements.clear()
        job.ops[0].status = OpStatus.RUNNING
        store.save(job)  # its op's start: fsynced, and the claim's frames with it
        assert not [sql for sql in statements if "synchronous" in sql]
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_a_claim_after_a_short_claim_touches_nothing_until_a_job_may_be_ready(
    store: SQLiteStore,
) -> None:
    store.insert_jobs([make_job() for _ in range(3)], max_unarchived=None)
    daemon = store.register_daemon().daemon_id
    statements: list[str] = []
    writer = store._writer
    assert writer is not None
    writer.set_trace_callback(statements.append)

    def claim(limit: int) -> tuple[int, bool]:
        statements.clear()
        return len(store.claim(daemon, limit)), bool(statements)

    assert claim(2) == (2, True)  # found all it asked for: more may wait
    assert claim(2) == (1, True)  # came back short: the schedule is empty now
    assert claim(2) == (0, False)  # nothing became ready since: no transaction at all
    store.insert_jobs([make_job()], max_unarchived=None)
    [job] = store.claim(daemon, 2)  # an insert made one ready: read again
    assert claim(2) == (0, False)
    store.save(job, release=True)  # given back: ready again
    assert claim(2) == (1, True)
    assert claim(2) == (0, False)
    store.heartbeat(daemon)  # now and then the schedule is read whatever moved
    assert claim(2) == (0, True)
    store.unregister_daemon(daemon)
    with pytest.raises(LeaseLost):
        store.claim(daemon, 2)  # the lease is checked even when nothing is read


class Appends(list[Any]):
    """A pending list that sets ``second`` at the second append (items may leave it)."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.appends = 0
        self.expected = expected
        self.second = threading.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        self.appends += 1
        if self.appends >= self.expected:
            self.second.set()


def test_a_save_absorbs_the_pending_unwaited_save_before_it(store: SQLiteStore) -> None:
    """An op's unwaited start, still pending at its end: one row write for both."""
    [job_id] = store.insert_jobs([make_job()], max_unarchived=None)
    job = store.load(job_id)
    statements: list[str] = []
    heard: list[int] = []
    store.add_listener(heard.append)
    writer = store._writer
    assert writer is not None
    writer.set_trace_callback(statements.append)
    arrivals = Appends(2)
    with ThreadPoolExecutor(1) as pool:
        with store._writer_lock:  # nothing commits the start meanwhile
            store._pending = arrivals
            job.ops[0].status = OpStatus.RUNNING
            store.save(job, wait=False)
            assert job.version == 2
            job.ops[0].status = OpStatus.SUCCESS
            future = pool.submit(store.save, job)
            assert arrivals.second.wait(WAIT)  # the end is queued: it took the start out
            assert len(arrivals) == 1
        future.result(timeout=WAIT)
    writer.set_trace_callback(None)
    assert job.version == 3
    assert len([s for s in statements if "UPDATE jobs" in s]) == 1
    stored = store.load(job_id)
    assert stored.status is OpStatus.SUCCESS and stored.version == 3
    assert store.counts() == {(OpStatus.SUCCESS, stored.priority): 1}
    assert heard == [job_id]
    store.save(stored)  # the stored version is the one the caller holds
    assert store.load(job_id).version == 4


def test_a_save_that_follows_a_committed_unwaited_save_writes_alone(store: SQLiteStore) -> None:
    [job_id] = store.insert_jobs([make_job()], max_unarchived=None)
    job = store.load(job_id)
    job.ops[0].status = OpStatus.RUNNING
    store.save(job, wait=False)
    store.set_drained(False)  # a waited write: it commits whatever is pending first
    assert store.load(job_id).status is OpStatus.RUNNING
    job.ops[0].status = OpStatus.SUCCESS
    store.save(job)
    assert store.load(job_id).version == 3


# -- checkpoints off the commit path ---------------------------------------------


def test_a_daemon_s_flusher_starts_when_it_registers_and_stops_with_the_store(
    url: str,
) -> None:
    """Not at its first op's unwaited save, under the lock every write takes."""

    def flushers() -> int:
        return sum(t.name == "jobplane-sqlite-flusher" for t in threading.enumerate())

    before = flushers()
    store = SQLiteStore(url)
    try:
        assert flushers() == before  # a store nobody runs jobs from starts none
        store.register_daemon("d")
        assert flushers() == before + 1
    finally:
        store.close()
    assert flushers() == before


def test_a_thread_of_its_own_checkpoints_the_wal_and_stops_with_the_store(
    url: str, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 3)
    store = SQLiteStore(url)
    writer = store._writer
    assert writer is not None
    assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 20000
    for _ in range(3):  # three commits: the third asks for a checkpoint
        store.insert_jobs([make_job()], max_unarchived=None)
    assert store._checkpointed.wait(10.0)
    names = {thread.name for thread in threading.enumerate()}
    assert "jobplane-sqlite-checkpointer" in names
    store.close()
    names = {thread.name for thread in threading.enumerate()}
    assert "jobplane-sqlite-checkpointer" not in names
    reopened = SQLiteStore(url)  # the checkpoints left a database that reads back whole
    try:
        assert [job.id for job in reopened.list_jobs(limit=10)] == [1, 2, 3]
    finally:
        reopened.close()


def test_the_wal_is_written_over_in_place_once_it_holds_the_ring(
    url: str, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past WAL_RING_PAGES the checkpointer copies all of it, so the next commit begins it anew."""
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 1)
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY_RANGE", (1, 1))
    monkeypatch.setattr(sqlite_module, "WAL_RING_PAGES", 16)
    store = SQLiteStore(url)
    wal = Path(f"{db}-wal")
    try:
        for _ in range(200):  # 2 to 3 pages each
            store._checkpointed.clear()
            store.insert_jobs([make_job()], max_unarchived=None)
            assert store._checkpointed.wait(10.0)
        frame = 4096 + 24  # a page and its frame header
        assert wal.stat().st_size < 64 * frame  # without the ring: 132 frames here
    finally:
        store.close()
    reopened = SQLiteStore(url)
    try:
        assert len(reopened.list_jobs(limit=500)) == 200
    finally:
        reopened.close()


def test_with_durability_full_sqlite_checkpoints_as_it_always_does(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 1)
    store = SQLiteStore(url, durability="full")
    try:
        writer = store._writer
        assert writer is not None
        assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        store.insert_jobs([make_job()], max_unarchived=None)
        store.insert_jobs([make_job()], max_unarchived=None)
        assert store._checkpointer is None  # never started
    finally:
        store.close()


def test_commits_between_checkpoints_follow_the_pages_each_one_copied(url: str) -> None:
    store = SQLiteStore(url)
    try:
        every = store._checkpoint_every
        store._adapt_checkpoints(100)  # few new pages: checkpoint less often
        assert store._checkpoint_every == every * 2
        store._adapt_checkpoints(100 + 5000)  # many: more often
        assert store._checkpoint_every == every
        store._adapt_checkpoints(50)  # the WAL was begun anew: all 50 are new, few
        assert store._checkpoint_every == every * 2
        store._adapt_checkpoints(None)  # no answer: no change
        assert store._checkpoint_every == every * 2
    finally:
        store.close()


def test_the_statements_compiled_at_open_touch_no_job(store: SQLiteStore) -> None:
    store.insert_jobs([make_job() for _ in range(5)], max_unarchived=None)
    writer = store._writer
    assert writer is not None
    with store._writer_lock:
        writer.execute("BEGIN IMMEDIATE")
        try:
            for name in sqlite_module.HOT_STATEMENTS:
                sql = Q[name]
                cursor = writer.execute(sql, sqlite_module._idle_params(sql))
                rows = cursor.fetchall()
                if name == "queue_state":
                    continue  # the queue's own state, not a job
                assert rows == [], name  # a read of jobs at open would grow with the backlog
                if not sql.lstrip().upper().startswith("SELECT"):
                    assert cursor.rowcount <= 1, name  # insert_job: one row, rolled back
        finally:
            writer.execute("ROLLBACK")
    assert [job.id for job in store.list_jobs(limit=10)] == [1, 2, 3, 4, 5]


def test_a_checkpoint_that_fails_is_logged_once_and_the_store_carries_on(
    url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 1)
    store = SQLiteStore(url)
    tried = threading.Semaphore(0)

    def no_connection() -> sqlite3.Connection:
        tried.release()
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(store, "_connect", no_connection)
    try:
        with caplog.at_level("WARNING", logger="jobplane.stores.sqlite"):
            for _ in range(2):  # each commit asks for a checkpoint; each attempt fails
                store.insert_jobs([make_job()], max_unarchived=None)
                assert tried.acquire(timeout=10.0)
        assert not store._checkpointed.is_set()
        warnings = [r for r in caplog.records if "checkpointing the WAL failed" in r.message]
        assert len(warnings) == 1  # once per episode, not per attempt
        monkeypatch.undo()  # readers open connections too
        assert [job.id for job in store.list_jobs(limit=10)] == [1, 2]  # writes went on
    finally:
        monkeypatch.undo()
        store.close()
