"""The store in a Python object: the whole contract of ``stores.base``, for tests.

One :class:`MemoryDatabase` holds the jobs, log lines, leases and the drain
flag under one mutex; every write is one critical section, so it is atomic
and "committed" when it returns. Several :class:`InMemoryStore` objects may
share a database, like several daemons sharing one PostgreSQL database:
each store's listeners hear of every store's changes.

Jobs are kept as their JSON text, as SQLite keeps them, so a reader never
shares objects with a writer and a value JSON cannot hold fails the same way.
Reads that SQLite answers from an index (claim order, counts) are plain
scans here: fine for tests, not for a million jobs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
)
from ..jobs import FINAL, ControlRequests, Dependency, Job, LogEntry, OpStatus
from .base import (
    DEFAULT_AGING_INTERVAL,
    DEFAULT_LEASE_S,
    Clock,
    Lease,
    Store,
    encode_json,
    queue_full_message,
)
from .records import Unreadable, UnreadableRecord, job_from_record, quarantined_job, size_of
from .schedule import CLAMPED, apply_aging, clamp_limit, is_ready, refile

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Row:
    """One stored job: its JSON document and the columns a database would index."""

    id: int
    version: int
    doc: str | bytes
    status: OpStatus
    priority: int
    received_at: float
    ended_at: float | None
    archived: bool = False
    owner: int | None = None
    fence: int = 0
    deps_left: int = 0
    ready_at: float | None = None
    key: float | None = None
    """Set exactly while the job is ready (see ``stores.schedule``)."""
    requests: ControlRequests = field(default_factory=ControlRequests)
    log: list[LogEntry] = field(default_factory=list)
    unreadable: bool = False
    """The record was met and could not be read (guarantee 7): it reads as an error."""


@dataclass(slots=True)
class _Daemon:
    id: int
    name: str
    epoch: int
    lease_until: float
    ended: bool = False


class MemoryDatabase:
    """What a database file would hold; share one between stores to model several daemons."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.rows: dict[int, _Row] = {}
        self.last_id = 0
        self.drained = False
        self.dependents: dict[int, set[int]] = {}
        """dependency id -> jobs that still wait for it to become final."""
        self.daemons: dict[int, _Daemon] = {}
        self.last_daemon = 0
        self.stores: list[InMemoryStore] = []

    def damage(self, job_id: int, text: str | bytes) -> None:
        """Overwrite a job's stored record behind the stores' backs (for tests of guarantee 7)."""
        with self.mutex:
            self.rows[job_id].doc = text

    def notify(self, job_ids: Sequence[int], *, request: bool = False) -> None:
        """Tell every open store's listeners (outside the mutex)."""
        with self.mutex:
            stores = list(self.stores)
        for store in stores:
            store._notify(job_ids, request=request)


