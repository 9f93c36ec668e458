"""The store contract: the only code that touches a database implements this.

The store is the truth. It owns job ids, every job's state, the log lines
and the drain flag; a daemon's memory is a working copy. The guarantees
below are what the job queue relies on, and what ``tests/contract`` checks
against every store:

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
   survives a crash of the process; ``full``: also a loss of power).
   Concurrent calls from several threads may share one transaction
   (group commit); that never weakens this rule. The one exception is asked
   for by name: ``save(job, wait=False)`` may return before its change is
   committed; the store commits it soon (within milliseconds) and in order
   with the later writes of the same job, and calls the listeners then.
   The job queue uses it only where a lost write is harmless (the record
   that an op marked ``retry_on_crash`` started).
4. **Compare-and-set.** ``save(job)`` writes only if the stored version is
   still ``job.version``; it then increments ``job.version``. Otherwise it
   raises ``StoreConflict`` and writes nothing. Two daemons can therefore
   never both move the same op forward.
5. **Listeners.** After each committed change of a job (insert, save, log
   line, archive) every listener is called with the job id, outside any
   transaction. A store shared by several daemons also calls them for
   changes other daemons made, as soon as it learns of them.
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
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from ..jobs import Job, LogEntry, OpStatus
from .records import Unreadable

logger = logging.getLogger(__name__)

Durability = Literal["normal", "full"]
Listener = Callable[[int], None]


class Store(ABC):
    """A place where jobs live. Thread-safe: every method may be called from any thread."""

    url: str

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    # -- lifecycle --------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release connections and the store's process lock; idempotent."""

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(job_id)`` after each committed change of a job."""
        self._listeners.append(listener)

    def _notify(self, job_ids: Iterable[int]) -> None:
        """Call the listeners; one that raises is logged, never passed to the writer."""
        for job_id in job_ids:
            for listener in self._listeners:
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
    def save(self, job: Job, *, wait: bool = True) -> None:
        """Commit the job's ops, status, priority and timestamps (guarantee 4).

        ``wait=False``: return at once and commit soon (see guarantee 3); a
        conflict or error then shows in the job's next waited save.

        Raises:
            JobNotFound: no such job.
            StoreConflict: the stored version is not ``job.version``.
        """

    @abstractmethod
    def append_log(self, job_id: int, op_index: int, time: float, message: str) -> LogEntry:
        """Append one log line; serials start at 1 and increase by one per job.

        Raises:
            JobNotFound: no such job.
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
        """Unarchived jobs by (status, priority)."""
