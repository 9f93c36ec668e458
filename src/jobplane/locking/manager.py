"""Shared locks with priority-ordered waiters, and a lock manager with levels.

A :class:`SharedLock` is free, held exclusively by one owner, or shared by any
number of owners. Whoever cannot have it at once waits in the lock's queue:

* lower priority numbers are served first, FIFO within a priority;
* sharers at one priority wait as one group, at the place of the first of
  them, and are granted together;
* a new acquire skips the queue only when nobody waits, so a stream of
  sharers cannot starve an exclusive waiter of the same or higher priority.

Grants are handed over by whoever changes the lock (a release, a downgrade,
a waiter giving up): it grants the head of the queue for as long as the head
fits, then wakes exactly the waiters it granted. So the head of a non-empty
queue is always a waiter that cannot be granted yet.

A :class:`LockManager` arranges locks in levels (outermost first, the big
lock alone at the top) and refuses any acquire out of level order, which is
what makes deadlock impossible; ``docs/locks.md`` explains the model.

Lock discipline: each lock has one mutex, ``_mutex`` (a :class:`_Mutex`);
every queued request has its own Condition on it, ``wakeup``. Methods ending
in ``_unlocked`` need that mutex held (in the manager: the request's
``_mutex``, once it has one). The manager itself has no mutex: what an owner
holds (``_Holdings``) is changed only by that owner's own calls, and the names
of a level change only under the level's names lock, held exclusively by
``add``/``remove``, which put a new dict in place (copy on write) so readers
need no lock.

Performance notes. **An owner must not call the manager from two threads at
once** (the job layer handles each job in one place at a time); the common
misuse is still detected ("already acquiring locks in another thread") but a
race between two threads of one owner is not. Outside the locks' mutexes,
shared state (the manager's holdings by owner, a level's dict of locks, a
mutex's parked waiters) is read and changed only by single operations on a
dict, deque or lock, each atomic in CPython. So the manager holds no mutex for
its bookkeeping, and apart from a request's own mutex (held around taking its
locks, and made only once the request has to queue) no mutex is held while
another is taken. A lock's mutex is a :class:`_Mutex`, not a bare
``threading.Lock``: under the GIL, a thread blocked on a ``threading.Lock``
is handed it inside the kernel before it can run, so the thread that just
released it blocks on its next acquire, and from then on every critical
section costs two context switches (a convoy that made 4 threads about 3 times
slower than 1). The hot paths (``SharedLock.acquire``/``release``, taking a
free lock for a request) inline the mutex's fast path and allocate nothing
they may not need. ``bench/locking.py`` measures the manager from 1 and 4
threads.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Final, Literal, cast

from ..errors import LockError as LockError
from ..priorities import check_int

logger = logging.getLogger(__name__)

__all__ = [
    "ALL",
    "LockError",
    "LockInfo",
    "LockManager",
    "LockRequest",
    "LockStatistics",
    "SharedLock",
    "lock_attempt_timeouts",
]

Mode = Literal["exclusive", "shared"]
Pending = tuple[tuple[int, bool, Hashable], ...]
"""One ``(priority, shared, owner)`` per waiter, in the order they will be granted."""


@dataclass(frozen=True, slots=True)
class LockStatistics:
    """A snapshot of one lock: who holds it, since when, and who waits in what order."""

    name: str
    mode: Mode | None
    owners: tuple[Hashable, ...]
    """Holders in the order they were granted the lock."""
    pending: Pending
    since: float | None
    """When the current mode was granted (the lock's clock, ``time.time`` by default)."""
    deleted: bool


class _Deleted:
    """Stored as the exclusive owner of a deleted lock, so the fast path fails."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<deleted>"


_DELETED: Final = _Deleted()


class _Mutex:
    """A mutex that a thread only ever takes while it is running Python code.

    A blocked ``threading.Lock.acquire`` takes the lock inside the kernel, on a
    thread that does not hold the GIL yet. The thread that released the lock
    still holds the GIL, comes back for the lock a moment later, finds it
    taken by a thread that cannot run, and blocks in turn: every critical
    section then costs two context switches, and the convoy lasts. Here a
    waiter parks on a gate of its own instead; a release opens the oldest
    gate, and the woken thread tries again once it runs. So the lock always
    belongs to a thread that can run; the running thread keeps taking it
    without waiting until its GIL turn ends.

    The hot paths inline ``lock.acquire(False)`` / :meth:`acquire_parked` and
    ``lock.release()`` / ``if parked: wake_one()``; anything else may use the
    mutex like a ``threading.Lock`` (including as a Condition's lock). Every
    step is one atomic operation on a lock or deque, so no wake-up is lost: a
    waiter tries again after parking, and a release opens a gate whenever one
    is parked.
    """

    __slots__ = ("lock", "parked")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.parked: deque[threading.Lock] = deque()  # closed gates, oldest first

    def acquire(self, blocking: bool = True) -> bool:
        if self.lock.acquire(False):
            return True
        if not blocking:
            return False
        self.acquire_parked()
        return True

    def release(self) -> None:
        self.lock.release()
        if self.parked:
            self.wake_one()

    __enter__ = acquire

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire_parked(self) -> None:
        """Wait for the mutex (a try just failed); returns holding it."""
        lock, parked = self.lock, self.parked
        while True:
            gate = threading.Lock()
            gate.acquire()
            parked.append(gate)
            if lock.acquire(False):  # it was released before we parked: withdraw the gate
                # (ValueError: a release opened it already; ours will open the next one)
                with contextlib.suppress(ValueError):
                    parked.remove(gate)
                return
            try:
                gate.acquire()
            except BaseException:  # e.g. KeyboardInterrupt: leave, passing on any wake-up
                try:
                    parked.remove(gate)
                except ValueError:
                    self.wake_one()
                raise
            if lock.acquire(False):
                return

    def wake_one(self) -> None:
        """Open the oldest gate (the mutex was just released)."""
        try:
            gate = self.parked.popleft()
        except IndexError:
            return
        gate.release()


GrantCallback = Callable[["LockError | None"], None]
"""Told of an asynchronous grant: None once granted, a LockError if the lock was deleted."""


class _Request:
    """One place in a queue: an exclusive waiter, or the group of sharers at one priority.

    Blocking waiters sleep on ``wakeup``; asynchronous ones (``callbacks``) are
    told through the grant dispatcher, never on the granting thread.
    """

    __slots__ = ("callbacks", "granted", "owners", "priority", "shared", "wakeup")

    def __init__(self, mutex: _Mutex, shared: bool, priority: int) -> None:
        self.shared = shared
        self.priority = priority
        self.owners: list[Hashable] = []
        self.granted = False
        # Condition takes any lock with acquire/release (it falls back on those for
        # _release_save, _acquire_restore and _is_owned).
        self.wakeup = threading.Condition(cast(threading.Lock, mutex))
        self.callbacks: dict[Hashable, GrantCallback] | None = None


class _Dispatcher:
    """One daemon thread that runs grant callbacks in the order grants were made.

    Granting threads only enqueue (under the lock's mutex, which is cheap and
    safe); callbacks run here with no lock mutex held, so they may call back
    into any lock or manager.
    """

    def __init__(self) -> None:
        self._queue: SimpleQueue[Callable[[], None]] = SimpleQueue()
        self._started = False
        self._start_mutex = threading.Lock()

    def put(self, call: Callable[[], None]) -> None:
        if not self._started:
            self._start()
        self._queue.put(call)

    def _start(self) -> None:
        with self._start_mutex:
            if not self._started:
                threading.Thread(target=self._run, name="jobplane-lock-grants", daemon=True).start()
                self._started = True

    def _run(self) -> None:
        while True:
            call = self._queue.get()
            try:
                call()
            except Exception:
                logger.exception("a lock grant callback failed")


_GRANTS = _Dispatcher()


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be None or >= 0, not {timeout!r}")


class SharedLock:
    """A lock held exclusively by one owner or shared by many, granted in priority order.

    ``owner`` is any hashable (the job layer passes job ids); it defaults to the
    calling thread. Locks are not re-entrant: acquiring a lock the owner already
    holds or waits for raises LockError.
    """

    __slots__ = (
        "_clock",
        "_created",
        "_exclusive",
        "_groups",
        "_mutex",
        "_name",
        "_priorities",
        "_queues",
        "_shared",
        "_since",
        "_waiting",
    )

    def __init__(self, name: str, *, clock: Callable[[], float] = time.time) -> None:
        self._name = name
        self._clock = clock
        self._created = clock()
        self._mutex = _Mutex()
        self._exclusive: Hashable | None = None
        self._shared: dict[Hashable, None] = {}  # sharers in grant order
        self._since: float | None = None
        self._queues: dict[int, deque[_Request]] = {}  # empty when nobody waits
        self._priorities: list[int] = []  # the keys of _queues, sorted
        self._groups: dict[int, _Request] = {}  # per priority: its sharers' group, still queued
        self._waiting: dict[Hashable, _Request] = {}

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"<SharedLock {self._name!r}>"

    def acquire(
        self,
        shared: bool = False,
        timeout: float | None = None,
        priority: int = 0,
        owner: Hashable | None = None,
    ) -> bool:
        """Take the lock, waiting in priority order if need be.

        Args:
            shared: share the lock with other sharers instead of holding it alone.
            timeout: None waits for as long as it takes, a number is the total wait in
                seconds, 0 tries once without queueing.
            priority: lower numbers are granted first.
            owner: who holds the lock; the calling thread by default.

        Returns:
            True once held; False only when the timeout ran out (nothing is left queued).

        Raises:
            LockError: the owner already holds or waits for this lock, or it was deleted.
        """
        if owner is None:
            owner = threading.current_thread()
        if type(priority) is not int:
            check_int(priority)
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be None or >= 0, not {timeout!r}")
        mutex = self._mutex  # taken and released inline, the cheapest way (see _Mutex)
        if not mutex.lock.acquire(False):
            mutex.acquire_parked()
        try:
            if not self._queues and self._exclusive is None:  # the fast path
                if not shared:
                    if not self._shared:
                        self._exclusive = owner
                        self._since = self._clock()
                        return True
                elif owner not in self._shared:
                    if not self._shared:
                        self._since = self._clock()
                    self._shared[owner] = None
                    return True
            return self._acquire_unlocked(shared, timeout, priority, owner)
        finally:
            mutex.lock.release()
            if mutex.parked:
                mutex.wake_one()

    def release(self, owner: Hashable | None = None) -> None:
        """Give the lock up and grant it to whoever is next in the queue.

        Raises:
            LockError: the owner does not hold the lock.
        """
        if owner is None:
            owner = threading.current_thread()
        mutex = self._mutex
        if not mutex.lock.acquire(False):
            mutex.acquire_parked()
        try:
            if self._exclusive is not None and self._exclusive == owner:
                self._exclusive = None
            elif owner in self._shared:
                del self._shared[owner]
                if self._shared:
                    return  # still shared: the head of the queue, if any, is exclusive
            else:
                raise LockError(f"{owner!r} does not hold lock {self._name}")
            self._since = None
            if self._queues:
                self._grant_unlocked()
        finally:
            mutex.lock.release()
            if mutex.parked:
                mutex.wake_one()

    def downgrade(self, owner: Hashable | None = None) -> None:
        """Turn an exclusive hold into a shared one; the first priority's sharers join at once.

        As in Ganeti, the group of sharers at the first waiting priority moves
        to the front of that priority (ahead of exclusive waiters that came
        before it) and is granted with the downgrade; sharers at the head of
        the queue after it are let in too. Only a change from exclusive to
        shared does this, so a holder cannot keep pulling sharers forward.

        Raises:
            LockError: the owner does not hold the lock exclusively.
        """
        if owner is None:
            owner = threading.current_thread()
        with self._mutex:
            if self._exclusive is None or self._exclusive != owner:
                raise LockError(f"{owner!r} does not hold lock {self._name} exclusively")
            self._exclusive = None
            self._shared[owner] = None
            self._since = self._clock()
            if self._priorities:
                first = self._priorities[0]
                group = self._groups.get(first)
                queue = self._queues[first]
                if group is not None and queue[0] is not group:
                    queue.remove(group)
                    queue.appendleft(group)
            self._grant_unlocked()

    def delete(
        self, timeout: float | None = None, priority: int = 0, owner: Hashable | None = None
    ) -> bool:
        """Wait for the lock like an exclusive acquire, then delete it.

        An owner that holds the lock exclusively deletes it at once. Every waiter,
        and every later acquire, raises LockError.

        Returns:
            True once deleted; False when the timeout ran out.

        Raises:
            LockError: the lock is already deleted, or the owner holds it shared.
        """
        if owner is None:
            owner = threading.current_thread()
        check_int(priority)
        _check_timeout(timeout)
        with self._mutex:
            if self._exclusive is _DELETED:
                raise LockError(f"lock {self._name} is already deleted")
            if owner in self._shared:
                raise LockError(
                    f"{owner!r} holds lock {self._name} shared; only an exclusive holder "
                    "or a waiter may delete it"
                )
            holds_it = self._exclusive is not None and self._exclusive == owner
            if not holds_it and not self._acquire_unlocked(False, timeout, priority, owner):
                return False
            self._exclusive = _DELETED
            self._since = None
            error = LockError(f"lock {self._name} was deleted")
            for waiting in self._queues.values():
                for request in waiting:
                    request.wakeup.notify_all()
                    if request.callbacks:
                        for callback in request.callbacks.values():
                            _GRANTS.put(functools.partial(callback, error))
            self._queues.clear()
            self._priorities.clear()
            self._groups.clear()
            self._waiting.clear()
            return True

    def _delete_if_idle(self, made_before: float) -> bool:
        """Delete the lock if nobody holds it or waits for it (True); else leave it.

        A lock made at ``made_before`` (by its clock) or later is left too.
        """
        if self._created >= made_before:
            return False
        with self._mutex:
            if self._exclusive is not None or self._shared or self._queues:
                return False
            self._exclusive = _DELETED
            return True

    def acquire_async(
        self, shared: bool, priority: int, owner: Hashable, on_grant: GrantCallback
    ) -> bool:
        """Take the lock at once if possible (True); else queue and return False.

        A queued request waits in priority order exactly like a blocking
        acquire. When it is granted, ``on_grant(None)`` runs on the grant
        dispatcher thread (``on_grant(LockError)`` if the lock is deleted).

        Raises:
            LockError: the owner already holds or waits for this lock, or it was deleted.
        """
        if type(priority) is not int:
            check_int(priority)
        mutex = self._mutex
        if not mutex.lock.acquire(False):
            mutex.acquire_parked()
        try:
            if self._take_now_unlocked(shared, owner):
                return True
            request = self._enqueue_unlocked(shared, priority, owner)
            if request.callbacks is None:
                request.callbacks = {}
            request.callbacks[owner] = on_grant
            self._grant_unlocked()  # usually a no-op: the head cannot be granted
            return False
        finally:
            mutex.lock.release()
            if mutex.parked:
                mutex.wake_one()

    def _take_now(self, shared: bool, owner: Hashable) -> bool:
        """Take the lock if that needs no queueing (True); else leave no trace (False).

        Raises:
            LockError: as :meth:`acquire_async`.
        """
        mutex = self._mutex
        if not mutex.lock.acquire(False):
            mutex.acquire_parked()
        try:
            return self._take_now_unlocked(shared, owner)
        finally:
            mutex.lock.release()
            if mutex.parked:
                mutex.wake_one()

    def _take_now_unlocked(self, shared: bool, owner: Hashable) -> bool:
        if self._exclusive is _DELETED:
            raise LockError(f"lock {self._name} was deleted")
        if (self._exclusive is not None and self._exclusive == owner) or owner in self._shared:
            raise LockError(f"{owner!r} already holds lock {self._name} (locks are not re-entrant)")
        if owner in self._waiting:
            raise LockError(f"{owner!r} is already waiting for lock {self._name}")
        if self._queues or self._exclusive is not None:
            return False
        if shared:
            if not self._shared:
                self._since = self._clock()
            self._shared[owner] = None
            return True
        if self._shared:
            return False
        self._exclusive = owner
        self._since = self._clock()
        return True

    def cancel_async(self, owner: Hashable) -> bool:
        """Withdraw ``owner``'s queued request: True if nothing is queued or held any more.

        False means it was granted already: the owner holds the lock (its
        callback is on its way, and should be ignored).
        """
        with self._mutex:
            request = self._waiting.get(owner)
            if request is None:
                exclusive = self._exclusive
                holds = exclusive is not None and exclusive is not _DELETED and exclusive == owner
                return not (holds or owner in self._shared)
            self._withdraw_unlocked(request, owner)
            return True

    def statistics(self) -> LockStatistics:
        """Who holds the lock, since when, and who waits, in the order they will be granted."""
        with self._mutex:
            mode: Mode | None = None
            owners: tuple[Hashable, ...] = ()
            deleted = self._exclusive is _DELETED
            if self._exclusive is not None and not deleted:
                mode, owners = "exclusive", (self._exclusive,)
            elif self._shared:
                mode, owners = "shared", tuple(self._shared)
            pending = tuple(
                (priority, request.shared, owner)
                for priority in self._priorities
                for request in self._queues[priority]
                for owner in request.owners
            )
            return LockStatistics(self._name, mode, owners, pending, self._since, deleted)

    # -- the slow path: queueing, granting, giving up ------------------------------------

    def _acquire_unlocked(
        self, shared: bool, timeout: float | None, priority: int, owner: Hashable
    ) -> bool:
        if self._exclusive is _DELETED:
            raise LockError(f"lock {self._name} was deleted")
        if (self._exclusive is not None and self._exclusive == owner) or owner in self._shared:
            raise LockError(f"{owner!r} already holds lock {self._name} (locks are not re-entrant)")
        if owner in self._waiting:
            raise LockError(f"{owner!r} is already waiting for lock {self._name}")
        request = self._enqueue_unlocked(shared, priority, owner)
        self._grant_unlocked()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not request.granted:
                if self._exclusive is _DELETED:
                    raise LockError(f"lock {self._name} was deleted while {owner!r} waited for it")
                if deadline is None:
                    request.wakeup.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._withdraw_unlocked(request, owner)
                    return False
                request.wakeup.wait(remaining)  # may wake early: the loop checks again
        except BaseException:
            if request.granted:  # e.g. interrupted right after the grant: give it back
                self._shared.pop(owner, None)
                if self._exclusive == owner:
                    self._exclusive = None
                if not self._shared and self._exclusive is None:
                    self._since = None
                self._grant_unlocked()
            else:
                self._withdraw_unlocked(request, owner)
            raise
        return True

    def _enqueue_unlocked(self, shared: bool, priority: int, owner: Hashable) -> _Request:
        request = self._groups.get(priority) if shared else None
        if request is None:
            request = _Request(self._mutex, shared, priority)
            queue = self._queues.get(priority)
            if queue is None:
                queue = self._queues[priority] = deque()
                bisect.insort(self._priorities, priority)
            queue.append(request)
            if shared:
                self._groups[priority] = request
        request.owners.append(owner)
        self._waiting[owner] = request
        return request

    def _grant_unlocked(self) -> None:
        """Grant the head of the queue for as long as it fits, and wake those granted."""
        while self._priorities:
            priority = self._priorities[0]
            queue = self._queues[priority]
            request = queue[0]
            if self._exclusive is not None or (self._shared and not request.shared):
                return
            if request.shared:
                if not self._shared:
                    self._since = self._clock()
                for owner in request.owners:
                    self._shared[owner] = None
                if self._groups.get(priority) is request:
                    del self._groups[priority]
            else:
                self._exclusive = request.owners[0]
                self._since = self._clock()
            queue.popleft()
            if not queue:
                del self._queues[priority]
                del self._priorities[0]
            for owner in request.owners:
                del self._waiting[owner]
            request.granted = True
            request.wakeup.notify_all()
            if request.callbacks:
                for callback in request.callbacks.values():
                    _GRANTS.put(functools.partial(callback, None))

    def _withdraw_unlocked(self, request: _Request, owner: Hashable) -> None:
        """Take ``owner`` out of the queue (a sharer leaves its group only)."""
        if self._waiting.pop(owner, None) is None:
            return  # the lock was deleted and the queue cleared
        request.owners.remove(owner)
        if request.callbacks:
            request.callbacks.pop(owner, None)
        if request.owners:
            return
        priority = request.priority
        queue = self._queues[priority]
        queue.remove(request)
        if self._groups.get(priority) is request:
            del self._groups[priority]
        if not queue:
            del self._queues[priority]
            self._priorities.remove(priority)
        self._grant_unlocked()  # the one who left may have been blocking the head


# -- the lock manager ---------------------------------------------------------------------


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


class LockRequest:
    """An asynchronous, all-or-nothing request for locks at one level (``LockManager.request``).

    ``granted`` turns True once every name is held; ``error`` is set if a lock
    was deleted while waited for (then nothing is held). ``cancel()``
    withdraws a request that is not complete.
    """

    __slots__ = (
        "_canceled",
        "_create",
        "_lvl",
        "_manager",
        "_mutex",
        "_names_held",
        "_on_grant",
        "_plan",
        "_remade",
        "_taken",
        "_waiting_on",
        "error",
        "granted",
        "level",
        "names",
        "owner",
        "priority",
        "shared",
    )

    def __init__(
        self,
        manager: LockManager,
        lvl: _Level,
        names: tuple[str, ...] | None,
        shared: bool,
        priority: int,
        owner: Hashable,
        on_grant: Callable[[LockRequest], None],
        create: bool = False,
    ) -> None:
        self._manager = manager
        self._lvl = lvl
        self.level = lvl.name
        self.names = names
        self.shared = shared
        self.priority = priority
        self.owner = owner
        self._on_grant = on_grant
        self.granted = False
        self.error: LockError | None = None
        # Made only when the request has to queue, i.e. when a grant can come from the
        # dispatcher thread; before that only the owner's thread sees the request.
        self._mutex: threading.Lock | None = None
        self._canceled = False
        self._names_held = False
        self._plan: list[tuple[str, SharedLock]] | None = None
        self._create = create
        self._remade = 0  # how many times it made names that vanished before it took them
        self._taken: dict[str, SharedLock] = {}
        self._waiting_on: SharedLock | None = None

    def __repr__(self) -> str:
        names = "ALL" if self.names is None else ",".join(self.names)
        return f"<LockRequest {self.level}:{names} owner={self.owner!r} granted={self.granted}>"

    def cancel(self) -> bool:
        """Withdraw: True if withdrawn (nothing it took is still held), False if already granted.

        After False the owner holds the locks and releases them with ``LockManager.release``.
        """
        return self._manager._cancel(self)

    def waiting_on(self) -> LockStatistics | None:
        """The lock the request is queued in right now, or None.

        For a request that makes names (``create=True``) this may be the level's
        names lock, named ``<level>:ALL``, held shared by whoever holds ALL there.
        """
        lock = self._waiting_on
        return None if lock is None else lock.statistics()

    def _lock_granted(self, error: LockError | None) -> None:
        """The lock this request queued for was granted, or deleted (dispatcher thread)."""
        self._manager._step_granted(self, error)


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
        self._levels: dict[str, _Level] = {}
        for index, level in enumerate(names):
            names_lock = SharedLock(f"{level}:ALL", clock=clock) if index else None
            self._levels[level] = _Level(index, level, names_lock)
        self._order = tuple(self._levels.values())
        self._big = self._order[0]
        self._big.locks = {self._big.name: SharedLock(self._big.name, clock=clock)}
        self._clock = clock
        self._holdings: dict[Hashable, _Holdings] = {}

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(level.name for level in self._order)

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
                locks[name] = SharedLock(f"{lvl.name}:{name}", clock=self._clock)
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


# -- lock attempt timeouts ----------------------------------------------------------------


def lock_attempt_timeouts(
    min_s: float, max_s: float, total_s: float, *, seed: int | None = None
) -> Iterator[float]:
    """Yield growing timeouts for successive lock attempts, Ganeti's curve.

    In units of ``min_s``: t0 = 1, t(i+1) = clamp((t(i) * 1.05) ** 1.25, 1, max_s / min_s).
    Values are yielded while the sum of those already yielded is below ``total_s``
    (so the sum reaches ``total_s`` with the last one). Each yielded value carries
    +-5% jitter from ``random.Random(seed)``; the recurrence runs on the exact values.
    ``(1, 15, 1800)`` gives Ganeti's 130 attempts, ``(1, 5, 30)`` gives 12.
    """
    if not 0 < min_s <= max_s or total_s <= 0:
        raise ValueError(
            f"need 0 < min_s <= max_s and total_s > 0, not {min_s!r}, {max_s!r}, {total_s!r}"
        )
    rng = random.Random(seed)
    timeout, total = min_s, 0.0
    while total < total_s:
        yield timeout * (1 + rng.uniform(-0.05, 0.05))
        total += timeout
        timeout = min(max(min_s * ((timeout / min_s) * 1.05) ** 1.25, min_s), max_s)
