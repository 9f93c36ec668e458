"""The SQLite store: one database file, used by one daemon at a time.

How it keeps the contract of :mod:`jobplane.stores.base`:

* **One daemon per file.** Opening takes an exclusive ``flock`` on the
  database file itself (see ``_ProcessLock``), so the lock is keyed on the
  file, not its name; a second store on the same file, in this process or
  another, under any name (hard link, bind mount, symlink), gets
  ``StoreLocked`` naming the holder's pid. The kernel drops the lock when
  the process dies, however it dies.
* **Writes: group commit.** Every write is a work item appended to
  ``_pending``; its caller then takes ``_writer_lock``. If a previous holder
  already committed the item, the caller just takes its outcome. Otherwise
  the caller leads: it takes every pending item and commits them in one
  ``BEGIN IMMEDIATE ... COMMIT`` on the writer connection, each item under
  its own savepoint so that one item's error undoes only that item. So each
  call returns only after its own item is committed (or failed); it then
  calls the listeners itself, outside the transaction and the lock.
* **Writes that need not wait** (``save(job, wait=False)``) are appended to
  ``_pending`` the same way, but the caller goes on at once: the next
  leader commits them, or the flusher thread does, ``FLUSH_DELAY`` seconds
  after the first such write, if no leader came by meanwhile. Their
  listeners run once they are committed.
* **Reads** use a pool of read connections. In WAL mode they see only
  committed data and never wait for the writer.
* **Unreadable records** (guarantee 7): a read that meets a row whose
  document cannot be read returns a quarantined job instead, logs it once,
  and, once its read connection is back, marks the row (``unreadable = 1``,
  status ``error``) in a write of its own, so that counts, filters and
  archiving agree with what reads return. A failed mark is logged: the next
  read tries again.
* **Counts** (guarantee 13): the store counts unarchived jobs by (status,
  priority) once when it opens (the covering index ``jobs_unarchived``), then
  in memory: each write notes how it moves jobs between counts
  (``_Deltas``), and the counts take the notes of the writes that were
  committed. One daemon per file makes that exact; a trigger per save cost
  more than the save itself. ``oldest_queued`` seeks the first queued job
  of each priority that the counts hold. Their sum is the number of
  unarchived jobs that ``max_jobs`` limits (a counter row updated by every
  insert cost a page in each commit).
* **Durability**: WAL always; ``synchronous=NORMAL`` survives a crash of the
  process, ``FULL`` also a loss of power.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar, Generic, TypeVar

from .. import priorities
from ..errors import (
    DependencyError,
    JobNotFound,
    JobStateError,
    LeaseLost,
    QueueDrained,
    QueueFull,
    StoreConflict,
    StoreError,
    StoreLocked,
    ValidationError,
)
from ..jobs import FINAL, PENDING, ControlRequests, Dependency, Job, LogEntry, OpStatus
from .base import (
    DEFAULT_AGING_INTERVAL,
    DEFAULT_LEASE_S,
    Clock,
    Durability,
    Lease,
    Store,
    encode_json,
    queue_full_message,
)
from .records import Unreadable, UnreadableRecord, job_from_record, quarantined_job, size_of
from .schedule import aging_steps, apply_aging, clamp_limit, schedule_key
from .sql import SQL_ROOT, Migration, load_migrations, load_queries

logger = logging.getLogger(__name__)
Q = load_queries(SQL_ROOT, "sqlite")
MIGRATIONS = load_migrations(SQL_ROOT, "sqlite")
URL_PREFIX = "sqlite:///"
BUSY_TIMEOUT_S = 10.0
FLUSH_DELAY = 0.002
"""Longest time a write that need not wait stays uncommitted when nothing else commits."""
CHECKPOINT_EVERY = 256
"""Commits between the checkpointer thread's copies of the WAL into the database, at first.

SQLite checkpoints in the committing thread by default, every 1,000 WAL
pages: that commit then takes milliseconds (it copies the pages and syncs
the database file), and whoever waits for it does too. Here a thread of its
own does it, on a connection of its own, without blocking the writer
(``PRAGMA wal_checkpoint(PASSIVE)``); the writer's own checkpoint stays as
a backstop at 20,000 pages (``writer_autocheckpoint``). Python's sqlite3
does not tell how many pages a commit wrote, so the number of commits
between checkpoints adapts: doubled when a checkpoint copied fewer than
half of ``CHECKPOINT_PAGES``, halved when it copied more than twice as many
(within ``CHECKPOINT_EVERY_RANGE``). Checkpoints then come about as often
as SQLite's own would: no more syncs of the database file than before.
Under continuous writes the WAL is seldom wholly copied at the moment of a
commit, and SQLite begins it anew only then: so once it holds
``WAL_RING_PAGES``, the checkpointer copies what was committed during its
copy once more, holding the writer's lock (a few pages and the syncs),
and the next commit begins the WAL anew. The ``-wal`` file so stays near
16 MB and is written over in place: a commit that extends the file costs
more (a one-row save here: 24-27 µs of CPU against 21-22 µs), and without
this the file grew to 80 MB, the writer's backstop, after every open.

With durability ``full`` none of this: every commit syncs the WAL anyway,
a checkpoint's sync adds little to the commit that makes it, and a thread
syncing beside the commits cost 8% of a drain's throughput. SQLite's own
checkpoints stay.
"""
CHECKPOINT_PAGES = 1000
WAL_RING_PAGES = 4000
CHECKPOINT_EVERY_RANGE = (16, 65_536)

FRESH_JOBS = 16_384
"""Jobs this store inserted and keeps, with their documents, until claimed (``_parse_claimed``)."""

RECENT_ROWS = 32_768
"""Most rows whose counted columns the store remembers from its own writes (about 4 MB).

Only unfinished rows: a save that makes a job final forgets it. When full,
the store remembers no new row (rather than forgetting an old one: jobs are
saved in about the order they came, so the oldest are needed next) and a
save of a row it does not remember reads its columns first.
"""

CLAMP_BATCH = 10_000
"""Most jobs a claim files in the schedule, and under HIGHEST when their aging gets there."""
_FINAL = frozenset(str(status) for status in FINAL)
_PENDING_COLUMN = frozenset(str(status) for status in PENDING)

_LIST_QUERIES = {
    (None, False): Q["list_jobs"],
    (False, False): Q["list_unarchived_jobs"],
    (True, False): Q["list_archived_jobs"],
    (None, True): Q["list_jobs_desc"],
    (False, True): Q["list_unarchived_jobs_desc"],
    (True, True): Q["list_archived_jobs_desc"],
}
"""The list query by (archived, newest first)."""
MAX_ROWID = 2**63 - 1

_STATUSES = {status.value: status for status in OpStatus}
_TEXT = {status: status.value for status in OpStatus}
"""A status's text, for SQL (``.value`` of an enum is a property: slower on hot paths)."""
_T = TypeVar("_T")
_Row = tuple[Any, ...]
_Deltas = dict[tuple[Any, Any], int]
"""How a write moves unarchived jobs between (status, priority) counts (the columns as stored)."""
_Placed = tuple[int, tuple[Dependency, ...], str]
"""An inserted job's id, its dependencies (resolved) and its stored document."""
_DEPENDENCIES = ("job_deps", "rows")
_FILED = ("jobs_unfiled", "generation")
_EMPTY = ("jobs_schedule", "generation")
"""In a claim's counted moves: the ``_ready_gen`` as of which it found no more ready jobs."""
"""In a claim's counted moves: the ``_unfiled_gen`` as of which it filed every unfiled job."""
CLAMP_EVERY_S = 1.0
"""Claims file jobs whose aging reached HIGHEST under it at most this often (store's clock)."""
"""The key of a write's change to the number of job_deps rows in its ``_Deltas``."""
_encode = encode_json


def database_path(url: str) -> str:
    """The absolute path named by ``sqlite:///relative.db`` or ``sqlite:////abs.db``."""
    if not url.startswith(URL_PREFIX) or len(url) == len(URL_PREFIX):
        raise ValidationError(
            f"SQLite store URL {url!r} must look like sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )
    return os.path.abspath(url[len(URL_PREFIX) :])


def split_statements(script: str) -> list[str]:
    """The SQL statements of ``script``, in order (comments stay with the next one)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    leftover = [line for line in buffer.splitlines() if not line.lstrip().startswith("--")]
    if "".join(leftover).strip():
        raise ValueError(f"incomplete SQL statement at the end of the script: {buffer.strip()!r}")
    return statements


def apply_migrations(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration],
    *,
    clock: Callable[[], float] = time.time,
) -> list[int]:
    """Bring the schema up to the last of ``migrations`` in one transaction.

    Returns the versions applied now. ``conn`` must be in autocommit mode.

    Raises:
        StoreError: the database is at a version newer than the last migration.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(Q["create_migrations_table"])
        current = conn.execute(Q["schema_version"]).fetchone()[0]
        latest = migrations[-1].version if migrations else 0
        if current > latest:
            raise StoreError(
                f"the database schema is at version {current}, newer than this "
                f"jobplane knows ({latest}): use a newer jobplane"
            )
        applied = []
        for migration in migrations:
            if migration.version > current:
                for statement in split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    Q["record_migration"], {"version": migration.version, "applied_at": clock()}
                )
                applied.append(migration.version)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return applied


