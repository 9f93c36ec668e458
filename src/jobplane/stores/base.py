"""The store contract: the only code that touches a database implements this.

The store is the truth. It owns job ids, every job's state, the log lines,
the drain flag, the daemons' leases and the schedule (which job runs next);
a daemon's memory is a working copy of the jobs it claimed. The guarantees
below are what the engine relies on, and what ``tests/contract`` checks
against every store (SQLite, and ``jobplane.testing.InMemoryStore``):

1. **Ids.** ``insert_jobs`` assigns increasing ids that are never reused,
   not even after a crash or after jobs are archived.
2. **Atomic submission.** ``insert_jobs`` commits all of its jobs or none. It
   refuses with ``QueueDrained`` while the drain flag is set, with
   ``QueueFull`` when the unarchived jobs would exceed ``max_unarchived``,
   and with ``DependencyError`` for a dependency on an unknown job. In a
   batch, a negative dependency ``-k`` names the job ``k`` places earlier in
   the same batch.
3. **Committed before returned.** Every method that writes returns only
   after its change is committed with the store's durability (``normal``:
   survives a crash of the process; ``full``: also a loss of power). The one
   exception is asked for by name: ``save(job, wait=False)`` may return
   before its change is committed. The store then commits it soon (within
   milliseconds), in order with the later writes of the same job, and calls
   the listeners once it is committed (a store may instead let the job's next
   save absorb it while it is uncommitted: that save then commits both
   changes at once, and the stored version still ends where two saves would
   leave it); if it cannot be committed, the job's
   next save raises ``StoreConflict``. A crash may lose it, so the engine
   uses it only where a lost write is harmless (the record that an op
   marked ``retry_on_crash`` started).
4. **Compare-and-set.** ``save(job)`` writes only if the stored version is
   still ``job.version``; it then increments ``job.version``. Otherwise it
   raises ``StoreConflict`` and writes nothing. Two writers can therefore
   never both move the same op forward.
5. **Listeners.** After each committed change of a job (insert, save, claim,
   reclaim, log line, control request, archive) every listener is called
   with the job id, outside any transaction. A store shared by several
   daemons also calls them for changes other daemons made, as soon as it
   learns of them. Request listeners (``add_request_listener``) are called
   only for control requests (``request_control``), after the listeners.
6. **Errors.** Driver errors never escape: they become ``StoreError``.
7. **Unreadable records.** A record the store cannot read (not JSON, or not
   a job document: see :mod:`jobplane.stores.records`) is never an error for
   its readers: every read returns it as a *quarantined* job, finished in
   ``error`` with the message ``"stored record unreadable"``, and logs it
   once per process. ``unfinished()`` leaves it out, so it never runs again.
   Once read, it also counts, filters and archives as ``error``.
   ``quarantined()`` lists such records, and ``remove_unreadable`` deletes
   one (and nothing else). A ``save`` of a copy read before the damage
   writes a whole new record, which is readable again.
8. **Daemons and leases.** ``register_daemon`` gives a daemon an id (never
   reused) and an epoch (one more than the last daemon of that name had),
   with a lease of ``lease_s`` seconds. ``heartbeat`` renews it. Expiry is
   decided by the store's own clock (SQLite: the clock given to the store;
   a server database: its ``now()``), never the daemon's. A daemon whose
   lease has expired is dead for good: its ``heartbeat``, ``claim`` and
   fenced writes raise ``LeaseLost``. ``unregister_daemon`` ends a lease at
   once. A store that admits one daemon at a time (SQLite, by its process
   lock) ends every other lease when a daemon registers.
9. **The schedule.** A job is *ready* when it is unarchived, unowned,
   ``queued`` or ``waiting``, and every job it depends on is final (the
   store counts a job's unfinished dependencies and lowers the count in the
   transaction that makes a dependency final). ``claim(daemon_id, limit)``
   takes up to ``limit`` ready jobs in schedule order (``stores.schedule``:
   effective priority with aging, then id), writes the aging each earned
   into its ops, and makes each owned by the daemon with a new fencing token
   (``job.fence`` + 1) and a new version, atomically: two claims never
   return the same job. A job stays owned until its owner releases it
   (``save(job, release=True)``) or it is reclaimed.
10. **Fencing.** A write of an owned job carries the owner and fence it was
    claimed with (``job.owner``, ``job.fence`` on ``save``; ``fence=`` on
    ``append_log`` and ``clear_requests``). The store refuses it with
    ``LeaseLost`` and writes nothing unless the job still has that owner and
    fence and the owner's lease is live.
11. **Reclaim.** ``reclaim(daemon_id)`` ends the lease of every daemon whose
    lease has expired and makes their jobs owned by ``daemon_id`` with new
    fences; it returns them, and the caller applies the crash rules
    (``docs/design/engine.md``) and saves them. It never takes a live
    daemon's jobs, nor the caller's own.
12. **Control from any client.** ``request_control`` records a cancel or a
    priority change for an *owned* job without changing its version (so the
    owner's next save still goes through) and tells the listeners, through
    which the owner learns of it; the owner applies it and clears it with
    ``clear_requests``. For an unowned job it records nothing and returns
    None: the caller then changes the job itself by compare-and-set.
13. **Cheap status.** ``counts`` and ``oldest_queued`` read maintained
    counters or an index, never every job; so do ``load``, ``list_jobs``
    (by id) and ``claim``, with a million queued jobs. The counts are never
    behind what a reader has seen: once ``load`` returned a job's state,
    a later ``counts`` counts the job in that state or a later one.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ..errors import StoreError
from ..jobs import Job, LogEntry, OpStatus
from .records import Unreadable

logger = logging.getLogger(__name__)

Durability = Literal["normal", "full"]
Listener = Callable[[int], None]
Clock = Callable[[], float]

DEFAULT_LEASE_S = 15.0
DEFAULT_AGING_INTERVAL = 60.0


def encode_json(value: Any) -> str:
    """Compact JSON text; orjson where it can (much faster), the standard library otherwise."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
        return _json_encode(value)


