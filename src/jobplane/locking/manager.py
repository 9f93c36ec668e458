"""``LockManager``: named shared locks in levels, taken outermost level first.

The levels, the big lock, ``ALL`` and the rules that make deadlock impossible
are stated in ``jobplane.locking`` and ``docs/locks.md``. The manager has no
mutex of its own: what an owner holds (``_Holdings``) is changed only by that
owner's calls, and a level's dict of locks is replaced, never changed in place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ..errors import LockError
from ..priorities import check_int
from .dispatcher import GrantDispatcher
from .requests import LockRequest
from .shared import _DELETED, Mode, Pending, SharedLock, _check_timeout


class _AllNames:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ALL"


ALL: Final = _AllNames()
"""Every lock of a level; while held, locks cannot be added to or removed from the level."""


@dataclass(frozen=True, slots=True)
class LockInfo:
    """One lock of a manager: who holds it, since when, and who waits in grant order."""

    level: str
    name: str
    mode: Mode | None
    owners: tuple[Hashable, ...]
    pending: Pending
    since: float | None


class _Level:
    __slots__ = ("index", "locks", "name", "names_lock")

    def __init__(self, index: int, name: str, names_lock: SharedLock | None) -> None:
        self.index = index
        self.name = name
        # Never changed in place: add/remove put a new dict here (under the names lock,
        # held exclusively), so a reader takes the current one without a mutex.
        self.locks: dict[str, SharedLock] = {}
        # Guards the set of names: ALL holds it shared, add/remove exclusively.
        # None at the big lock's level, whose one lock never changes.
        self.names_lock = names_lock


class _Holdings:
    """What one owner holds in a manager, by level index.

    Changed only by the owner's own calls, and by the grant dispatcher finishing
    or failing the owner's request while the owner waits for it: no mutex.
    """

    __slots__ = ("acquiring", "locks", "names_locks")

    def __init__(self) -> None:
        self.locks: dict[int, dict[str, SharedLock]] = {}
        self.names_locks: set[int] = set()  # levels whose names lock it holds (via ALL)
        self.acquiring: int | None = None  # the level it is acquiring at right now

    def deepest(self) -> int:
        """The innermost level it holds or is acquiring anything at; -1 for none."""
        deepest = max(self.locks, default=-1)
        if self.names_locks:
            deepest = max(deepest, *self.names_locks)
        acquiring = self.acquiring
        return deepest if acquiring is None or acquiring < deepest else acquiring

    def idle(self) -> bool:
        return not self.locks and not self.names_locks and self.acquiring is None


_NOTHING_HELD: Final[dict[str, SharedLock]] = {}  # read only: what release() sees at an idle level

CREATE_RETRIES: Final = 5
"""Times a ``request(create=True)`` makes again a name pruned before it could take it."""


class _Vanished(Exception):
    """A ``create`` request found a name it made pruned before it took it (internal)."""


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _name_list(names: Iterable[str], what: str) -> list[str]:
    if isinstance(names, str):
        raise TypeError(f"{what} takes a list of lock names, not the string {names!r}")
    result = list(names)
    for name in result:
        if not isinstance(name, str):
            raise TypeError(f"lock names are strings, not {type(name).__name__}")
    return result


def _sorted_names(names: Iterable[str], what: str) -> tuple[str, ...]:
    """The distinct names, sorted: the order in which they are taken."""
    if isinstance(names, (list, tuple)) and len(names) == 1 and type(names[0]) is str:
        return (names[0],)  # the common case, cheaply
    result = _name_list(names, what)
    return tuple(sorted(set(result))) if len(result) > 1 else tuple(result)


class LockManager:
    """Named shared locks in levels, acquired outermost level first: no deadlock is possible.

    The first level holds exactly one lock, the big lock, named after the level.
    Holding any other lock requires holding the big lock; an owner may acquire at a
    level only while it holds nothing at that level or an inner one, and takes the
    names of one acquire in sorted order. Every wait therefore points to a lock
    further in, so waits can never form a cycle.

    An owner must not call the manager from two threads at once (see the module's
    performance notes); different owners may call it from any threads.
    """

    def __init__(self, levels: Sequence[str], *, clock: Callable[[], float] = time.time) -> None:
        names = _name_list(levels, "LockManager(levels=...)")
        if not names or len(set(names)) != len(names):
            raise ValueError(f"levels must be distinct names, outermost first, not {names!r}")
        # its own dispatcher thread: a slow grant callback delays only this manager's grants
        self._grants = grants = GrantDispatcher()
        self._levels: dict[str, _Level] = {}
        for index, level in enumerate(names):
            names_lock = SharedLock(f"{level}:ALL", clock=clock, grants=grants) if index else None
            self._levels[level] = _Level(index, level, names_lock)
        self._order = tuple(self._levels.values())
        self._big = self._order[0]
        self._big.locks = {self._big.name: SharedLock(self._big.name, clock=clock, grants=grants)}
        self._clock = clock
        self._holdings: dict[Hashable, _Holdings] = {}

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(level.name for level in self._order)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the manager's grant dispatcher once the grants already made are told.

        For the manager's owner shutting down: a request granted after this is
        never told (its ``on_grant`` does not run). Blocking calls still work.
        Waits up to ``timeout`` seconds for the dispatcher thread to end.
        """
        self._grants.close(timeout)

    def add(self, level: str, names: Iterable[str], owner: Hashable | None = None) -> None:
        """Create locks; names that exist already are left as they are.

        Waits while anyone holds ALL at the level.

        Raises:
            LockError: the level is the big lock's, or ``owner`` holds locks at this level
                or an inner one (waiting for ALL holders could then deadlock).
        """
        lvl = self._changeable_level(level)
        wanted = _name_list(names, "add")
        owner = threading.current_thread() if owner is None else owner
        self._check_may_change(lvl, owner)
        locks = lvl.locks
        # A lock prune() has just deleted may still be in the dict for a moment:
        # treat it as missing, and make it anew under the names lock.
        if all(name in locks and locks[name]._exclusive is not _DELETED for name in wanted):
            return
        assert lvl.names_lock is not None
        lvl.names_lock.acquire(owner=owner)
        try:
            self._make_names(lvl, wanted)
        finally:
            lvl.names_lock.release(owner=owner)

    def _make_names(self, lvl: _Level, names: Iterable[str]) -> None:
        """Put new locks in place of missing (or deleted) names; the names lock is held."""
        locks = dict(lvl.locks)
        for name in names:
            if name not in locks or locks[name]._exclusive is _DELETED:
                locks[name] = SharedLock(
                    f"{lvl.name}:{name}", clock=self._clock, grants=self._grants
                )
        lvl.locks = locks

    def remove(self, level: str, names: Iterable[str], owner: Hashable | None = None) -> None:
        """Delete locks, in sorted order, each once the waiters ahead of the deletion are done.

        A deletion queues like an exclusive acquire at priority 0; whoever waits behind
        it, or acquires the name later, gets LockError.

        Waits while anyone holds ALL at the level.

        Raises:
            LockError: the level is the big lock's, a name does not exist (then nothing is
                removed), or ``owner`` holds locks at this level or an inner one.
        """
        lvl = self._changeable_level(level)
        unwanted = _name_list(names, "remove")
        owner = threading.current_thread() if owner is None else owner
        self._check_may_change(lvl, owner)
        assert lvl.names_lock is not None
        lvl.names_lock.acquire(owner=owner)
        try:
            missing = sorted(name for name in set(unwanted) if name not in lvl.locks)
            if missing:
                raise LockError(f"no lock {lvl.name}:{missing[0]} to remove")
            doomed = [(name, lvl.locks[name]) for name in sorted(set(unwanted))]
            for name, lock in doomed:
                lock.delete(owner=owner)
                locks = dict(lvl.locks)
                del locks[name]
                lvl.locks = locks
        finally:
            lvl.names_lock.release(owner=owner)

    def prune(self, level: str, *, older_than: float = 1.0) -> int:
        """Remove the level's locks that nobody holds or waits for; returns how many.

        For locks made on demand (the job queue adds a lock when a job first
        asks for it): without pruning, every name ever used stays. A pruned
        name can be added again. Someone who looked the lock up just before it
        was pruned gets LockError ("deleted", or "no lock ... add it first")
        and should add it and ask again; the job queue does. Locks made less
        than ``older_than`` seconds ago stay: whoever just made one is about to
        take it, so asking again after adding never fails twice in a row. Does
        nothing (0) while anyone holds or waits for ALL at the level, or is
        adding names.

        Raises:
            LockError: the level is the big lock's.
            TypeError: ``older_than`` is not a number of seconds.
        """
        if isinstance(older_than, bool) or not isinstance(older_than, (int, float)):
            raise TypeError(f"older_than must be seconds, not {type(older_than).__name__}")
        lvl = self._changeable_level(level)
        assert lvl.names_lock is not None
        pruner = object()
        if not lvl.names_lock.acquire(timeout=0, owner=pruner):
            return 0
        try:
            made_before = self._clock() - older_than
            idle = [name for name, lock in lvl.locks.items() if lock._delete_if_idle(made_before)]
            if idle:
                locks = dict(lvl.locks)
                for name in idle:
                    del locks[name]
                lvl.locks = locks
            return len(idle)
        finally:
            lvl.names_lock.release(owner=pruner)

    def acquire(
        self,
        level: str,
        names: Iterable[str] | _AllNames,
        shared: bool = False,
        timeout: float | None = None,
        priority: int = 0,
        owner: Hashable | None = None,
    ) -> bool:
        """Take every named lock at ``level`` (or ALL of them), all or nothing.

        Names are taken in sorted order; ``timeout`` bounds the whole call. On timeout
        every lock taken so far is released.

        Returns:
            True when all are held; False when the timeout ran out.

        Raises:
            LockError: out of level order, an unknown name, a lock removed while waited for.
        """
        lvl = self._level(level)
        wanted = None if isinstance(names, _AllNames) else _sorted_names(names, "acquire")
        owner = threading.current_thread() if owner is None else owner
        if type(priority) is not int:
            check_int(priority)
        deadline = None
        if timeout is not None:
            _check_timeout(timeout)
            deadline = time.monotonic() + timeout
        holdings = self._start_acquire(lvl, owner)
        taken: dict[str, SharedLock] = {}
        names_lock = lvl.names_lock if wanted is None else None
        names_held = done = False
        try:
            if names_lock is not None:
                if not names_lock.acquire(True, _remaining(deadline), priority, owner):
                    return False
                names_held = True
            for name, lock in self._resolve(lvl, wanted):
                if not lock.acquire(shared, _remaining(deadline), priority, owner):
                    return False
                taken[name] = lock
            done = True
            return True
        finally:
            holdings.acquiring = None
            if done:
                if taken:
                    holdings.locks[lvl.index] = taken
                if names_held:
                    holdings.names_locks.add(lvl.index)
            else:
                for lock in taken.values():
                    lock.release(owner)
                if names_lock is not None and names_held:
                    names_lock.release(owner)
            self._forget_if_idle(owner, holdings)

    def request(
        self,
        level: str,
        names: Iterable[str] | _AllNames,
        *,
        shared: bool = False,
        priority: int = 0,
        owner: Hashable,
        on_grant: Callable[[LockRequest], None],
        create: bool = False,
    ) -> LockRequest:
        """Ask for locks without blocking: the asynchronous form of :meth:`acquire`.

        The same level rules apply (checked now, raising LockError). Names are
        taken in sorted order; whatever is free is taken at once. If all are,
        the returned request is ``granted`` and ``on_grant`` is not called.
        Otherwise the request waits in the first busy lock's queue, in priority
        order like any waiter, and ``on_grant(request)`` is called once it holds
        them all (or with ``request.error`` set if a lock was deleted), on the
        grant dispatcher thread with no lock mutex held.

        ``create=True`` makes the names that do not exist, as :meth:`add` would,
        but without blocking: the request first takes the level's names lock
        exclusively, queued in priority order like any waiter (it waits there
        while someone holds ALL at the level), makes the names, lets the names
        lock go and goes on taking them. A name pruned or removed before the
        request holds it is made again, up to ``CREATE_RETRIES`` times; then
        the request fails with LockError.
        """
        lvl = self._level(level)
        wanted = None if isinstance(names, _AllNames) else _sorted_names(names, "request")
        if type(priority) is not int:
            check_int(priority)
        if create and (wanted is None or lvl is self._big):
            raise LockError(
                f"request(create=True) needs names at a level other than {self._big.name}"
            )
        if lvl is self._big and owner not in self._holdings:
            req = self._big_at_once(lvl, wanted, shared, priority, owner, on_grant)
            if req is not None:
                return req
        self._start_acquire(lvl, owner)
        req = LockRequest(self, lvl, wanted, shared, priority, owner, on_grant, create)
        try:
            if self._advance_unlocked(req):  # no mutex yet: takes only what is free
                return req
            req._mutex = threading.Lock()  # from here on a grant may come from elsewhere
            with req._mutex:
                complete = self._advance_unlocked(req)
        except BaseException:
            self._abandon_unlocked(req)  # it raised before queueing: no grant can come
            raise
        if complete and req.error is not None:
            raise req.error
        return req

    def _big_at_once(
        self,
        lvl: _Level,
        wanted: tuple[str, ...] | None,
        shared: bool,
        priority: int,
        owner: Hashable,
        on_grant: Callable[[LockRequest], None],
    ) -> LockRequest | None:
        """The big lock for an owner that holds nothing, if it is free: a granted request.

        What the general path does for this case (every job's first request),
        without its steps; None if the lock must be waited for (the general
        path then queues the request) or a name is not the big lock's.
        """
        ((name, lock),) = lvl.locks.items()
        if wanted is not None and wanted != (name,):
            return None
        if not lock._take_now(shared, owner):
            return None
        req = LockRequest(self, lvl, wanted, shared, priority, owner, on_grant)
        req._taken[name] = lock
        holdings = _Holdings()
        holdings.locks[lvl.index] = req._taken  # as _advance_once_unlocked leaves it
        self._holdings[owner] = holdings
        req.granted = True
        return req

    def _advance_unlocked(self, req: LockRequest) -> bool:
        """Take the request's next locks, in order, while they are free.

        Returns True when the request is complete (granted, or failed with ``error``).
        Without a mutex (the request is being made) a busy lock is only tried and
        False means "queue from here on"; with ``req._mutex`` (held) the request
        queues for the first busy lock, whose grant calls :meth:`_step_granted`.
        """
        while True:
            try:
                return self._advance_once_unlocked(req)
            except _Vanished:  # a name it made was pruned before it took it: make it again
                self._remake_unlocked(req)

    def _advance_once_unlocked(self, req: LockRequest) -> bool:
        lvl = req._lvl
        may_queue = req._mutex is not None
        if req.names is None and lvl.names_lock is not None and not req._names_held:
            if not self._take_unlocked(req, lvl.names_lock, True, may_queue):
                return False
            req._names_held = True
        plan = req._plan
        if plan is None:
            if req._create and not self._make_missing_unlocked(req, may_queue):
                return False
            try:
                plan = req._plan = self._resolve(lvl, req.names)
            except LockError:
                if req._create:
                    raise _Vanished from None
                raise
        taken = req._taken
        for name, lock in plan:
            if name in taken:
                continue
            try:
                if not self._take_unlocked(req, lock, req.shared, may_queue):
                    return False
            except LockError:
                if req._create and lock._exclusive is _DELETED:
                    raise _Vanished from None
                raise
            taken[name] = lock
        req._waiting_on = None
        holdings = self._holdings[req.owner]
        holdings.acquiring = None
        if taken:
            holdings.locks[lvl.index] = taken  # the request is done with it
        if req._names_held:
            holdings.names_locks.add(lvl.index)
        req.granted = True
        return True

    def _make_missing_unlocked(self, req: LockRequest, may_queue: bool) -> bool:
        """Make the request's names that do not exist; False while it waits for the names lock.

        The names lock is taken exclusively (queued in priority order when
        ``may_queue``), held only while the names are made, and let go at once.
        """
        lvl, names_lock = req._lvl, req._lvl.names_lock
        assert req.names is not None and names_lock is not None
        if not req._names_held:
            locks = lvl.locks
            if all(name in locks and locks[name]._exclusive is not _DELETED for name in req.names):
                return True
            if not self._take_unlocked(req, names_lock, False, may_queue):
                return False
            req._names_held = True
        try:
            self._make_names(lvl, req.names)
        finally:
            req._names_held = False
            names_lock.release(req.owner)
        return True

    def _remake_unlocked(self, req: LockRequest) -> None:
        """Start a ``create`` request's level again: a name vanished before it was taken.

        Raises:
            LockError: it happened more than ``CREATE_RETRIES`` times.
        """
        for lock in reversed(list(req._taken.values())):
            lock.release(req.owner)
        req._taken.clear()
        req._plan = None
        req._waiting_on = None
        req._remade += 1
        if req._remade > CREATE_RETRIES:
            raise LockError(
                f"the locks {req.level}:{','.join(req.names or ())} were pruned or removed "
                f"{req._remade} times before {req.owner!r} could take them; add it first"
            )

    @staticmethod
    def _take_unlocked(req: LockRequest, lock: SharedLock, shared: bool, may_queue: bool) -> bool:
        if not may_queue:
            return lock._take_now(shared, req.owner)
        if lock.acquire_async(shared, req.priority, req.owner, req._lock_granted):
            return True
        req._waiting_on = lock
        return False

    def _step_granted(self, req: LockRequest, error: LockError | None) -> None:
        """A lock the request waited in was granted (dispatcher thread)."""
        assert req._mutex is not None  # it queued, so it has one
        with req._mutex:
            if req._canceled or req.granted:
                return  # cancel() has dealt with this lock already
            lock = req._waiting_on
            req._waiting_on = None
            try:
                if error is None:
                    assert lock is not None
                    self._note_taken_unlocked(req, lock)
                elif req._create and lock is not req._lvl.names_lock:
                    self._remake_unlocked(req)  # the name was removed while it waited
                else:
                    raise error
                if not self._advance_unlocked(req):
                    return
            except LockError as exc:
                req.error = exc
                self._abandon_unlocked(req)
        req._on_grant(req)

    def _cancel(self, req: LockRequest) -> bool:
        if req._mutex is None:
            return not req.granted  # it never queued: complete since request() returned
        with req._mutex:
            if req.granted:
                return False
            if req._canceled or req.error is not None:
                return True
            req._canceled = True
            lock = req._waiting_on
            if lock is not None and not lock.cancel_async(req.owner):
                # granted a moment ago; its callback will find the request canceled
                self._note_taken_unlocked(req, lock)
            req._waiting_on = None
            self._abandon_unlocked(req)
            return True

    @staticmethod
    def _note_taken_unlocked(req: LockRequest, lock: SharedLock) -> None:
        """Record that the request now holds ``lock`` (the one it queued for)."""
        if lock is req._lvl.names_lock:
            req._names_held = True
        else:
            req._taken[next(n for n, lk in req._plan or () if lk is lock)] = lock

    def _abandon_unlocked(self, req: LockRequest) -> None:
        """Release whatever an incomplete request took and forget it.

        Under ``req._mutex``, or where no grant can come (nothing is queued).
        """
        for lock in reversed(list(req._taken.values())):
            lock.release(req.owner)
        req._taken.clear()
        names_lock = req._lvl.names_lock
        if req._names_held and names_lock is not None:
            names_lock.release(req.owner)
            req._names_held = False
        holdings = self._holdings.get(req.owner)
        if holdings is not None:
            holdings.acquiring = None
            self._forget_if_idle(req.owner, holdings)

    def release(
        self, level: str, names: Iterable[str] | None = None, owner: Hashable | None = None
    ) -> None:
        """Release the named locks, or (names=None) everything the owner holds at ``level``.

        Raises:
            LockError: the owner does not hold a named lock, or it would release the big
                lock while holding inner locks.
        """
        lvl = self._level(level)
        chosen = None if names is None else _name_list(names, "release")
        owner = threading.current_thread() if owner is None else owner
        holdings = self._holdings.get(owner)
        if (
            chosen is None
            and lvl is self._big
            and holdings is not None
            and len(holdings.locks) == 1
            and lvl.index in holdings.locks
            and not holdings.names_locks
            and holdings.acquiring is None
        ):  # all it holds is the big lock (every job's last release): nothing to check
            del self._holdings[owner]
            for lock in holdings.locks.pop(lvl.index).values():
                lock.release(owner)
            return
        if holdings is None:
            if chosen:
                raise LockError(f"{owner!r} does not hold lock {lvl.name}:{chosen[0]}")
            return
        held = holdings.locks.get(lvl.index, _NOTHING_HELD)
        if chosen is None:
            chosen = list(held)
        else:
            for name in chosen:
                if name not in held:
                    raise LockError(f"{owner!r} does not hold lock {lvl.name}:{name}")
        if (
            lvl is self._big
            and chosen
            and (len(holdings.locks) > 1 or holdings.names_locks or holdings.acquiring)
        ):
            inner = max((i for i in (*holdings.locks, *holdings.names_locks) if i), default=0)
            blocking = self._order[inner or holdings.acquiring or 0].name
            raise LockError(
                f"{owner!r} cannot release the big lock {lvl.name} while it holds or "
                f"acquires locks at level {blocking}"
            )
        freed = [held.pop(name) for name in chosen]
        names_lock = None
        if not held:
            holdings.locks.pop(lvl.index, None)
            if lvl.index in holdings.names_locks:
                holdings.names_locks.discard(lvl.index)
                names_lock = lvl.names_lock
        self._forget_if_idle(owner, holdings)
        for lock in freed:
            lock.release(owner)
        if names_lock is not None:
            names_lock.release(owner)

    def owned(self, level: str, owner: Hashable | None = None) -> frozenset[str]:
        """The names of the locks ``owner`` holds at ``level``."""
        lvl = self._level(level)
        owner = threading.current_thread() if owner is None else owner
        holdings = self._holdings.get(owner)
        return frozenset(holdings.locks.get(lvl.index, ()) if holdings else ())

    def info(self) -> list[LockInfo]:
        """Every lock, level by level (outermost first) and by name within a level."""
        result = []
        for lvl in self._order:
            locks = lvl.locks
            for name in sorted(locks):
                stats = locks[name].statistics()
                result.append(
                    LockInfo(lvl.name, name, stats.mode, stats.owners, stats.pending, stats.since)
                )
        return result

    # -- helpers --------------------------------------------------------------------------

    def _level(self, level: str) -> _Level:
        try:
            return self._levels[level]
        except (KeyError, TypeError):
            raise LockError(f"no lock level {level!r}; levels are {list(self._levels)}") from None

    def _changeable_level(self, level: str) -> _Level:
        lvl = self._level(level)
        if lvl is self._big:
            raise LockError(f"level {lvl.name} holds only the big lock; it cannot change")
        return lvl

    @staticmethod
    def _resolve(lvl: _Level, wanted: Sequence[str] | None) -> list[tuple[str, SharedLock]]:
        locks = lvl.locks  # one dict, never changed in place
        if wanted is None:
            return sorted(locks.items())
        try:
            return [(name, locks[name]) for name in wanted]
        except KeyError as exc:
            raise LockError(f"no lock {lvl.name}:{exc.args[0]}; add it first") from None

    def _start_acquire(self, lvl: _Level, owner: Hashable) -> _Holdings:
        holdings = self._holdings.get(owner)
        if holdings is None:
            holdings = self._holdings[owner] = _Holdings()
        if holdings.acquiring is not None:
            raise LockError(f"{owner!r} is already acquiring locks in another thread")
        deepest = holdings.deepest()
        if deepest == lvl.index:
            raise LockError(
                f"{owner!r} already holds locks at level {lvl.name}; take all the names it "
                "needs there in one acquire"
            )
        if deepest > lvl.index:
            raise LockError(
                f"{owner!r} holds locks at level {self._order[deepest].name}, inside level "
                f"{lvl.name}; levels must be acquired outermost first"
            )
        if lvl is not self._big and 0 not in holdings.locks:
            self._forget_if_idle(owner, holdings)
            raise LockError(
                f"{owner!r} must hold the big lock {self._big.name} before acquiring at "
                f"level {lvl.name}"
            )
        holdings.acquiring = lvl.index
        return holdings

    def _check_may_change(self, lvl: _Level, owner: Hashable) -> None:
        holdings = self._holdings.get(owner)
        if holdings is not None and holdings.deepest() >= lvl.index:
            raise LockError(
                f"{owner!r} holds locks at level {lvl.name} or an inner one; release them "
                f"before adding or removing locks at level {lvl.name}"
            )

    def _forget_if_idle(self, owner: Hashable, holdings: _Holdings) -> None:
        if holdings.idle() and self._holdings.get(owner) is holdings:
            del self._holdings[owner]