class _ProcessLock:
    """An exclusive ``flock`` on the database file itself, held through a descriptor of its own.

    The lock is keyed on the file (its device and inode), not on a name: a
    hard link, a bind mount or a symlink of the file or its folder reaches
    the same lock. ``flock`` locks are separate from the POSIX byte-range
    locks SQLite itself takes, so they do not disturb SQLite's locking.

    One trap: a process loses *all* its POSIX locks on a file when it closes
    *any* descriptor of it. So this process never opens a descriptor of a
    file one of its own stores holds (it checks ``_held`` by device and inode
    first), and a store lets go of its descriptor only after its SQLite
    connections are closed.
    """

    _held: ClassVar[dict[tuple[int, int], _ProcessLock]] = {}
    _held_mutex: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: str) -> None:
        self._strays: list[int] = []  # descriptors of this file that must outlive the lock
        with self._held_mutex:
            with suppress(FileNotFoundError):
                info = os.stat(path)
                if (info.st_dev, info.st_ino) in self._held:
                    raise _locked(path, f"{os.getpid()} (this process)")
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            info = os.fstat(fd)
            key = (info.st_dev, info.st_ino)
            if key in self._held:  # the name moved to a held file since the check above
                self._held[key]._strays.append(fd)  # closing it would drop SQLite's locks
                raise _locked(path, f"{os.getpid()} (this process)")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # no store of this process uses this file: nothing to drop
                raise _locked(path, _flock_holder(info) or "unknown") from None
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._key = fd, key
            self._held[key] = self

    def release(self) -> None:
        """Let go; only once every SQLite connection of the store is closed."""
        with self._held_mutex:
            del self._held[self._key]
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            for fd in (self._fd, *self._strays):
                os.close(fd)


def _locked(path: str, holder: str) -> StoreLocked:
    return StoreLocked(
        f"the store {path} is in use by process {holder}, which holds a lock on that "
        "database file (under this name or another: a hard link, a bind mount or a symlink)"
    )


def _flock_holder(info: os.stat_result) -> str | None:
    """The pid holding a ``flock`` on the file ``info`` describes, from Linux's /proc/locks."""
    file = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            for line in locks:
                fields = line.split()  # "1: FLOCK ADVISORY WRITE <pid> <maj:min:inode> 0 EOF"
                if fields[1:2] == ["FLOCK"] and file in fields and fields[4].isdigit():
                    return fields[4]
    except OSError:
        pass
    return None


class _Write(Generic[_T]):
    """One caller's share of a group commit; ``done`` once committed or failed."""

    __slots__ = (
        "absorbable",
        "after",
        "apply",
        "autocommit",
        "counted",
        "done",
        "durable",
        "error",
        "expected",
        "lost_job",
        "result",
        "single",
    )

    def __init__(
        self,
        apply: Callable[[sqlite3.Connection], _T],
        single: bool = False,
        after: Callable[[], None] | None = None,
        lost_job: int | None = None,
        counted: _Deltas | None = None,
        autocommit: bool | None = None,
        durable: bool = True,
    ) -> None:
        self.apply = apply
        self.durable = durable
        """False: committed alone (or with others like it), it needs no fsync (a claim)."""
        self.autocommit = single if autocommit is None else autocommit
        """Committed alone, ``apply`` runs without BEGIN/COMMIT (only if ``single``)."""
        self.counted = counted
        """Filled by ``apply``; the counts take it once the write is committed."""
        self.single = single
        """True if ``apply`` writes with one statement: alone, it needs no BEGIN/COMMIT."""
        self.after = after
        """For a write nobody waits for: run by whoever committed it, after the commit."""
        self.lost_job = lost_job
        """For a save nobody waits for: the job whose next save must fail if this one does."""
        self.absorbable: tuple[int, int] | None = None
        """For a save nobody waits for that a later save may absorb: (job id, its next version)."""
        self.expected = 0
        """With ``absorbable``: the version the save expects in the store."""
        self.done = False
        self.result: _T | None = None
        self.error: BaseException | None = None


