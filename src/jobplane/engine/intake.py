"""What a daemon takes in: jobs claimed from the store, handed to the processor.

The daemon pulls (docs/design/engine.md): it holds in memory only the jobs
it claimed, at most ``workers + prefetch`` that hold or wait for a worker
plus those parked in lock waits (at ``max_parked`` of those it claims
nothing new). An :class:`Intake` wires a :class:`~.claimer.Claimer` to the
processor:

* **At open** it registers the daemon, which reclaims the jobs of the
  previous daemon (on SQLite, the one before this start) under the crash
  rules; it applies the same rules to unowned jobs left ``running``,
  ``canceling`` or ``waiting`` (a store written by a daemon that pushed, or
  by hand); then it claims the first jobs and starts the claimer thread.
* **On claim** each job gets the crash rules once more (a stale
  ``waiting`` goes back to ``queued``, an op this daemon does not know
  fails the job) and, unless that ended it, joins the processor.
* **On submit** the submitting thread claims at once if the daemon wants
  work, in the insert's own transaction (``Store.insert_and_claim``: no
  second commit, no thread hop before a job can start), also while
  another claim is under way (then one job, beside it). If it holds all it
  may but the new job beats the claimed job that would start last, it
  claims one job more, up to ``prefetch`` over; past that, the worker
  whose job ends next claims it before taking its next task (if another
  claim is under way just then, that worker asks for a pass and goes on,
  and the urgent job starts at the free worker after). So an urgent job
  starts at the next free worker, or the one after, and the daemon holds at most
  ``workers + 2 * prefetch`` jobs outside lock waits, plus one for each
  thread submitting at that moment. (Claimed jobs are not given back to
  make room: a given-back job would lose its place.)
* **On a lost lease** every claimed job is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import LeaseLost, StoreConflict, StoreError
from ..jobs import FINAL, NO_REQUESTS, Job, OpStatus, recover
from ..operations import Registry
from ..stores.base import Store
from ..timers import Timers
from .claimer import Claimer
from .commit import RETRY_FIRST_S, RETRY_MAX_S
from .processor import Processor
from .state import CRASHED

logger = logging.getLogger(__name__)

LEFT_OVER = [OpStatus.RUNNING, OpStatus.CANCELING, OpStatus.WAITING]
"""Statuses an unowned job can have only if a daemon stopped while it held the job."""
PAGE = 500


class Intake:
    """Feeds the processor from the store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        processor: Processor,
        *,
        timers: Timers,
        clock: Callable[[], float],
        wall: Callable[[], float],
        workers: int,
        prefetch: int,
        max_parked: int,
        heartbeat_s: float | None = None,
        name: str = "jobplane",
        apply_requests: Callable[[Job], None] = lambda job: None,
        admitted: Callable[[list[int]], None] = lambda job_ids: None,
    ) -> None:
        self._store = store
        self._apply_requests = apply_requests
        self._admitted = admitted
        """Told the ids of jobs admitted (a request may have come after their claim read them)."""
        self.workers = workers
        self.capacity = workers + prefetch
        self.batch = max(1, prefetch // 2)
        """Claim at least this many at a time while the pool has work queued."""
        """Claimed jobs that may hold or wait for a worker."""
        self.prefetch = prefetch
        self.max_parked = max_parked
        """Claimed jobs in lock waits at which the daemon claims nothing new."""
        self._stopped = False
        self._urgent = False
        """A submitted job beats the claimed job that would start last: claim one more."""
        self._registry = registry
        self._processor = processor
        self._active = processor.active
        self._parked = processor.parked
        self._timers = timers
        self._wall = wall
        self.claimer = Claimer(
            store,
            wanted=self.wanted,
            admit=self._admit,
            retry_on_crash=self._retry_on_crash,
            on_lease_lost=processor.drop_all,
            name=name,
            clock=clock,
            wall=wall,
            heartbeat_s=heartbeat_s,
            start_message=CRASHED,
        )

    # -- lifecycle ------------------------------------------------------------

    def open(self) -> None:
        """Register, recover what the previous daemon left, claim, start the claimer thread."""
        self.claimer.register()
        self._recover_left_over()
        self.claimer.run_once()
        self.claimer.start()

    def stop(self, *, unregister: bool) -> None:
        """Claim nothing more; ``unregister`` also ends the lease (held jobs become reclaimable)."""
        self._stopped = True
        self.claimer.stop(unregister=unregister)

    def kick(self) -> None:
        self.claimer.kick()

    # -- submissions ----------------------------------------------------------

    def wanted(self) -> int:
        """How many jobs to claim now (the claimer asks before each claim, in its pass).

        Free workers plus prefetch, minus what is held.
        In batches: while every worker has a job and one more waits, nothing
        until half the prefetch is free (a claim is a store write). One
        more, up to ``prefetch`` over, while a submitted job beats the
        claimed job that would start last. Nothing while ``max_parked`` jobs
        wait for locks, or once stopped.
        """
        if self._stopped:
            return 0
        taken, parked = self._processor.load()
        if self._urgent and parked < self.max_parked and taken < self.capacity + self.prefetch:
            # Taken before the claim: an urgent job submitted from now on asks again.
            self._urgent = False
            return max(self.capacity - taken, 1)
        return self._room(taken, parked)

    def _room(self, taken: int, parked: int) -> int:
        """:meth:`wanted` without an urgent job's one more (and without using that mark up)."""
        if self._stopped or parked >= self.max_parked:
            return 0
        free = self.capacity - taken
        if taken > self.workers and free < self.batch:
            return 0
        return free

    def insert(self, jobs: list[Job], max_unarchived: int | None) -> list[int]:
        """Commit submitted jobs; claim with them, in one store write, if they should start soon.

        Nothing is claimed if the daemon holds all it may and the best new
        job does not beat the claimed job that would start last: the jobs
        wait in the store. If a claim is under way (the claimer thread's
        pass, or another submission's), one job is claimed beside it
        (``Claimer.claim_with``).
        """
        store = self._store
        # The daemon holds all it may: does a new job beat them? (Not wanted(),
        # which would use up an urgent mark left for the next free slot.)
        if self._room(*self._processor.load()) <= 0:
            worst = self._processor.worst_queued()
            if worst is not None and min(job.priority for job in jobs) < worst:
                self._urgent = True
        inserted: list[int] = []

        def claim(daemon_id: int, limit: int) -> list[Job]:
            ids, claimed = store.insert_and_claim(
                jobs, max_unarchived=max_unarchived, daemon_id=daemon_id, limit=limit
            )
            inserted.extend(ids)
            return claimed

        try:
            if self.claimer.claim_with(claim):
                return inserted
        except StoreError:
            if not inserted:
                raise  # the insert failed (or QueueFull...): nothing was accepted
            logger.exception("claiming after a submission failed; the claimer tries again")
            self.claimer.kick()
            return inserted
        return store.insert_jobs(jobs, max_unarchived=max_unarchived)

    def slot_free(self) -> None:
        """A claimed job left its worker slot (finished, parked or dropped).

        An urgent job is claimed on this thread, before the worker takes its
        next task; otherwise the claimer thread refills.
        """
        if self._urgent:
            self._pass(blocking=False)
            return
        # wanted() > 0, inline and cheapest first: this runs at every job's end,
        # and claims go in batches, so it mostly finds nothing wanted.
        if self._stopped:
            return
        parked = len(self._parked)
        taken = len(self._active) - parked
        free = self.capacity - taken
        if free <= 0 or (taken > self.workers and free < self.batch):
            return
        if parked < self.max_parked and not self.claimer.kicked() and self._store.may_claim():
            self.claimer.kick()

    def _pass(self, *, blocking: bool) -> None:
        try:
            self.claimer.run_once(blocking=blocking)
        except StoreError:
            logger.exception("claiming failed; the claimer thread tries again")
            self.claimer.kick()

    # -- claimed jobs -----------------------------------------------------------

    def _admit(self, jobs: list[Job]) -> None:
        """Hand claimed jobs to the processor, in claim order, under the crash rules.

        Jobs as claimed, without control requests (nearly all), are admitted
        together (``Processor.admit_many``: one pool call).
        """
        now = self._wall()
        registry = self._registry
        plain: list[Job] = []
        for job in jobs:
            # Would the crash rules change the job (jobs.recover)? Only an
            # unfinished op that is not queued, or that this daemon does not
            # know, is changed by them; a claimed job seldom has one.
            changed = False
            for op in job.ops:
                status = op.status
                if status is OpStatus.QUEUED:
                    if op.op not in registry:
                        changed = True
                        break
                elif status not in FINAL:
                    changed = True
                    break
            requests = job.requests
            if not changed and (requests is NO_REQUESTS or not requests.pending):
                plain.append(job)
                continue
            self._admit_plain(plain)
            plain = []
            self._admit_one(job, changed, now)
        self._admit_plain(plain)

    def _admit_plain(self, jobs: list[Job]) -> None:
        jobs = [job for job in jobs if not job.is_final]
        if jobs:
            self._processor.admit_many(jobs)
            self._admitted([job.id for job in jobs])

    def _admit_one(self, job: Job, changed: bool, now: float) -> None:
        """Admit a job the crash rules change (recovered first), or with requests to apply."""
        fixed = job.clone() if changed else None
        if fixed is not None and recover(fixed, self._retry_on_crash, now, CRASHED):
            try:
                self._store.save(fixed)
            except LeaseLost:
                return
            except StoreError as exc:
                logger.error(
                    "job %s: the store refused its recovery (%s); it is tried again",
                    job.id,
                    exc,
                    extra={"job_id": job.id},
                )
                self._processor.admit(
                    job,
                    pending=self._recovery(now),
                    what="its recovery after a restart",
                )
                self._admitted([job.id])
                return
            job = fixed
        if not job.is_final:
            self._processor.admit(job)
            if job.requests.pending:  # asked of its last owner, which did not apply them
                self._apply_requests(job)
            self._admitted([job.id])

    def _recovery(self, now: float) -> Callable[[Job], None]:
        def change(job: Job) -> None:
            recover(job, self._retry_on_crash, now, CRASHED)

        return change

    def _retry_on_crash(self, name: str) -> bool | None:
        if name not in self._registry:
            return None
        return self._registry.get(name).retry_on_crash

    # -- what a stopped daemon left unowned ---------------------------------------------

    def _recover_left_over(self) -> None:
        """Apply the crash rules to unowned jobs that only a stopped daemon leaves so.

        Reads only jobs in those statuses (a few: what a daemon held), never
        the backlog. A save the store refuses is tried again after a backoff.
        """
        after: int | None = None
        while True:
            page = self._store.list_jobs(statuses=LEFT_OVER, after=after, limit=PAGE)
            for job in page:
                if job.owner is None:
                    self._recover_one(job, RETRY_FIRST_S)
            if len(page) < PAGE:
                return
            after = page[-1].id

    def _recover_one(self, job: Job, backoff: float) -> None:
        fixed = job.clone()
        if not recover(fixed, self._retry_on_crash, self._wall(), CRASHED):
            return
        try:
            self._store.save(fixed)
        except StoreConflict:
            return  # changed meanwhile (claimed, say): whoever changed it has dealt with it
        except StoreError as exc:
            if backoff == RETRY_FIRST_S:
                logger.error(
                    "job %s: the store refused its recovery (%s); it is tried again",
                    job.id,
                    exc,
                    extra={"job_id": job.id},
                )
            later = min(backoff * 2, RETRY_MAX_S)
            self._timers.call_later(backoff, lambda: self._recover_one(job, later))
            return
        if not fixed.is_final:
            self.claimer.kick()
