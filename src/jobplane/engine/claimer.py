"""The daemon's side of the schedule: keep the lease, reclaim the lost, claim what it can start.

A :class:`Claimer` is the only part of a daemon that calls ``register_daemon``,
``heartbeat``, ``reclaim`` and ``claim`` (guarantees 8, 9 and 11 of
``stores.base``). Each pass of :meth:`Claimer.run_once`:

1. renews the lease if a heartbeat is due (every ``lease_s / 3``); if the
   store says the lease is lost, tells the engine (``on_lease_lost``: drop
   every job at once) and registers as a new daemon;
2. reclaims the jobs of daemons whose lease has expired (at start, then
   every heartbeat), applies the crash rules to them (``jobs.recover``) and
   gives them back to the schedule, so they are claimed in order like any
   other job;
3. claims as many ready jobs as the engine wants (``wanted()``: free workers
   plus prefetch, minus what it already holds) and hands them over
   (``admit``).

A thread runs passes when kicked (a store listener, a finished job, a
submit) and at least once per heartbeat interval; tests call ``run_once``
themselves with a manual clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import LeaseLost, StoreConflict, StoreError
from ..jobs import DAEMON_LOST, Job, recover
from ..stores.base import Store

logger = logging.getLogger(__name__)


class Claimer:
    """Feeds one daemon ready jobs from the store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        wanted: Callable[[], int],
        admit: Callable[[list[Job]], None],
        retry_on_crash: Callable[[str], bool | None],
        on_lease_lost: Callable[[], None],
        name: str = "jobplane",
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        heartbeat_s: float | None = None,
        start_message: str = DAEMON_LOST,
    ) -> None:
        self._store = store
        self._wanted = wanted
        self._admit = admit
        self._retry_on_crash = retry_on_crash
        self._on_lease_lost = on_lease_lost
        self._name = name
        self._clock = clock
        self._wall = wall
        self.heartbeat_s = store.lease_s / 3 if heartbeat_s is None else heartbeat_s
        self._start_message = start_message
        """The crash rules' message for the jobs reclaimed at registration (a restart)."""
        self.daemon_id: int | None = None
        self._next_heartbeat = 0.0
        self._pass_mutex = threading.Lock()  # one pass at a time
        self._kicked = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------

    def register(self) -> int:
        """Start a lease and reclaim what lost daemons left; returns the daemon id."""
        lease = self._store.register_daemon(self._name)
        self.daemon_id = lease.daemon_id
        self._next_heartbeat = self._clock() + self.heartbeat_s
        logger.info("daemon %s (epoch %s) registered", lease.daemon_id, lease.epoch)
        self._reclaim(self._start_message)
        return lease.daemon_id

    def start(self) -> None:
        """Run passes on a thread ``jobplane-claimer`` until :meth:`stop`."""
        if self.daemon_id is None:
            self.register()
        self._thread = threading.Thread(target=self._loop, name="jobplane-claimer", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """Ask for a pass soon (cheap; passes asked for meanwhile are merged)."""
        if not self._kicked.is_set():
            self._kicked.set()

    def kicked(self) -> bool:
        """Whether a pass is asked for and not begun."""
        return self._kicked.is_set()

    def stop(self, *, unregister: bool = True, timeout: float = 5.0) -> None:
        """Stop the thread; ``unregister`` ends the lease (its jobs are reclaimable at once)."""
        self._stopping.set()
        self._kicked.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if unregister and self.daemon_id is not None:
            try:
                self._store.unregister_daemon(self.daemon_id)
            except StoreError:
                logger.exception("daemon %s: could not end its lease", self.daemon_id)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._kicked.wait(self.heartbeat_s)
            self._kicked.clear()
            if self._stopping.is_set():
                return
            try:
                self.run_once()
            except StoreError:
                logger.exception("claiming failed; trying again in %.1f s", self.heartbeat_s)
            except Exception:  # never die silently: the next kick or heartbeat tries again
                logger.exception("a claimer pass failed")

    # -- one pass ---------------------------------------------------------------

    def run_once(self, *, blocking: bool = True) -> int:
        """Heartbeat if due, reclaim if due, then claim what is wanted; returns jobs claimed.

        ``blocking=False``: if a pass is under way (on another thread, or
        this one: a callback of the pass), ask for one more and return 0.
        """
        if not self._pass_mutex.acquire(blocking=blocking):
            self.kick()
            return 0
        try:
            if self.daemon_id is None:
                self.register()
            if self._clock() >= self._next_heartbeat and not self._heartbeat():
                return 0
            return self._claim()
        finally:
            self._pass_mutex.release()

    def claim_with(self, claim: Callable[[int, int], list[Job]]) -> bool:
        """One claim made by ``claim(daemon_id, limit)``, if the engine wants any.

        For a claim that rides on another write (``Store.insert_and_claim``
        on submit). Returns False, without calling ``claim``, if nothing is
        wanted or the daemon is not registered. If a pass is under way (on
        the claimer thread, or another submission's claim), it claims one
        job beside it, so a submitted job never waits for a pass nor costs a
        second write and a thread hop: the store never hands out a job twice,
        and what is held exceeds ``wanted`` by at most one per thread
        claiming beside a pass at that moment.
        """
        locked = self._pass_mutex.acquire(blocking=False)
        try:
            if self.daemon_id is None:
                return False
            limit = self._wanted()
            if limit <= 0:
                return False
            jobs = claim(self.daemon_id, limit if locked else 1)
            if jobs:
                self._admit(jobs)
            if not locked and limit > 1:
                self.kick()  # that pass may have claimed already: the next claims the rest
            return True
        finally:
            if locked:
                self._pass_mutex.release()

    def _heartbeat(self) -> bool:
        """Renew the lease and reclaim; False if the lease was lost (and a new one taken)."""
        assert self.daemon_id is not None
        try:
            self._store.heartbeat(self.daemon_id)
        except LeaseLost:
            logger.error("daemon %s lost its lease: dropping its jobs", self.daemon_id)
            self._on_lease_lost()
            self.register()
            return False
        self._next_heartbeat = self._clock() + self.heartbeat_s
        self._reclaim()
        return True

    def _reclaim(self, message: str = DAEMON_LOST) -> None:
        """Take over lost daemons' jobs, apply the crash rules and put them back in the schedule."""
        assert self.daemon_id is not None
        for job in self._store.reclaim(self.daemon_id):
            recover(job, self._retry_on_crash, self._wall(), message)
            try:
                self._store.save(job, release=True)
            except StoreConflict:  # LeaseLost included: the next heartbeat deals with it
                logger.exception("job %s: could not give back a reclaimed job", job.id)
            else:
                logger.info("job %s reclaimed from a lost daemon", job.id, extra={"job_id": job.id})

    def _claim(self) -> int:
        assert self.daemon_id is not None
        claimed = 0
        while (wanted := self._wanted()) > 0:
            jobs = self._store.claim(self.daemon_id, wanted)
            if not jobs:
                break
            claimed += len(jobs)
            self._admit(jobs)
            if len(jobs) < wanted:
                break
        return claimed