class SQLiteStore(Store):
    """The store in one SQLite file (see the module docstring for the model)."""

    one_daemon = True  # the file's lock admits one process; it ends other leases at open

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = "normal",
        clock: Clock = time.time,
        lease_s: float = DEFAULT_LEASE_S,
        aging_interval: float = DEFAULT_AGING_INTERVAL,
    ) -> None:
        super().__init__(clock=clock, lease_s=lease_s, aging_interval=aging_interval)
        self.url = url
        self.durability = durability
        self.path = database_path(url)
        self._pending: list[_Write[Any]] = []
        self._absorbable: dict[int, _Write[Any]] = {}
        """The absorbable save in ``_pending`` of a job, by job id (one at most: see ``save``)."""
        self._pending_lock = threading.Lock()  # guards _pending and _flusher
        self._flusher: threading.Thread | None = None
        self._flush_wanted = threading.Event()
        self._stop_flusher = threading.Event()
        self._commits = 0  # the writer's (guarded by _writer_lock): commits made
        self._checkpoint_every = CHECKPOINT_EVERY  # the checkpointer's: see CHECKPOINT_EVERY
        self._wal_frames = 0  # the checkpointer's: pages in the WAL at its last checkpoint
        self._checkpointer: threading.Thread | None = None  # guarded by _pending_lock
        self._checkpoint_wanted = threading.Event()
        self._stop_checkpointer = threading.Event()
        self._checkpointed = threading.Event()  # set after each checkpoint (for tests)
        self._lost: set[int] = set()  # jobs whose unwaited save failed; the writer's
        self._writer_lock = threading.Lock()  # the leader's: guards _writer and its use
        self._closed = False
        self._readers_lock = threading.Lock()  # guards _idle_readers, _readers_out and _closed
        self._idle_readers: list[sqlite3.Connection] = []
        self._readers_out = 0  # read connections in use
        self._unlocking = False  # close() closed the writer: the last connection out unlocks
        self._reported: set[int] = set()  # unreadable records logged by this process
        self._reported_lock = threading.Lock()
        self._counts: _Deltas = {}  # unarchived jobs by (status, priority): see the docstring
        self._counts_lock = threading.Lock()
        # The writer's (guarded by _writer_lock): rows of job_deps, never fewer
        # than there are; and counted columns of rows it wrote last.
        self._dependencies = 0
        # Whether a claim may find a job, without a read: _ready_gen moves with
        # every write that may make a job ready (an insert, a save that gives a
        # job back or files it, released dependents, and each heartbeat, in
        # case); a claim that found fewer jobs than it asked for notes the
        # generation it saw in _empty_gen once it is committed (_count).
        self._ready_gen = 1
        self._empty_gen = 0
        # Leases of live daemons registered here, by id: this process alone
        # writes the daemons table (it holds the file's lock), so these are the
        # rows' lease_until, and a claim checks its lease without a statement.
        self._leases: dict[int, float] = {}
        # Ready jobs without a key (released dependents) are filed by the next
        # claim: it looks for them only when _unfiled_gen moved past
        # _filed_gen (a commit released dependents, or a heartbeat passed).
        self._unfiled_gen = 1
        self._filed_gen = 0
        self._clamped_at = -math.inf  # the store's clock at the last clamp_aged
        # Unarchived jobs: committed (the sum of the counts), and as the
        # writes applied so far in the open transaction leave them (max_jobs).
        self._unarchived_committed = 0
        self._unarchived = 0
        # How the saves applied in the open transaction move jobs between
        # counts: one dict per transaction, not one per save (each a single
        # statement, never undone alone); the counts take it if it commits.
        self._moved: _Deltas = {}
        self._recent: dict[int, tuple[int, Any, Any, int]] = {}
        # Unclaimed jobs this store inserted, by id: (document as stored, the
        # job as inserted). A claim that reads that very document takes a copy
        # instead of parsing it again. Oldest first; at most FRESH_JOBS.
        self._fresh: dict[int, tuple[str, Job]] = {}
        self._fresh_lock = threading.Lock()
        folder = os.path.dirname(self.path)
        if not os.path.isdir(folder):
            raise StoreError(f"cannot open the store {url}: the directory {folder} does not exist")
        try:
            self._lock = _ProcessLock(self.path)
        except OSError as exc:
            raise StoreError(f"cannot lock the store {url}: {exc}") from exc
        try:
            self._writer: sqlite3.Connection | None = self._open_writer()
        except BaseException:
            self._lock.release()
            raise

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )

    def _open_writer(self) -> sqlite3.Connection:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {self.url}: {exc}") from exc
        try:
            mode = conn.execute(Q["use_wal"]).fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{self.path}: SQLite refused the WAL journal (it uses {mode!r})")
            conn.execute(Q[f"synchronous_{self.durability}"])
            if self.durability == "normal":  # see CHECKPOINT_EVERY
                conn.execute(Q["writer_autocheckpoint"]).fetchall()
            apply_migrations(conn, MIGRATIONS)
            conn.execute(Q["end_all_leases"])  # we hold the lock: earlier daemons are gone
            _prepare_hot_statements(conn)
            counts = conn.execute(Q["count_jobs"]).fetchall()
            self._dependencies = conn.execute(Q["count_dependencies"]).fetchone()[0]
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open the store {self.url}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._counts = {(status, priority): n for status, priority, n in counts}
        self._unarchived = self._unarchived_committed = sum(n for _, _, n in counts)
        return conn

    def close(self) -> None:
        with self._readers_lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle_readers = self._idle_readers, []
        with self._pending_lock:
            flusher, checkpointer = self._flusher, self._checkpointer
        if flusher is not None:
            self._stop_flusher.set()
            self._flush_wanted.set()
            flusher.join()
        if checkpointer is not None:
            self._stop_checkpointer.set()
            self._checkpoint_wanted.set()
            checkpointer.join()
        with self._writer_lock:
            last = self._commit_pending_unlocked()  # what nobody waited for
            writer, self._writer = self._writer, None
        self._run_after(last)
        try:
            for conn in idle:
                conn.close()
            if writer is not None:
                writer.close()
        except sqlite3.Error as exc:
            raise StoreError(f"closing the store {self.url} failed: {exc}") from exc
        finally:
            with self._readers_lock:
                self._unlocking = True
                unlock = self._readers_out == 0  # else the last reader given back unlocks
            if unlock:
                self._lock.release()

    # -- group commit -----------------------------------------------------

    def _write(
        self,
        apply: Callable[[sqlite3.Connection], _T],
        *,
        single: bool = False,
        counted: _Deltas | None = None,
        autocommit: bool | None = None,
        durable: bool = True,
    ) -> _T:
        """Run ``apply`` in a committed transaction, maybe shared with other callers.

        ``single``: ``apply`` makes one write statement (any other statements only
        read); committed alone it runs in autocommit mode, one statement instead of three.
        ``counted``: the dict in which ``apply`` notes how it moves jobs between counts.
        ``autocommit=False``: a ``single`` write that reads first; alone it still runs
        in a transaction, since in autocommit mode each read is a transaction of its
        own (a read costs 3 times more than BEGIN and COMMIT together).
        ``durable=False``: the write may be lost in a crash of the machine
        (see ``_commit``).
        """
        item = _Write(apply, single, None, None, counted, autocommit, durable)
        with self._pending_lock:
            self._pending.append(item)
        batch: list[_Write[Any]] = []
        with self._writer_lock:
            if not item.done:
                batch = self._commit_pending_unlocked()
        self._run_after(batch)
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    def _write_soon(
        self,
        apply: Callable[[sqlite3.Connection], Any],
        after: Callable[[], None],
        job_id: int,
        *,
        single: bool = True,
        counted: _Deltas | None = None,
        autocommit: bool | None = None,
        absorbable: tuple[int, int] | None = None,
        expected: int = 0,
    ) -> None:
        """Queue a save without waiting; ``after()`` runs once it is committed.

        ``absorbable``: (job id, the version its next save carries), for a
        save that job's next save may absorb while it is pending (see ``save``).
        """
        item = _Write(
            apply,
            single=single,
            after=after,
            lost_job=job_id,
            counted=counted,
            autocommit=autocommit,
        )
        item.absorbable, item.expected = absorbable, expected
        with self._pending_lock:
            if self._closed:
                raise StoreError(f"the store {self.url} is closed")
            self._pending.append(item)
            if absorbable is not None:
                self._absorbable[job_id] = item
            if self._flusher is None:
                self._start_flusher_unlocked()
        if not self._flush_wanted.is_set():
            self._flush_wanted.set()

    def _start_flusher_unlocked(self) -> None:
        """Start the flusher thread; ``_pending_lock`` must be held."""
        self._flusher = threading.Thread(
            target=self._flush_loop, name="jobplane-sqlite-flusher", daemon=True
        )
        self._flusher.start()

    def _absorb(self, job_id: int, version: int) -> int:
        """Take out a pending save of ``job_id`` that a save at ``version`` follows.

        Returns the version the save must expect in the store: that pending
        save's, if there is one (the caller's save then writes for both), or
        ``version``. A pending save a leader has taken is committing: it
        stays, and the caller's save follows it.
        """
        if job_id not in self._absorbable:  # most saves: no lock taken
            return version
        with self._pending_lock:
            item = self._absorbable.get(job_id)
            if item is None or item.absorbable != (job_id, version):
                return version
            del self._absorbable[job_id]
            self._pending.remove(item)  # by identity: _Write has no __eq__
            return item.expected

    def _flush_loop(self) -> None:
        """Commit writes nobody waits for that no leader committed within FLUSH_DELAY."""
        while True:
            self._flush_wanted.wait()
            if self._stop_flusher.is_set():
                return
            self._flush_wanted.clear()
            self._stop_flusher.wait(FLUSH_DELAY)  # a leader usually takes them meanwhile
            try:
                with self._writer_lock:
                    batch = self._commit_pending_unlocked() if self._pending else []
                self._run_after(batch)
            except Exception:  # the items carry their errors; this thread must go on
                logger.exception("the SQLite flusher failed; it carries on")

    def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database when asked (see ``CHECKPOINT_EVERY``)."""
        conn: sqlite3.Connection | None = None
        failed = False
        try:
            while True:
                self._checkpoint_wanted.wait()
                if self._stop_checkpointer.is_set():
                    return
                self._checkpoint_wanted.clear()
                try:
                    if conn is None:
                        conn = self._connect()
                    row = conn.execute(Q["checkpoint_passive"]).fetchone()
                    if row is not None and type(row[1]) is int and row[1] >= WAL_RING_PAGES:
                        with self._writer_lock:  # no commit meanwhile: all of it is copied
                            row = conn.execute(Q["checkpoint_passive"]).fetchone()
                except sqlite3.Error as exc:  # the writer's own checkpoint is the backstop
                    if not failed:
                        logger.warning("%s: checkpointing the WAL failed: %s", self.url, exc)
                    failed = True
                else:
                    failed = False
                    self._adapt_checkpoints(row[1] if row is not None else None)
                    self._checkpointed.set()
        finally:
            if conn is not None:
                conn.close()

    def _adapt_checkpoints(self, frames: Any) -> None:
        """Aim the commits between checkpoints at ``CHECKPOINT_PAGES`` new WAL pages each.

        ``frames``: the pages in the WAL now. Less than at the last checkpoint:
        the writer began the WAL anew since, so all of them are new.
        """
        if type(frames) is not int or frames < 0:
            return
        last, self._wal_frames = self._wal_frames, frames
        copied = frames - last if frames >= last else frames
        low, high = CHECKPOINT_EVERY_RANGE
        if copied < CHECKPOINT_PAGES // 2:
            self._checkpoint_every = min(self._checkpoint_every * 2, high)
        elif copied > CHECKPOINT_PAGES * 2:
            self._checkpoint_every = max(self._checkpoint_every // 2, low)

    def _kick_checkpointer(self) -> None:
        with self._pending_lock:
            if self._closed:
                return
            if self._checkpointer is None:
                self._checkpointer = threading.Thread(
                    target=self._checkpoint_loop,
                    name="jobplane-sqlite-checkpointer",
                    daemon=True,
                )
                self._checkpointer.start()
        self._checkpoint_wanted.set()

    def _commit_pending_unlocked(self) -> list[_Write[Any]]:
        """Lead: commit every pending item; ``_writer_lock`` must be held. Returns them."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
            self._absorbable.clear()
        if not batch:
            return batch
        self._commits += 1
        if self._commits >= self._checkpoint_every and self.durability == "normal":
            self._commits = 0
            self._kick_checkpointer()
        # The counts move with the commit, under their lock: a reader that has
        # seen a committed job (load, on its own connection) and then asks
        # for the counts waits for them to include it (guarantee 13).
        with self._counts_lock:
            try:
                self._commit(batch)
            finally:
                moves = []
                committed = False
                for item in batch:
                    if item.error is None:
                        committed = True
                        if item.counted:
                            moves.append(item.counted)
                    elif item.lost_job is not None:  # _note_if_lost, inline: every commit
                        self._lost.add(item.lost_job)
                    item.done = True
                moved = self._moved
                if moved:
                    self._moved = {}
                    if committed:
                        moves.append(moved)
                if moves:
                    self._count(moves)
                self._unarchived = self._unarchived_committed  # a failed write added nothing
        return batch

    def _count(self, moves: list[_Deltas]) -> None:
        """Take committed writes' moves between counts (``_writer_lock``, ``_counts_lock`` held)."""
        unarchived = 0
        counts = self._counts
        for deltas in moves:
            for key, delta in deltas.items():
                if key is _DEPENDENCIES:
                    self._dependencies += delta
                    if delta < 0:  # released dependents may be ready now, unfiled
                        self._unfiled_gen += 1
                        self._ready_gen += 1
                    continue
                if key is _FILED:  # a claim found every unfiled job as of this
                    self._filed_gen = max(self._filed_gen, delta)
                    continue
                if key is _EMPTY:  # a claim found no more ready jobs as of this
                    self._empty_gen = max(self._empty_gen, delta)
                    continue
                unarchived += delta
                n = counts.get(key, 0) + delta
                if n:
                    counts[key] = n
                else:
                    counts.pop(key, None)
        self._unarchived_committed += unarchived

    def _note_if_lost(self, item: _Write[Any]) -> None:
        """A failed save nobody waited for makes the job's next save fail (guarantee 4)."""
        if item.error is not None and item.lost_job is not None:
            self._lost.add(item.lost_job)

    def _run_after(self, batch: list[_Write[Any]]) -> None:
        """After a commit, outside the lock: finish the writes nobody waited for."""
        for item in batch:
            if item.after is None:
                continue
            if item.error is not None:
                logger.error("a write that was not waited for failed: %s", item.error)
            else:
                item.after()

    def _commit(self, batch: list[_Write[Any]]) -> None:
        """Apply every item in one transaction; each failure lands in its item.

        With durability ``full``, a batch of writes that need not be durable
        (claims) is committed without an fsync, as ``normal`` does: see
        ``_commit_without_sync``.
        """
        if self.durability == "full" and not any(item.durable for item in batch):
            self._commit_without_sync(batch)
        else:
            self._commit_synced(batch)

    def _commit_without_sync(self, batch: list[_Write[Any]]) -> None:
        """Commit with ``synchronous=NORMAL`` for once (the WAL is not fsynced).

        Safe for claims: in WAL mode a commit appends its frames to the
        WAL, and the next commit with ``synchronous=FULL`` fsyncs the whole
        WAL file, so it makes the earlier frames durable with its own (and
        a checkpoint fsyncs the WAL first whatever the setting). A crash of
        the machine before then loses the claim together with every later
        commit (the WAL's checksums chain its frames): the job is unowned and
        queued again, as if never claimed. An op that must not run twice
        starts only once its "running" record is committed, which fsyncs
        the claim too; a ``retry_on_crash`` op may start before, and runs
        again after such a crash, as after any crash. A crash of the process
        alone loses nothing: the frames are in the operating system's cache.
        """
        conn = self._writer
        if conn is None:
            self._commit_synced(batch)  # fails every item: the store is closed
            return
        conn.execute(Q["synchronous_normal"])
        try:
            self._commit_synced(batch)
        finally:
            conn.execute(Q["synchronous_full"])

    def _commit_synced(self, batch: list[_Write[Any]]) -> None:
        conn = self._writer
        try:
            if conn is None:
                raise StoreError(f"the store {self.url} is closed")
            if len(batch) == 1 and batch[0].autocommit:
                batch[0].result = batch[0].apply(conn)  # autocommit: one statement
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                if len(batch) == 1:
                    batch[0].result = batch[0].apply(conn)
                else:
                    for item in batch:
                        _apply_one(conn, item, f"writing to {self.url} failed")
                        self._note_if_lost(item)  # before a later save of the job applies
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            for item in batch:
                if item.error is None:
                    item.error = _translate(exc, f"writing to {self.url} failed")
        except BaseException:
            for item in batch:
                if item.error is None:
                    item.error = StoreError(f"writing to {self.url} was interrupted")
            raise

    # -- writes -----------------------------------------------------------

    def insert_jobs(self, jobs: Sequence[Job], *, max_unarchived: int | None) -> list[int]:
        batch = list(jobs)
        if not batch:
            return []
        counted: _Deltas = {}
        placed = self._write(self._inserting(batch, max_unarchived, counted), counted=counted)
        ids = self._placed(batch, placed)
        self._keep_fresh(batch, placed)
        self._notify(ids)
        return ids

    def insert_and_claim(
        self, jobs: Sequence[Job], *, max_unarchived: int | None, daemon_id: int, limit: int
    ) -> tuple[list[int], list[Job]]:
        """Both in one transaction (see ``Store.insert_and_claim``)."""
        batch = list(jobs)
        if not batch:
            return [], self.claim(daemon_id, limit)
        counted: _Deltas = {}
        owned: list[int] = []  # the batch's jobs inserted already claimed, in schedule order
        insert = self._inserting(batch, max_unarchived, counted, (daemon_id, limit, owned))
        claim = self._claiming(daemon_id, limit, counted)

        def apply(conn: sqlite3.Connection) -> tuple[list[_Placed], list[Job | _Row]]:
            owned.clear()
            placed = insert(conn)
            if owned:  # nothing else was ready: the claim is made
                return placed, []
            try:
                return placed, claim(conn)
            except LeaseLost:  # raised before the claim writes anything
                return placed, []

        placed, taken = self._write(apply, counted=counted)
        ids = self._placed(batch, placed)
        if owned:
            claimed = []
            for index in owned:
                job = batch[index].clone()
                job.owner, job.fence = daemon_id, 1
                claimed.append(job)
            taking = set(owned)
            kept = [i for i in range(len(batch)) if i not in taking]
            self._keep_fresh([batch[i] for i in kept], [placed[i] for i in kept])
        else:
            self._keep_fresh(batch, placed)
            claimed = self._parse_claimed(taken)
        self._notify(ids)
        self._notify([job.id for job in claimed])
        return ids, claimed

    def _owned_at_insert(self, batch: list[Job], now: float, limit: int) -> list[int]:
        """The batch's jobs a claim of ``limit`` made right after the insert would take.

        Only when that is known without the claim: no other job is ready
        (``_ready_gen`` is ``_empty_gen``). Else none: the claim reads the
        schedule. (Reading the schedule's first key to take an urgent job
        owned behind a backlog cost single submissions 8% over HTTP, for no
        gain in latency: not done.) Indexes in ``batch``, in schedule order.
        """
        if self._ready_gen != self._empty_gen:
            return []
        interval = self.aging_interval
        keys = {
            i: schedule_key(now, job.priority, interval)
            for i, job in enumerate(batch)
            if not job.depends and _TEXT[job.status] in _PENDING_COLUMN
        }
        return sorted(keys, key=lambda i: (keys[i], i))[:limit]

    @staticmethod
    def _placed(batch: list[Job], placed: list[_Placed]) -> list[int]:
        for job, (job_id, depends, _) in zip(batch, placed, strict=True):
            job.id, job.version, job.depends, job.archived = job_id, 1, depends, False
            job.owner, job.fence = None, 0
        return [job_id for job_id, _, _ in placed]

    def _keep_fresh(self, batch: list[Job], placed: list[_Placed]) -> None:
        """Keep copies of committed new jobs that wait to be claimed, oldest dropped first."""
        fresh = self._fresh
        with self._fresh_lock:
            for job, (job_id, _, text) in zip(batch, placed, strict=True):
                if job.status in PENDING:
                    fresh[job_id] = (text, job.clone())
            for _ in range(len(fresh) - FRESH_JOBS):
                del fresh[next(iter(fresh))]

    def _fresh_copies(self, rows: list[_Row]) -> list[Job | None]:
        """For each claimed row, the job from ``_fresh`` if the row holds the document kept there.

        The rows are as the claim read them (their versions before the claim).
        """
        fresh = self._fresh
        with self._fresh_lock:
            kept = [fresh.pop(row[0], None) for row in rows]
        jobs: list[Job | None] = []
        for row, entry in zip(rows, kept, strict=True):
            if entry is None or entry[1].version != row[1] or entry[0] != row[3]:
                jobs.append(None)
            else:
                job = entry[1]
                job.archived = bool(row[2])
                jobs.append(job)
        return jobs

    def _inserting(
        self,
        batch: list[Job],
        max_unarchived: int | None,
        counted: _Deltas,
        claim: tuple[int, int, list[int]] | None = None,
    ) -> Callable[[sqlite3.Connection], list[_Placed]]:
        """The write of ``insert_jobs`` (guarantees 1 and 2), for ``_write``.

        ``claim``: (daemon id, limit, owned) from ``insert_and_claim``. If no
        other job is ready (``_ready_gen`` is ``_empty_gen``: a claim now would
        find only these), the batch's ready jobs that the claim would take are
        inserted owned by the daemon, with fence 1, out of the schedule: the
        claim costs no statement of its own. Their indexes in ``batch`` go to
        ``owned``, in schedule order.
        """

        def apply(conn: sqlite3.Connection) -> list[_Placed]:
            drained, last_id = conn.execute(Q["queue_state"]).fetchone()
            unarchived = self._unarchived
            if drained:
                raise QueueDrained()
            if max_unarchived is not None and unarchived + len(batch) > max_unarchived:
                raise QueueFull(queue_full_message(unarchived, len(batch), max_unarchived))
            now, interval = self.clock(), self.aging_interval
            recent, insert = self._recent, Q["insert_job"]
            placed = []
            taken: set[int] = set()
            daemon_id = None
            if claim is not None and claim[1] > 0:
                claimer, limit, owned = claim
                until = self._leases.get(claimer)
                if until is not None and until > now:
                    take = self._owned_at_insert(batch, now, limit)
                    if take:
                        daemon_id = claimer
                        owned.extend(take)
                        taken = set(owned)
            for index, job in enumerate(batch):
                job_id = last_id + 1 + index
                status, priority = _TEXT[job.status], job.priority
                doc = job.to_doc()
                depends: tuple[Dependency, ...] = ()
                open_deps: list[int] = []
                if job.depends:
                    depends = tuple(
                        _resolve(conn, dep, index, job_id, len(batch)) for dep in job.depends
                    )
                    open_deps = [
                        dep_id
                        for dep_id in sorted({dep.job_id for dep in depends})
                        if dep_id > last_id or not _is_final(conn, dep_id)
                    ]
                    doc["depends"] = [dep.to_doc() for dep in depends]
                text = _encode(doc)
                ready = not open_deps and status in _PENDING_COLUMN  # is_ready, unowned
                mine = index in taken
                conn.execute(
                    insert,
                    {
                        "id": job_id,
                        "status": status,
                        "priority": priority,
                        "received_at": job.received_at,
                        "ended_at": job.ended_at,
                        "doc": text,
                        "deps_left": len(open_deps),
                        "ready_at": now if ready else None,
                        "sched_key": (
                            schedule_key(now, priority, interval) if ready and not mine else None
                        ),
                        "owner": daemon_id if mine else None,
                        "fence": 1 if mine else 0,
                    },
                )
                for dep_id in open_deps:
                    conn.execute(Q["insert_dependency"], {"dep_id": dep_id, "job_id": job_id})
                    self._dependencies += 1  # now: a later write in this commit may need it
                if len(recent) < RECENT_ROWS and status not in _FINAL:  # _remember_unlocked
                    recent[job_id] = (1, status, priority, 0)
                if ready and not mine:
                    self._ready_gen += 1
                placed.append((job_id, depends, text))
                key = (status, priority)
                counted[key] = counted.get(key, 0) + 1
            self._unarchived += len(batch)  # last: nothing in this write fails after it
            return placed

        return apply

    def save(self, job: Job, *, wait: bool = True, release: bool = False) -> None:
        """See ``Store.save``; an uncommitted earlier save of the job may be absorbed.

        A save nobody waited for (``wait=False``: an op's start) that is
        still pending when the job's next save comes is taken out of the
        group commit: the next save writes both changes at once (its own
        state holds the earlier one), compare-and-set on the version the
        earlier save expected, and leaves the stored version where the two
        would have left it. A fast op then costs one row write, not two.
        """
        job_id, version, owner, fence = job.id, job.version, job.owner, job.fence
        status, priority = job.status, job.priority
        value = _TEXT[status]
        final = status in FINAL
        unown = release or final
        pending = status in PENDING
        params: dict[str, Any] = {
            "id": job_id,
            "version": version,
            "owner": owner,
            "fence": fence,
            "status": value,
            "priority": priority,
            "ended_at": job.ended_at,
            # Encoded now if the caller waits; an unwaited save is mostly
            # absorbed by the job's next save, so its text is made at commit.
            "doc": _encode(job.to_doc()) if wait else None,
            "now": 0.0,  # the store's clock, read in the write when the query needs it
        }
        doc = None if wait else job.to_doc()
        expected = self._absorb(job_id, version)
        params["version"], params["next_version"] = expected, version + 1
        counted: _Deltas = {}
        # Out of the schedule after the save, whatever the row: not pending, or
        # owned and kept. In place if it was out before too, with the same owner;
        # else only its key goes. Any other save computes its place in SQL.
        stays_owned = owner is not None and not unown
        general = not ((not pending or stays_owned) and (owner is None or stays_owned))
        # An owned job given up that is not pending (final, say) leaves the
        # schedule and its owner: one plain statement. Any other general save
        # computes its place in SQL, with a new key.
        keyed = general and pending
        if keyed:
            params.update(unown=unown, release=release, pending=pending)
        clocked = keyed or owner is not None  # the lease check, or a new key
        leases = self._leases
        new = (value, priority)
        recent = self._recent

        def apply(conn: sqlite3.Connection) -> None:
            if job_id in self._lost:
                self._lost.discard(job_id)
                raise StoreConflict(
                    f"job {job_id}: an earlier save that was not waited for failed; reload the job"
                )
            if clocked:
                now = params["now"] = self.clock()
                # The owner's lease, from memory: this process alone writes the
                # daemons table (it holds the file's lock). Not live: no write.
                live = owner is None or leases.get(owner, now) > now
            else:
                live = True
            if doc is not None:
                params["doc"] = _encode(doc)
            before = known = recent.get(job_id)  # the counted columns (_remember_unlocked)
            if before is None or before[0] != expected:
                row = conn.execute(Q["counted_columns"], params).fetchone()
                before = None if row is None else (expected, row[0], row[1], row[2])
            if keyed:
                params["new_key"] = schedule_key(params["now"], priority, self.aging_interval)
                query = Q["save_job"]
                if unown or owner is None:  # it may be filed: ready for a claim
                    self._ready_gen += 1
            elif general:
                query = Q["save_job_released"]
            elif before is not None and (owner is not None or before[1] not in _PENDING_COLUMN):
                query = Q["save_job_in_place"]
            else:
                query = Q["save_job_unscheduled"]
            if not live:
                saved = False
            elif (
                final
                and self._dependencies > 0
                and conn.execute(Q["has_dependents"], params).fetchone()[0]
            ):
                with _atomic(conn):
                    saved = conn.execute(query, params).rowcount == 1
                    if saved:
                        counted[_DEPENDENCIES] = -_release_dependents(conn, job_id)
            else:
                saved = conn.execute(query, params).rowcount == 1
            if saved and before is not None:
                _, old_status, old_priority, archived = before
                if not archived and (old_status != value or old_priority != priority):
                    moved, old = self._moved, (old_status, old_priority)
                    moved[old] = moved.get(old, 0) - 1
                    moved[new] = moved.get(new, 0) + 1
                if final:  # _remember_unlocked, inline: this runs for every save
                    recent.pop(job_id, None)
                elif known is not None or len(recent) < RECENT_ROWS:
                    recent[job_id] = (version + 1, value, priority, archived)
                return
            row = conn.execute(Q["save_diagnosis"], params).fetchone()
            if row is None:
                raise JobNotFound(f"job {job_id} does not exist")
            stored_version, stored_owner, stored_fence = row
            if owner is not None:
                stored = (stored_owner, stored_fence)
                self._check_fence(conn, job_id, stored, (owner, fence), params["now"])
            if stored_version != expected:
                raise StoreConflict(
                    f"job {job_id} changed since it was read: the store has version "
                    f"{stored_version}, this copy version {expected}"
                )
            raise StoreConflict(
                f"job {job_id} is owned by daemon {stored_owner}; only it may save it"
            )

        # One write statement (several, made atomic by _atomic, when jobs wait for it).
        if wait:
            self._write(apply, single=True, counted=counted)
        else:
            absorbable = None if unown else (job_id, version + 1)
            self._write_soon(
                apply,
                lambda: self._notify((job_id,)),
                job_id,
                counted=counted,
                absorbable=absorbable,
                expected=expected,
            )
        job.version = version + 1
        if unown:
            job.owner = None
        if wait:
            self._notify((job_id,))

    def _remember_unlocked(
        self, job_id: int, version: int, status: Any, priority: Any, archived: int
    ) -> None:
        """Note a row's counted columns as this store wrote them at ``version``.

        Entries are checked by version, so a write that was rolled back leaves
        one that no row matches. Writes that change these columns without a
        new version (marks) or that this store does not follow forget the row.
        """
        recent = self._recent
        if status in _FINAL:
            recent.pop(job_id, None)
        elif job_id in recent or len(recent) < RECENT_ROWS:
            recent[job_id] = (version, status, priority, archived)

    def _check_fence(
        self,
        conn: sqlite3.Connection,
        job_id: int,
        stored: tuple[int | None, int],
        given: tuple[int, int],
        now: float,
    ) -> None:
        """Guarantee 9: raise LeaseLost unless ``given`` is the job's owner and fence, alive."""
        if stored != given:
            raise LeaseLost(
                f"job {job_id} is no longer owned by daemon {given[0]} with fence {given[1]}"
            )
        until = self._leases.get(given[0])  # see _leases: the daemons table as committed
        if until is None or until <= now:
            raise LeaseLost(
                f"the lease of daemon {given[0]} has ended; job {job_id} is not its own"
            )

    def append_log(
        self,
        job_id: int,
        op_index: int,
        time: float,
        message: str,
        *,
        fence: tuple[int, int] | None = None,
    ) -> LogEntry:
        params = {"job_id": job_id, "op_index": op_index, "time": time, "message": message}

        def apply(conn: sqlite3.Connection) -> int:
            if fence is not None:
                row = conn.execute(Q["job_fence"], {"id": job_id}).fetchone()
                if row is None:
                    raise JobNotFound(f"job {job_id} does not exist")
                self._check_fence(conn, job_id, (row[0], row[1]), fence, self.clock())
            rows = conn.execute(Q["append_log"], params).fetchall()
            if not rows:
                raise JobNotFound(f"job {job_id} does not exist")
            return int(rows[0][0])

        serial = self._write(apply, single=True)
        self._notify((job_id,))
        return LogEntry(serial, op_index, time, message)

    def archive(self, job_ids: Sequence[int]) -> list[int]:
        if not job_ids:
            return []
        params = {"ids": _encode([int(job_id) for job_id in job_ids])}
        return self._archive(Q["archive_jobs"], params)

    def archive_finished_before(self, ended_before: float) -> list[int]:
        return self._archive(Q["archive_finished_before"], {"ended_before": ended_before})

    def _archive(self, query: str, params: dict[str, Any]) -> list[int]:
        counted: _Deltas = {}

        def apply(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(query, params).fetchall()
            for job_id, status, priority in rows:
                _move(counted, (status, priority), None)
                self._recent.pop(job_id, None)
            self._unarchived -= len(rows)
            return sorted(row[0] for row in rows)

        archived = self._write(apply, counted=counted)
        self._notify(archived)
        return archived

    def set_drained(self, drained: bool) -> None:
        params = {"value": "1" if drained else "0"}
        self._write(lambda conn: conn.execute(Q["set_drained"], params))

    # -- daemons, the schedule, control --------------------------------------

    def register_daemon(self, name: str = "") -> Lease:
        def apply(conn: sqlite3.Connection) -> Lease:
            now = self.clock()
            until = now + self.lease_s
            params = {"name": name, "now": now, "lease_until": until}
            daemon_id, epoch = conn.execute(Q["register_daemon"], params).fetchone()
            self._leases[daemon_id] = until  # an id nobody learns if this is not committed
            return Lease(daemon_id, epoch)

        lease = self._write(apply, single=True)
        # A daemon's ops save their starts unwaited: its flusher starts now,
        # not at its first op (a thread start, under the lock every write takes).
        with self._pending_lock:
            if self._flusher is None and not self._closed:
                self._start_flusher_unlocked()
        return lease

    def heartbeat(self, daemon_id: int) -> None:
        before = self._leases.get(daemon_id)

        def apply(conn: sqlite3.Connection) -> None:
            now = self.clock()
            until = now + self.lease_s
            params = {"daemon": daemon_id, "now": now, "lease_until": until}
            if conn.execute(Q["heartbeat"], params).rowcount != 1:
                self._leases.pop(daemon_id, None)
                raise LeaseLost(f"the lease of daemon {daemon_id} has ended")
            self._leases[daemon_id] = until

        try:
            self._write(apply, single=True)
        except LeaseLost:
            raise
        except StoreError:
            with self._writer_lock:  # not renewed: the lease is the row's again
                if before is None:
                    self._leases.pop(daemon_id, None)
                else:
                    self._leases[daemon_id] = before
            raise
        self._unfiled_gen += 1  # now and then, a claim looks for unfiled jobs whatever moved
        self._ready_gen += 1  # ... and reads the schedule

    def unregister_daemon(self, daemon_id: int) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            self._leases.pop(daemon_id, None)  # ended from now, even if this fails
            conn.execute(Q["unregister_daemon"], {"daemon": daemon_id})

        self._write(apply)

    def _check_live(self, daemon_id: int, now: float) -> None:
        """Raise LeaseLost unless the daemon's lease is live by the store's clock ``now``."""
        until = self._leases.get(daemon_id)
        if until is None or until <= now:
            raise LeaseLost(f"the lease of daemon {daemon_id} has ended")

    def may_claim(self) -> bool:
        return self._ready_gen != self._empty_gen

    def claim(self, daemon_id: int, limit: int) -> list[Job]:
        if self._ready_gen == self._empty_gen:  # nothing became ready since a claim found none
            self._check_live(daemon_id, self.clock())
            return []  # as if claimed a moment earlier: no transaction for nothing
        counted: _Deltas = {}
        claim = self._claiming(daemon_id, limit, counted)
        taken = self._write(claim, counted=counted, durable=False)
        claimed = self._parse_claimed(taken)
        self._notify([job.id for job in claimed])
        return claimed

    def _claiming(
        self, daemon_id: int, limit: int, counted: _Deltas
    ) -> Callable[[sqlite3.Connection], list[Job | _Row]]:
        """The write of ``claim`` (guarantee 9), for ``_write``; LeaseLost before any write.

        It returns the claimed jobs in order: a job whose aging changed its
        document, else the row as read, parsed by ``_parse_claimed`` once the
        writer is free (parsing is most of a claim's time).
        """

        def apply(conn: sqlite3.Connection) -> list[Job | _Row]:
            now, interval = self.clock(), self.aging_interval
            self._check_live(daemon_id, now)
            gen = self._unfiled_gen
            if gen != self._filed_gen:
                unfiled = conn.execute(Q["unfiled_jobs"], {"batch": CLAMP_BATCH}).fetchall()
                for job_id, priority in unfiled:
                    key = schedule_key(now, priority, interval)
                    conn.execute(Q["file_job"], {"id": job_id, "now": now, "sched_key": key})
                if len(unfiled) < CLAMP_BATCH:
                    counted[_FILED] = gen  # taken by _count once committed
            if interval > 0 and now - self._clamped_at >= CLAMP_EVERY_S:
                params = {"limit_key": clamp_limit(now, interval), "batch": CLAMP_BATCH}
                conn.execute(Q["clamp_aged"], params)
                self._clamped_at = now  # if this rolls back, the next clamp is one step late
            claimed: list[Job | _Row] = []
            unchanged: list[int] = []
            ready_gen = self._ready_gen
            rows = conn.execute(Q["next_ready"], {"limit": max(0, limit)}).fetchall()
            if len(rows) < limit:
                counted[_EMPTY] = ready_gen  # taken by _count once committed
            for row in rows:
                status, priority = row[13], row[14]
                if _ages(row, now, interval):
                    job = _job_in_write(conn, row, counted, self._recent)
                    if job is None:
                        continue  # quarantined now: final, never claimed
                    if apply_aging(job, row[12], now, interval):
                        _move(counted, (status, priority), (status, job.priority))
                        params = {"id": job.id, "owner": daemon_id, "priority": job.priority}
                        conn.execute(Q["take_aged_job"], {**params, "doc": _encode(job.to_doc())})
                    else:
                        unchanged.append(job.id)
                    job.owner, job.fence, job.version = daemon_id, job.fence + 1, job.version + 1
                    self._remember_unlocked(job.id, job.version, status, job.priority, 0)
                    claimed.append(job)
                else:  # parsed after the write (_parse_claimed)
                    unchanged.append(row[0])
                    self._remember_unlocked(row[0], row[1] + 1, status, priority, 0)
                    claimed.append((*row[:7], daemon_id, row[8] + 1, *row[9:12]))
            if unchanged:  # one statement: their index entries are next to each other
                conn.execute(Q["take_jobs"], {"ids": _encode(unchanged), "owner": daemon_id})
            return claimed

        return apply

    def _parse_claimed(self, taken: list[Job | _Row]) -> list[Job]:
        """The jobs of a claim's write, rows parsed now, outside the writer.

        A row that cannot be read was claimed all the same: it is quarantined
        now, by a write of its own, and left out, as a claim that read it
        under the writer would have done.
        """
        claimed, unreadable = [], []
        rows = [entry for entry in taken if not isinstance(entry, Job)]
        copies = iter(self._fresh_copies(rows))
        for entry in taken:
            if isinstance(entry, Job):
                claimed.append(entry)
                continue
            job = next(copies)
            if job is None:
                row = (entry[0], entry[1] + 1, *entry[2:])  # the version the claim wrote
                try:
                    job = _parse(row)
                except UnreadableRecord:
                    unreadable.append(row)
                    continue
            else:  # the claim wrote version + 1 (its owner and fence are in the entry)
                job.version, job.owner, job.fence = entry[1] + 1, entry[7], entry[8]
                if entry[9]:
                    job.requests = ControlRequests(entry[9], bool(entry[10]), entry[11])
            claimed.append(job)
        if unreadable:
            self._quarantine_claimed(unreadable)
        return claimed

    def _quarantine_claimed(self, rows: list[_Row]) -> None:
        counted: _Deltas = {}

        def apply(conn: sqlite3.Connection) -> None:
            for row in rows:  # the mark gives the job up too (owner NULL)
                job = quarantined_job(row[0], row[1], bool(row[2]), row[5], row[6])
                _mark_row(conn, "mark_unreadable", job, counted, self._recent)

        try:
            self._write(apply, counted=counted)
        except StoreError:  # the jobs claimed with them are returned all the same
            logger.exception("could not quarantine %d unreadable claimed jobs", len(rows))

    def reclaim(self, daemon_id: int) -> list[Job]:
        counted: _Deltas = {}

        def apply(conn: sqlite3.Connection) -> list[Job]:
            now = self.clock()
            self._check_live(daemon_id, now)
            conn.execute(Q["end_expired_leases"], {"daemon": daemon_id, "now": now})
            rows = conn.execute(Q["reclaim_jobs"], {"daemon": daemon_id}).fetchall()
            for row in rows:
                self._recent.pop(row[0], None)
            recent = self._recent
            jobs = [job for row in rows if (job := _job_in_write(conn, row, counted, recent))]
            return sorted(jobs, key=lambda job: job.id)

        taken = self._write(apply, counted=counted)
        self._notify([job.id for job in taken])
        return taken

    def request_control(
        self, job_id: int, *, cancel: bool = False, priority: int | None = None
    ) -> Job | None:
        params = {"id": job_id, "cancel": int(cancel), "priority": priority}
        counted: _Deltas = {}

        def apply(conn: sqlite3.Connection) -> Job | None:
            recorded = conn.execute(Q["request_control"], params).rowcount == 1
            row = conn.execute(Q["load_job"], params).fetchone()
            if row is None:
                raise JobNotFound(f"job {job_id} does not exist")
            return _job_in_write(conn, row, counted, self._recent) if recorded else None

        job = self._write(apply, counted=counted)
        if job is not None:
            self._notify((job_id,), request=True)
        return job

    def clear_requests(self, job: Job, serial: int) -> None:
        job_id, owner, fence = job.id, job.owner, job.fence
        if owner is None:
            raise StoreConflict(f"job {job_id}: only its owner clears its requests")

        def apply(conn: sqlite3.Connection) -> None:
            row = conn.execute(Q["job_fence"], {"id": job_id}).fetchone()
            if row is None:
                raise JobNotFound(f"job {job_id} does not exist")
            self._check_fence(conn, job_id, (row[0], row[1]), (owner, fence), self.clock())
            conn.execute(Q["clear_requests"], {"id": job_id, "serial": serial})

        self._write(apply, single=True)

    def remove_unreadable(self, job_id: int) -> None:
        params = {"id": job_id, "delta": -1}
        counted: _Deltas = {}

        def apply(conn: sqlite3.Connection) -> None:
            row = conn.execute(Q["load_job"], params).fetchone()
            if row is None:
                raise JobNotFound(f"job {job_id} does not exist")
            try:
                _parse(row)
            except UnreadableRecord:
                pass
            else:
                raise JobStateError(
                    f"job {job_id} is readable: only a record that cannot be read is "
                    "removed (archive a finished job instead)"
                )
            [(archived, status, priority)] = conn.execute(Q["delete_job"], params).fetchall()
            self._recent.pop(job_id, None)
            conn.execute(Q["delete_log"], params)
            if not archived:
                self._unarchived -= 1
                _move(counted, (status, priority), None)

        self._write(apply, counted=counted)
        logger.warning(
            "job %s: the unreadable record was removed", job_id, extra={"job_id": job_id}
        )
        self._notify((job_id,))

    # -- reads ------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A read connection from the pool, given back afterwards."""
        with self._readers_lock:
            if self._closed:
                raise StoreError(f"the store {self.url} is closed")
            conn = self._idle_readers.pop() if self._idle_readers else None
            self._readers_out += 1
        try:
            if conn is None:
                conn = self._connect()
                conn.execute(Q["query_only"])
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"reading {self.url} failed: {exc}") from exc
        finally:
            self._give_back(conn)

    def _give_back(self, conn: sqlite3.Connection | None) -> None:
        """Put a read connection back in the pool, or close it if the store is closed.

        After ``close()``, the last connection given back lets go of the process
        lock: not before, or SQLite's own locks on the file would go with it.
        """
        if conn is not None and conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                conn.close()
                conn = None
        with self._readers_lock:
            self._readers_out -= 1
            if not self._closed and conn is not None:
                self._idle_readers.append(conn)
                return
            unlock = self._unlocking and self._readers_out == 0
        if conn is not None:
            conn.close()
        if unlock:
            self._lock.release()

    def load(self, job_id: int, *, with_log: bool = False) -> Job:
        params = {"id": job_id, "job_id": job_id, "since": 0}
        with self._reading() as conn:
            if not with_log:
                row = conn.execute(Q["load_job"], params).fetchone()
            else:
                conn.execute("BEGIN")
                row = conn.execute(Q["load_job"], params).fetchone()
                log = conn.execute(Q["read_log"], params).fetchall()
                conn.execute("COMMIT")
        if row is None:
            raise JobNotFound(f"job {job_id} does not exist")
        [job] = self._jobs([row])
        if with_log:
            job.log = [_log_entry(entry) for entry in log]
        return job

    def read_log(self, job_id: int, since_serial: int = 0) -> list[LogEntry]:
        params = {"id": job_id, "job_id": job_id, "since": since_serial}
        with self._reading() as conn:
            rows = conn.execute(Q["read_log"], params).fetchall()
            if not rows and conn.execute(Q["job_exists"], params).fetchone() is None:
                raise JobNotFound(f"job {job_id} does not exist")
        return [_log_entry(row) for row in rows]

    def list_jobs(
        self,
        *,
        statuses: Sequence[OpStatus] | None = None,
        archived: bool | None = False,
        after: int | None = None,
        limit: int = 100,
        before: int | None = None,
        newest_first: bool = False,
        priority: tuple[int, int] | None = None,
        op: str | None = None,
    ) -> list[Job]:
        lowest, highest = (None, None) if priority is None else priority
        params = {
            "statuses": None if statuses is None else _encode([str(s) for s in statuses]),
            "after": 0 if after is None else after,
            "upto": MAX_ROWID if before is None else before - 1,
            "lowest": lowest,
            "highest": highest,
            "op": op,
            "op_like": None if op is None else _like_pattern(op),
            "limit": limit,
        }
        query = _LIST_QUERIES[archived, bool(newest_first)]
        with self._reading() as conn:
            rows = conn.execute(query, params).fetchall()
        return self._jobs(rows)

    def unfinished(self) -> list[Job]:
        with self._reading() as conn:
            rows = conn.execute(Q["unfinished_jobs"]).fetchall()
        return [job for job in self._jobs(rows) if not job.is_final]  # not the quarantined

    def quarantined(self, *, scan: bool = False) -> list[Unreadable]:
        after = 0
        while scan:  # reading every record finds (and marks) the unreadable ones
            page = self.list_jobs(archived=None, after=after, limit=1000)
            scan = bool(page)
            after = page[-1].id if page else after
        with self._reading() as conn:
            rows = conn.execute(Q["list_unreadable"]).fetchall()
        found = []
        for row in rows:
            try:
                _parse(row)
            except UnreadableRecord as exc:
                received_at = row[5] if isinstance(row[5], (int, float)) else None
                found.append(
                    Unreadable(row[0], bool(row[2]), received_at, str(exc), size_of(row[3]))
                )
        return found

    def _jobs(self, rows: list[_Row]) -> list[Job]:
        """The jobs the rows hold; a row that cannot be read becomes a quarantined job.

        Call it with the read connection given back: it may write, to mark
        the rows newly found unreadable (or readable again, after a repair by hand).
        """
        jobs, marks = [], []
        for row in rows:
            job_id, version, archived, text, marked, received_at, ended_at = row[:7]
            try:
                job = _parse(row)
            except UnreadableRecord as exc:
                job = quarantined_job(job_id, version, bool(archived), received_at, ended_at)
                self._report(job_id, str(exc), size_of(text))
                if not marked:
                    marks.append(("mark_unreadable", job))
            else:
                if marked:
                    marks.append(("mark_readable", job))
            jobs.append(job)
        if marks:
            self._mark(marks)
        return jobs

    def _report(self, job_id: int, reason: str, size: int) -> None:
        """Log an unreadable record, once per process."""
        with self._reported_lock:
            if job_id in self._reported:
                return
            self._reported.add(job_id)
        logger.error(
            "job %s: its stored record cannot be read (%s; %d characters): it is quarantined, "
            "reads as error and never runs; 'jobplane quarantine list' shows such jobs, "
            "'jobplane quarantine remove %s' deletes it",
            job_id,
            reason,
            size,
            job_id,
            extra={"job_id": job_id},
        )

    def _mark(self, marks: list[tuple[str, Job]]) -> None:
        """Make the rows' columns say what reads return (best effort; a later read retries)."""

        counted: _Deltas = {}

        def apply(conn: sqlite3.Connection) -> None:
            for query, job in marks:
                _mark_row(conn, query, job, counted, self._recent)

        try:
            self._write(apply, counted=counted)
        except StoreError as exc:
            logger.warning("could not mark records (un)readable (a later read will): %s", exc)
            return
        self._notify(job.id for _, job in marks)

    def is_drained(self) -> bool:
        with self._reading() as conn:
            return bool(conn.execute(Q["is_drained"]).fetchone()[0])

    def counts(self) -> dict[tuple[OpStatus, int], int]:
        with self._counts_lock:
            rows = list(self._counts.items())
        counts: dict[tuple[OpStatus, int], int] = {}
        for (status, priority), count in rows:
            key = (_STATUSES.get(status, OpStatus.ERROR), priority)  # a damaged column: error
            if not isinstance(priority, int):
                key = (key[0], priorities.NORMAL)
            counts[key] = counts.get(key, 0) + count
        return counts

    def oldest_queued(self) -> float | None:
        with self._counts_lock:
            queued = [priority for status, priority in self._counts if status == "queued"]
        if not queued:
            return None
        with self._reading() as conn:
            row = conn.execute(Q["oldest_queued"], {"priorities": _encode(queued)}).fetchone()
        return None if row is None else float(row[0])