class InMemoryStore(Store):
    """A store in memory; ``database`` shares it with other stores (see the module docstring)."""

    def __init__(
        self,
        database: MemoryDatabase | None = None,
        *,
        clock: Clock = time.time,
        lease_s: float = DEFAULT_LEASE_S,
        aging_interval: float = DEFAULT_AGING_INTERVAL,
    ) -> None:
        super().__init__(clock=clock, lease_s=lease_s, aging_interval=aging_interval)
        self.url = "memory://"
        self.db = database if database is not None else MemoryDatabase()
        self._closed = False
        self._lost: set[int] = set()  # jobs whose unwaited save failed; guarded by db.mutex
        with self.db.mutex:
            self.db.stores.append(self)

    def close(self) -> None:
        with self.db.mutex:
            if self._closed:
                return
            self._closed = True
            self.db.stores.remove(self)

    def _check_open_locked(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.url} is closed")

    # -- writes -----------------------------------------------------------

    def insert_jobs(self, jobs: Sequence[Job], *, max_unarchived: int | None) -> list[int]:
        batch = list(jobs)
        if not batch:
            return []
        db = self.db
        with db.mutex:
            self._check_open_locked()
            if db.drained:
                raise QueueDrained()
            unarchived = sum(1 for row in db.rows.values() if not row.archived)
            if max_unarchived is not None and unarchived + len(batch) > max_unarchived:
                raise QueueFull(queue_full_message(unarchived, len(batch), max_unarchived))
            now = self.clock()
            first = db.last_id + 1
            resolved = [
                tuple(
                    self._resolve_locked(dep, index, first + index, len(batch))
                    for dep in job.depends
                )
                for index, job in enumerate(batch)
            ]
            for index, (job, depends) in enumerate(zip(batch, resolved, strict=True)):
                job_id = first + index
                stored = dataclasses.replace(job, depends=depends)
                row = _Row(
                    job_id, 1, _encode(stored.to_doc()), job.status, job.priority,
                    job.received_at, job.ended_at,
                )  # fmt: skip
                for dep in {d.job_id for d in depends}:
                    dep_row = db.rows.get(dep)
                    if dep_row is None or dep_row.status not in FINAL:
                        row.deps_left += 1
                        db.dependents.setdefault(dep, set()).add(job_id)
                db.rows[job_id] = row
                self._refile_locked(row, now, restart=True)
            db.last_id = first + len(batch) - 1
        ids = list(range(first, first + len(batch)))
        for job, job_id, depends in zip(batch, ids, resolved, strict=True):
            job.id, job.version, job.depends, job.archived = job_id, 1, depends, False
            job.owner, job.fence = None, 0
        db.notify(ids)
        return ids

    def _resolve_locked(self, dep: Dependency, index: int, job_id: int, count: int) -> Dependency:
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
        if ref not in self.db.rows:
            raise DependencyError(f"{who} depends on unknown job {ref}")
        return dep

    def save(self, job: Job, *, wait: bool = True, release: bool = False) -> None:
        db = self.db
        with db.mutex:
            try:
                self._check_open_locked()
                if job.id in self._lost:
                    self._lost.discard(job.id)
                    raise StoreConflict(
                        f"job {job.id}: an earlier save that was not waited for failed; "
                        "reload the job"
                    )
                self._save_locked(job, release)
            except (StoreError, JobNotFound) as exc:
                if wait:
                    raise
                self._lost.add(job.id)
                logger.error("a write that was not waited for failed: %s", exc)
                job.version += 1
                return
        job.version += 1
        if release or job.is_final:
            job.owner = None
        db.notify((job.id,))

    def _save_locked(self, job: Job, release: bool) -> None:
        row = self._row_locked(job.id)
        now = self.clock()
        if job.owner is not None:
            self._check_fence_locked(row, job.owner, job.fence, now)
        elif row.owner is not None and row.version == job.version:
            raise StoreConflict(f"job {job.id} is owned by daemon {row.owner}; only it may save it")
        if row.version != job.version:
            raise StoreConflict(
                f"job {job.id} changed since it was read: the store has version {row.version}, "
                f"this copy version {job.version}"
            )
        was_final = row.status in FINAL
        priority = job.priority
        restart = release or priority != row.priority
        row.doc = _encode(job.to_doc())
        row.status, row.priority, row.ended_at = job.status, priority, job.ended_at
        row.version += 1
        row.unreadable = False
        if release or row.status in FINAL:
            row.owner = None
        if row.status in FINAL and not was_final:
            self._dependency_done_locked(job.id, now)
        self._refile_locked(row, now, restart=restart)

    def _dependency_done_locked(self, job_id: int, now: float) -> None:
        for waiter in sorted(self.db.dependents.pop(job_id, ())):
            row = self.db.rows[waiter]
            row.deps_left -= 1
            self._refile_locked(row, now, restart=False)

    def _refile_locked(self, row: _Row, now: float, *, restart: bool) -> None:
        """Set the row's schedule key while it is ready, clear it otherwise."""
        ready = is_ready(
            archived=row.archived, owner=row.owner, deps_left=row.deps_left, status=row.status
        )
        row.ready_at, row.key = refile(
            ready=ready,
            restart=restart,
            ready_at=row.ready_at,
            key=row.key,
            priority=row.priority,
            now=now,
            interval=self.aging_interval,
        )

    def _check_fence_locked(self, row: _Row, owner: int, fence: int, now: float) -> None:
        daemon = self.db.daemons.get(owner)
        if row.owner != owner or row.fence != fence:
            raise LeaseLost(f"job {row.id} is no longer owned by daemon {owner} with fence {fence}")
        if daemon is None or daemon.ended or daemon.lease_until <= now:
            raise LeaseLost(f"the lease of daemon {owner} has ended; job {row.id} is not its own")

    def append_log(
        self,
        job_id: int,
        op_index: int,
        time: float,
        message: str,
        *,
        fence: tuple[int, int] | None = None,
    ) -> LogEntry:
        with self.db.mutex:
            self._check_open_locked()
            row = self._row_locked(job_id)
            if fence is not None:
                self._check_fence_locked(row, fence[0], fence[1], self.clock())
            entry = LogEntry(len(row.log) + 1, op_index, time, message)
            row.log.append(entry)
        self.db.notify((job_id,))
        return entry

    def archive(self, job_ids: Sequence[int]) -> list[int]:
        with self.db.mutex:
            self._check_open_locked()
            archived = sorted(
                {
                    job_id
                    for job_id in job_ids
                    if (row := self.db.rows.get(int(job_id))) is not None
                    and not row.archived
                    and row.status in FINAL
                }
            )
            self._archive_locked(archived)
        self.db.notify(archived)
        return archived

    def archive_finished_before(self, ended_before: float) -> list[int]:
        with self.db.mutex:
            self._check_open_locked()
            archived = [
                row.id
                for row in self.db.rows.values()
                if not row.archived
                and row.status in FINAL
                and (row.ended_at if row.ended_at is not None else row.received_at) < ended_before
            ]
            self._archive_locked(archived)
        self.db.notify(archived)
        return archived

    def _archive_locked(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            row = self.db.rows[job_id]
            row.archived, row.key = True, None
            row.version += 1

    def set_drained(self, drained: bool) -> None:
        with self.db.mutex:
            self._check_open_locked()
            self.db.drained = drained

    def remove_unreadable(self, job_id: int) -> None:
        with self.db.mutex:
            self._check_open_locked()
            row = self._row_locked(job_id)
            try:
                _parse(row)
            except UnreadableRecord:
                pass
            else:
                raise JobStateError(
                    f"job {job_id} is readable: only a record that cannot be read is "
                    "removed (archive a finished job instead)"
                )
            del self.db.rows[job_id]
            self.db.dependents.pop(job_id, None)
        self.db.notify((job_id,))

    # -- daemons, the schedule, control --------------------------------------

    def register_daemon(self, name: str = "") -> Lease:
        db = self.db
        with db.mutex:
            self._check_open_locked()
            db.last_daemon += 1
            epoch = 1 + max((d.epoch for d in db.daemons.values() if d.name == name), default=0)
            db.daemons[db.last_daemon] = _Daemon(
                db.last_daemon, name, epoch, self.clock() + self.lease_s
            )
            return Lease(db.last_daemon, epoch)

    def heartbeat(self, daemon_id: int) -> None:
        with self.db.mutex:
            self._check_open_locked()
            self._live_daemon_locked(daemon_id, self.clock()).lease_until = (
                self.clock() + self.lease_s
            )

    def _live_daemon_locked(self, daemon_id: int, now: float) -> _Daemon:
        daemon = self.db.daemons.get(daemon_id)
        if daemon is None:
            raise LeaseLost(f"daemon {daemon_id} is not registered")
        if not daemon.ended and daemon.lease_until <= now:
            daemon.ended = True
        if daemon.ended:
            raise LeaseLost(f"the lease of daemon {daemon_id} has ended")
        return daemon

    def unregister_daemon(self, daemon_id: int) -> None:
        with self.db.mutex:
            self._check_open_locked()
            daemon = self.db.daemons.get(daemon_id)
            if daemon is not None:
                daemon.ended = True

    def claim(self, daemon_id: int, limit: int) -> list[Job]:
        db = self.db
        with db.mutex:
            self._check_open_locked()
            now = self.clock()
            self._live_daemon_locked(daemon_id, now)
            interval = self.aging_interval
            ready = [row for row in db.rows.values() if row.key is not None]
            if interval > 0:
                limit_key = clamp_limit(now, interval)
                for row in ready:
                    if row.key is not None and CLAMPED < row.key <= limit_key:
                        row.key = CLAMPED
            ready.sort(key=lambda row: (row.key, row.id))
            claimed: list[Job] = []
            for row in ready:
                if len(claimed) >= limit:
                    break
                job = self._read_locked(row)
                if job.is_final:  # quarantined just now (guarantee 7)
                    continue
                assert row.ready_at is not None
                apply_aging(job, row.ready_at, now, interval)
                row.doc = _encode(job.to_doc())
                row.priority = job.priority
                row.owner, row.fence, row.key = daemon_id, row.fence + 1, None
                row.version += 1
                claimed.append(self._read_locked(row))
        db.notify([job.id for job in claimed])
        return claimed

    def reclaim(self, daemon_id: int) -> list[Job]:
        db = self.db
        with db.mutex:
            self._check_open_locked()
            now = self.clock()
            self._live_daemon_locked(daemon_id, now)
            dead = set()
            for daemon in db.daemons.values():
                if daemon.id != daemon_id and (daemon.ended or daemon.lease_until <= now):
                    daemon.ended = True
                    dead.add(daemon.id)
            taken = []
            for row in sorted(db.rows.values(), key=lambda row: row.id):
                if row.owner in dead:
                    row.owner, row.fence = daemon_id, row.fence + 1
                    row.version += 1
                    job = self._read_locked(row)
                    if not job.is_final:
                        taken.append(job)
        db.notify([job.id for job in taken])
        return taken

    def request_control(
        self, job_id: int, *, cancel: bool = False, priority: int | None = None
    ) -> Job | None:
        with self.db.mutex:
            self._check_open_locked()
            row = self._row_locked(job_id)
            if row.owner is None:
                return None
            old = row.requests
            row.requests = ControlRequests(
                old.serial + 1, old.cancel or cancel, old.priority if priority is None else priority
            )
            job = self._read_locked(row)
        self.db.notify((job_id,), request=True)
        return job

    def clear_requests(self, job: Job, serial: int) -> None:
        with self.db.mutex:
            self._check_open_locked()
            row = self._row_locked(job.id)
            if job.owner is None:
                raise StoreConflict(f"job {job.id}: only its owner clears its requests")
            self._check_fence_locked(row, job.owner, job.fence, self.clock())
            if row.requests.serial == serial:
                row.requests = ControlRequests(serial)

    # -- reads ------------------------------------------------------------

    def _row_locked(self, job_id: int) -> _Row:
        row = self.db.rows.get(job_id)
        if row is None:
            raise JobNotFound(f"job {job_id} does not exist")
        return row

    def load(self, job_id: int, *, with_log: bool = False) -> Job:
        with self.db.mutex:
            self._check_open_locked()
            row = self._row_locked(job_id)
            job = self._read_locked(row)
            if with_log:
                job.log = list(row.log)
        return job

    def read_log(self, job_id: int, since_serial: int = 0) -> list[LogEntry]:
        with self.db.mutex:
            self._check_open_locked()
            return [entry for entry in self._row_locked(job_id).log if entry.serial > since_serial]

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
        wanted = None if statuses is None else set(statuses)
        after = 0 if after is None else after
        needle = None if op is None else _ascii_lower(op)
        with self.db.mutex:
            self._check_open_locked()
            rows = sorted(
                (
                    row
                    for row in self.db.rows.values()
                    if row.id > after
                    and (before is None or row.id < before)
                    and (archived is None or row.archived == archived)
                    and (wanted is None or row.status in wanted)
                    and (priority is None or priority[0] <= row.priority <= priority[1])
                    and (needle is None or _has_op(row, needle))
                ),
                key=lambda row: row.id,
                reverse=newest_first,
            )
            return [self._read_locked(row) for row in rows[: max(0, limit)]]

    def unfinished(self) -> list[Job]:
        with self.db.mutex:
            self._check_open_locked()
            rows = sorted(
                (r for r in self.db.rows.values() if r.status not in FINAL), key=lambda r: r.id
            )
            jobs = [self._read_locked(row) for row in rows]
            return [job for job in jobs if not job.is_final]  # not the quarantined

    def quarantined(self, *, scan: bool = False) -> list[Unreadable]:
        with self.db.mutex:
            self._check_open_locked()
            rows = sorted(self.db.rows.values(), key=lambda row: row.id)
            found = []
            for row in rows:
                if scan or row.unreadable:
                    self._read_locked(row)
                if not row.unreadable:
                    continue
                try:
                    _parse(row)
                except UnreadableRecord as exc:
                    found.append(
                        Unreadable(
                            row.id, row.archived, row.received_at, str(exc), size_of(row.doc)
                        )
                    )
            return found

    def _read_locked(self, row: _Row) -> Job:
        """The row's job; a record that cannot be read becomes a quarantined job (guarantee 7)."""
        try:
            job = _parse(row)
        except UnreadableRecord as exc:
            if not row.unreadable:
                logger.error("job %s: its stored record cannot be read (%s)", row.id, exc)
                was_final = row.status in FINAL
                row.unreadable, row.owner, row.key = True, None, None
                row.status, row.priority = OpStatus.ERROR, priorities.NORMAL
                if not was_final:
                    self._dependency_done_locked(row.id, self.clock())
            return quarantined_job(row.id, row.version, row.archived, row.received_at, row.ended_at)
        if row.unreadable:  # repaired by hand: the columns follow the record again
            row.unreadable, row.status, row.priority = False, job.status, job.priority
        return job

    def is_drained(self) -> bool:
        with self.db.mutex:
            self._check_open_locked()
            return self.db.drained

    def counts(self) -> dict[tuple[OpStatus, int], int]:
        counts: dict[tuple[OpStatus, int], int] = {}
        with self.db.mutex:
            self._check_open_locked()
            for row in self.db.rows.values():
                if not row.archived:
                    key = (row.status, row.priority)
                    counts[key] = counts.get(key, 0) + 1
        return counts

    def oldest_queued(self) -> float | None:
        with self.db.mutex:
            self._check_open_locked()
            queued = [
                row
                for row in self.db.rows.values()
                if not row.archived and row.status is OpStatus.QUEUED
            ]
            return min(queued, key=lambda row: row.id).received_at if queued else None


def _encode(doc: dict[str, Any]) -> str:
    try:
        return encode_json(doc)
    except (TypeError, ValueError) as exc:  # what JSON cannot hold
        raise StoreError(f"the job cannot be stored as JSON: {exc}") from exc


def _parse(row: _Row) -> Job:
    """The row's job. Raises UnreadableRecord."""
    job = job_from_record(row.id, row.version, row.archived, row.doc)
    job.owner, job.fence, job.requests = row.owner, row.fence, row.requests
    return job


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _has_op(row: _Row, needle: str) -> bool:
    """Whether the name of one of the row's ops contains ``needle`` (ASCII case ignored)."""
    try:
        ops = json.loads(row.doc)["ops"]
        return any(needle in _ascii_lower(str(one["op"])) for one in ops)
    except (ValueError, TypeError, KeyError):
        return False