def decode_json(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what only the standard library wrote or reads
        return json.loads(text)


_json_encode = json.JSONEncoder(separators=(",", ":")).encode


def queue_full_message(unarchived: int, adding: int, limit: int) -> str:
    """The message of ``QueueFull``, the same from every store."""
    if adding == 1 or unarchived >= limit:
        held = f"the queue holds {unarchived} unarchived jobs, the limit is {limit}"
    else:
        held = f"the queue holds {unarchived} unarchived jobs, {adding} more pass the limit {limit}"
    return f"{held}: archive finished jobs or raise the limit"


@dataclass(frozen=True, slots=True)
class Lease:
    """A registered daemon: ``daemon_id`` is never reused; ``epoch`` counts its name's starts."""

    daemon_id: int
    epoch: int


class Store(ABC):
    """A place where jobs live. Thread-safe: every method may be called from any thread."""

    url: str
    one_daemon: bool = False
    """True if the store admits one daemon at a time (SQLite, by its process
    lock): every job it holds is that daemon's, so nothing needs recording
    for other daemons' clients (an op's ``cooperative`` mark, which tells them
    that a running op takes a cancel)."""

    def __init__(
        self,
        *,
        clock: Clock,
        lease_s: float = DEFAULT_LEASE_S,
        aging_interval: float = DEFAULT_AGING_INTERVAL,
    ) -> None:
        self._listeners: list[Listener] = []
        self._request_listeners: list[Listener] = []
        self.clock = clock
        """The store's wall clock: it alone decides lease expiry and aging."""
        self.lease_s = lease_s
        self.aging_interval = aging_interval
        self.configure(lease_s=lease_s, aging_interval=aging_interval)

    def configure(
        self, *, lease_s: float | None = None, aging_interval: float | None = None
    ) -> None:
        """Set the lease length and the aging interval (seconds; 0 turns aging off).

        Every daemon sharing a database must use the same values. A new
        aging interval applies to jobs as they next become ready.

        Raises:
            ValidationError: a lease that is not positive, or a negative interval.
        """
        from ..errors import ValidationError

        if lease_s is not None:
            if not lease_s > 0:
                raise ValidationError(
                    f"the lease must be a positive number of seconds, not {lease_s}"
                )
            self.lease_s = float(lease_s)
        if aging_interval is not None:
            if not aging_interval >= 0:
                raise ValidationError(
                    f"the aging interval must be >= 0 seconds (0: no aging), not {aging_interval}"
                )
            self.aging_interval = float(aging_interval)

    # -- lifecycle --------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release connections and the store's process lock; idempotent."""

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(job_id)`` after each committed change of a job."""
        self._listeners.append(listener)

    def add_request_listener(self, listener: Listener) -> None:
        """Call ``listener(job_id)`` after each committed control request for a job.

        For the daemon that holds the job: it reads the job only then, not
        at every change (each of its own saves is a change).
        """
        self._request_listeners.append(listener)

    def _notify(self, job_ids: Iterable[int], *, request: bool = False) -> None:
        """Call the listeners (``request``: a control request, so the request listeners too).

        One that raises is logged, never passed to the writer.
        """
        listeners = self._listeners
        if request:
            listeners = listeners + self._request_listeners
        for job_id in job_ids:
            for listener in listeners:
                try:
                    listener(job_id)
                except Exception:
                    logger.exception("store listener failed for job %s", job_id)

    # -- writes -----------------------------------------------------------

    @abstractmethod
    def insert_jobs(self, jobs: Sequence[Job], *, max_unarchived: int | None) -> list[int]:
        """Give each job an id and commit them all (guarantees 1 and 2).

        The ``id`` and ``version`` of the given jobs are ignored and set on return.
        """

    @abstractmethod
    def save(self, job: Job, *, wait: bool = True, release: bool = False) -> None:
        """Commit the job's ops, status, priority and timestamps (guarantees 4 and 10).

        An owned job (``job.owner`` set) is saved only by its owner, with the
        fence it claimed the job with. ``release=True`` also gives the job
        back: it becomes unowned, and ready from now if it is pending. A save
        that changes the priority of an unowned job restarts its aging
        (``change_priority`` overrides aging). ``wait=False``: return at once
        and commit soon (see guarantee 3); a conflict or error then shows in
        the job's next waited save.

        Raises:
            JobNotFound: no such job.
            LeaseLost: the job is not owned by ``job.owner`` with ``job.fence``
                any more, or that owner's lease has expired.
            StoreConflict: the stored version is not ``job.version``.
        """

    @abstractmethod
    def append_log(
        self,
        job_id: int,
        op_index: int,
        time: float,
        message: str,
        *,
        fence: tuple[int, int] | None = None,
    ) -> LogEntry:
        """Append one log line; serials start at 1 and increase by one per job.

        ``fence``: ``(owner, fence)`` of the writer when it owns the job.

        Raises:
            JobNotFound: no such job.
            LeaseLost: ``fence`` is given and stale (guarantee 10).
        """

    @abstractmethod
    def archive(self, job_ids: Sequence[int]) -> list[int]:
        """Archive the finished jobs among ``job_ids``; return those archived now.

        Archiving bumps the job's version (``archived`` is part of the job).
        """

    @abstractmethod
    def archive_finished_before(self, ended_before: float) -> list[int]:
        """Archive every finished job that ended before ``ended_before`` (wall clock)."""

    @abstractmethod
    def set_drained(self, drained: bool) -> None:
        """Set or clear the persisted drain flag."""

    @abstractmethod
    def remove_unreadable(self, job_id: int) -> None:
        """Delete a record that cannot be read, with its log lines (guarantee 7).

        Its id is never handed out again.

        Raises:
            JobNotFound: no such job.
            JobStateError: the record is readable (only unreadable ones are removed).
        """

    # -- daemons, the schedule, control (guarantees 8 to 12) ---------------

    @abstractmethod
    def register_daemon(self, name: str = "") -> Lease:
        """Start a lease for a new daemon (guarantee 8)."""

    @abstractmethod
    def heartbeat(self, daemon_id: int) -> None:
        """Renew the daemon's lease to ``lease_s`` from now.

        Raises:
            LeaseLost: the lease has expired or was ended.
        """

    @abstractmethod
    def unregister_daemon(self, daemon_id: int) -> None:
        """End the daemon's lease now; its jobs can be reclaimed at once. Idempotent."""

    @abstractmethod
    def claim(self, daemon_id: int, limit: int) -> list[Job]:
        """Take up to ``limit`` ready jobs in schedule order (guarantee 9).

        Raises:
            LeaseLost: the daemon's lease is not live.
        """

    def may_claim(self) -> bool:
        """False only if a ``claim`` now would certainly find nothing (no I/O; a hint).

        A store that knows of every change that can make a job ready (SQLite:
        one process writes it) says so, and a daemon then asks no claim of it.
        This default always says True.
        """
        return True

    def insert_and_claim(
        self, jobs: Sequence[Job], *, max_unarchived: int | None, daemon_id: int, limit: int
    ) -> tuple[list[int], list[Job]]:
        """``insert_jobs`` then ``claim(daemon_id, limit)``; returns the ids and the claimed jobs.

        What a daemon that can start work soon does on submit. A store may
        commit both in one transaction (SQLite does: one commit, one fsync,
        instead of two). The insert never fails for the claim: if the
        daemon's lease is not live, the jobs are inserted and none claimed.
        """
        ids = self.insert_jobs(jobs, max_unarchived=max_unarchived)
        try:
            return ids, self.claim(daemon_id, limit)
        except StoreError as exc:  # LeaseLost included: the jobs are in, unclaimed
            logger.warning(
                "daemon %s: no claim with the insert of jobs %s (%s)", daemon_id, ids, exc
            )
            return ids, []

    @abstractmethod
    def reclaim(self, daemon_id: int) -> list[Job]:
        """Take over the jobs of every daemon whose lease has expired (guarantee 11).

        Raises:
            LeaseLost: the caller's own lease is not live.
        """

    @abstractmethod
    def request_control(
        self, job_id: int, *, cancel: bool = False, priority: int | None = None
    ) -> Job | None:
        """Record a control request for an owned job (guarantee 12).

        Returns the job as stored, with its ``requests``; None if the job is
        unowned (nothing recorded).

        Raises:
            JobNotFound: no such job.
        """

    @abstractmethod
    def clear_requests(self, job: Job, serial: int) -> None:
        """The owner applied the requests up to ``serial``: forget them, keep newer ones.

        Raises:
            LeaseLost: ``job.owner``/``job.fence`` are stale (guarantee 10).
        """

    # -- reads ------------------------------------------------------------

    @abstractmethod
    def load(self, job_id: int, *, with_log: bool = False) -> Job:
        """The job as committed. Raises ``JobNotFound``."""

    @abstractmethod
    def read_log(self, job_id: int, since_serial: int = 0) -> list[LogEntry]:
        """Log lines with a serial above ``since_serial``, in order. Raises ``JobNotFound``."""

    @abstractmethod
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
        """Jobs by ascending id (descending with ``newest_first``), at most ``limit``.

        Filters, all optional: id above ``after`` and below ``before`` (keyset
        paging in either direction); ``statuses``; ``archived`` (``None`` means
        both); ``priority``, an inclusive range ``(lowest number, highest
        number)`` of the job's priority; ``op``, a text that the name of one of
        the job's ops contains, ignoring ASCII case and taken literally. A page
        costs about the same however deep it is (no offset is skipped over).
        """

    @abstractmethod
    def unfinished(self) -> list[Job]:
        """Every job not yet final, by ascending id (recovery reads this on start)."""

    @abstractmethod
    def quarantined(self, *, scan: bool = False) -> list[Unreadable]:
        """The records found unreadable so far, by id (guarantee 7).

        A record is found when a read meets it: ``unfinished()`` (so every
        unfinished job when a daemon starts), a listing, a load. ``scan``
        reads every record first, archived ones too, to find them all.
        """

    @abstractmethod
    def is_drained(self) -> bool:
        """The persisted drain flag."""

    @abstractmethod
    def counts(self) -> dict[tuple[OpStatus, int], int]:
        """Unarchived jobs by (status, priority), from counters (guarantee 13)."""

    @abstractmethod
    def oldest_queued(self) -> float | None:
        """The ``received_at`` of the lowest-id unarchived ``queued`` job, or None (guarantee 13).

        A queued job waiting for a dependency or owned between two ops counts.
        """