def _apply_one(conn: sqlite3.Connection, item: _Write[Any], what: str) -> None:
    """Run one item of a batch; its error undoes only its own changes.

    A one-statement item needs no savepoint: SQLite undoes a failed statement
    by itself, and a check that fails in Python has written nothing. If SQLite
    rolled the whole transaction back (a full disk, say), the error fails the
    batch.
    """
    if not item.single:
        _apply_in_savepoint(conn, item, what)
        return
    try:
        item.result = item.apply(conn)
    except Exception as exc:
        if not conn.in_transaction:
            raise
        item.error = _translate(exc, what)


def _apply_in_savepoint(conn: sqlite3.Connection, item: _Write[Any], what: str) -> None:
    """Run one item of a batch in a savepoint of its own."""
    conn.execute("SAVEPOINT item")
    try:
        item.result = item.apply(conn)
    except Exception as exc:
        conn.execute("ROLLBACK TO item")
        item.error = _translate(exc, what)
    conn.execute("RELEASE item")


def _translate(exc: Exception, what: str) -> Exception:
    """A driver error as a new ``StoreError``; any other error unchanged."""
    if not isinstance(exc, sqlite3.Error):
        return exc
    error = StoreError(f"{what}: {exc}")
    error.__cause__ = exc
    return error


HOT_STATEMENTS = (
    "queue_state",
    "counted_columns",
    "save_job",
    "save_job_in_place",
    "save_job_unscheduled",
    "save_job_released",
    "save_diagnosis",
    "next_ready",
    "take_jobs",
    "insert_job",  # last: the row it makes (id 0) is rolled back
)
"""The writer's statements of every job's life, compiled when the store opens."""


