"""``SharedLock``: one lock, exclusive or shared, whose waiters queue in priority order.

The queueing and grant rules are stated in ``jobplane.locking``; the lock's
state is behind its own ``_Mutex``, and methods ending in ``_unlocked`` need it
held.
"""

from __future__ import annotations

import bisect
import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final, Literal, cast

from ..errors import LockError
from ..priorities import check_int
from .dispatcher import DEFAULT_DISPATCHER, GrantCallback, GrantDispatcher
from .mutex import _Mutex

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
        "_grants",
        "_groups",
        "_mutex",
        "_name",
        "_priorities",
        "_queues",
        "_shared",
        "_since",
        "_waiting",
    )

    def __init__(
        self,
        name: str,
        *,
        clock: Callable[[], float] = time.time,
        grants: GrantDispatcher = DEFAULT_DISPATCHER,
    ) -> None:
        self._name = name
        self._clock = clock
        self._grants = grants  # tells asynchronous waiters of their grants
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
                            self._grants.put(functools.partial(callback, error))
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

    def _check_may_ask_unlocked(self, owner: Hashable) -> None:
        """Raise LockError if the lock is deleted, or ``owner`` holds or waits for it already."""
        if self._exclusive is _DELETED:
            raise LockError(f"lock {self._name} was deleted")
        if (self._exclusive is not None and self._exclusive == owner) or owner in self._shared:
            raise LockError(f"{owner!r} already holds lock {self._name} (locks are not re-entrant)")
        if owner in self._waiting:
            raise LockError(f"{owner!r} is already waiting for lock {self._name}")

    def _take_now_unlocked(self, shared: bool, owner: Hashable) -> bool:
        self._check_may_ask_unlocked(owner)
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
        self._check_may_ask_unlocked(owner)
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
                    self._grants.put(functools.partial(callback, None))

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