def _prepare_hot_statements(conn: sqlite3.Connection) -> None:
    """Run each of ``HOT_STATEMENTS`` once in a transaction rolled back, so each is compiled.

    The connection keeps compiled statements (``cached_statements``); the
    first run of each costs 20-50 µs more than later ones, which the first
    jobs after a start would otherwise pay, on the writer, while others wait.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name in HOT_STATEMENTS:
            with suppress(sqlite3.Error):  # a constraint, say: it is compiled all the same
                conn.execute(Q[name], _idle_params(Q[name])).fetchall()
    finally:
        conn.execute("ROLLBACK")


def _idle_params(sql: str) -> dict[str, Any]:
    """Parameters with which a statement touches no job: id 0 (ids start at 1), LIMIT 0."""
    return dict.fromkeys(re.findall(r":(\w+)", sql), 0) | {"ids": "[]"}


def _parse(row: _Row) -> Job:
    """The job of a row read by a job query (see ``load_job``). Raises UnreadableRecord.

    The row's columns: ``id, version, archived, doc, unreadable, received_at,
    ended_at, owner, fence, req_serial, req_cancel, req_priority``.
    """
    job_id, version, archived, text = row[:4]
    if not isinstance(version, int):
        raise UnreadableRecord("its version is not a number")
    job = job_from_record(job_id, version, bool(archived), text)
    job.owner, job.fence = row[7], row[8]
    if row[9]:
        job.requests = ControlRequests(row[9], bool(row[10]), row[11])
    return job


def _ages(row: _Row, now: float, interval: float) -> bool:
    """Whether a ``next_ready`` row may have earned aging (its document must be read)."""
    version, fence, priority, ready_at = row[1], row[8], row[14], row[12]
    if type(version) is not int or type(fence) is not int or type(priority) is not int:
        return True  # damaged columns: read under the writer, as before
    if type(ready_at) is not float and type(ready_at) is not int:
        return True
    if interval <= 0 or priority <= priorities.HIGHEST or (now - ready_at) / interval < 1.0:
        return False  # not one interval yet: no step earned (the common case, cheaply)
    return aging_steps(priority, ready_at, now, interval) > 0


def _job_in_write(
    conn: sqlite3.Connection, row: _Row, counted: _Deltas, recent: dict[int, Any]
) -> Job | None:
    """The row's job, for a write that read it; None if it cannot be read.

    An unreadable row met here is quarantined in the same transaction (what
    ``_mark`` does for reads): it reads as an error from then on.
    """
    try:
        return _parse(row)
    except UnreadableRecord:
        job = quarantined_job(row[0], row[1], bool(row[2]), row[5], row[6])
        _mark_row(conn, "mark_unreadable", job, counted, recent)
        return None


def _mark_row(
    conn: sqlite3.Connection, query: str, job: Job, counted: _Deltas, recent: dict[int, Any]
) -> None:
    """Mark a row (un)readable with ``query``; one made final releases its dependents.

    A mark keeps the row's version: the writer's ``recent`` forgets the row.
    """
    recent.pop(job.id, None)
    before = conn.execute(Q["counted_columns"], {"id": job.id}).fetchone()
    params = {"id": job.id, "version": job.version, "status": job.status.value}
    if before is None or conn.execute(Q[query], {**params, "priority": job.priority}).rowcount != 1:
        return
    old_status, old_priority, archived = before
    if not archived:
        _move(counted, (old_status, old_priority), (job.status.value, job.priority))
    if job.is_final and old_status not in _FINAL:
        released = _release_dependents(conn, job.id)
        counted[_DEPENDENCIES] = counted.get(_DEPENDENCIES, 0) - released


@contextmanager
def _atomic(conn: sqlite3.Connection) -> Iterator[None]:
    """Make a ``single`` write's statements atomic when it needs more than one.

    Inside a batch's transaction a savepoint of its own; alone (autocommit),
    a transaction of its own. Either is undone if a statement fails.
    """
    if conn.in_transaction:
        conn.execute("SAVEPOINT statements")
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # else SQLite rolled the whole transaction back
                conn.execute("ROLLBACK TO statements")
                conn.execute("RELEASE statements")
            raise
        conn.execute("RELEASE statements")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _release_dependents(conn: sqlite3.Connection, job_id: int) -> int:
    """``job_id`` became final: each job waiting for it waits for one job less.

    Returns how many job_deps rows went.
    """
    conn.execute(Q["release_dependents"], {"id": job_id})
    return int(conn.execute(Q["forget_dependents"], {"id": job_id}).rowcount)


def _move(counted: _Deltas, old: tuple[Any, Any] | None, new: tuple[Any, Any] | None) -> None:
    """Note that one unarchived job moves from count ``old`` to ``new`` (None: none)."""
    if old == new:
        return
    if old is not None:
        counted[old] = counted.get(old, 0) - 1
    if new is not None:
        counted[new] = counted.get(new, 0) + 1


def _is_final(conn: sqlite3.Connection, job_id: int) -> bool:
    row = conn.execute(Q["job_status"], {"id": job_id}).fetchone()
    return row is not None and row[0] in _FINAL


def _log_entry(row: _Row) -> LogEntry:
    """A log line as read; a damaged column reads as a placeholder, never as a wrong type."""
    serial, op_index, time, message = row
    if (
        type(serial) is int
        and type(op_index) is int
        and type(time) is float
        and type(message) is str
    ):
        return LogEntry(serial, op_index, time, message)
    return LogEntry(
        serial if isinstance(serial, int) else 0,
        op_index if isinstance(op_index, int) else 0,
        float(time) if isinstance(time, (int, float)) and math.isfinite(time) else 0.0,
        message if isinstance(message, str) else "(log line unreadable)",
    )


def _like_pattern(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') for documents that may hold an op name containing
    ``text``. Text that JSON escapes (quotes, backslashes, control characters) looks
    different in the document: then every document may, and the exact test decides."""
    if any(char in '"\\' or char < " " for char in text):
        return "%"
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _resolve(
    conn: sqlite3.Connection, dep: Dependency, index: int, job_id: int, count: int
) -> Dependency:
    """``dep`` of the batch's job ``index`` (to get id ``job_id``) with a real job id."""
    who = "the job" if count == 1 else f"job {index + 1} in the batch"
    ref = dep.job_id
    if ref < 0:
        if -ref > index:
            raise DependencyError(f"dependency {ref} of {who} points before the batch")
        return dataclasses.replace(dep, job_id=job_id + ref)
    if ref == job_id:
        raise DependencyError(f"{who} (job {job_id}) cannot depend on itself")
    if job_id < ref <= job_id + count - 1 - index:
        raise DependencyError(f"{who} depends on job {ref}, which comes later in the batch")
    if conn.execute(Q["job_exists"], {"id": ref}).fetchone() is None:
        raise DependencyError(f"{who} depends on unknown job {ref}")
    return dep
