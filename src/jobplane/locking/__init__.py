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

Modules: ``mutex`` (the ``_Mutex``), ``dispatcher`` (the grant dispatcher
thread), ``shared`` (``SharedLock``), ``requests`` (``LockRequest``),
``manager`` (``LockManager``), ``timeouts`` (``lock_attempt_timeouts``, ``LockTimeouts``).
Import the public names from here.
"""

from __future__ import annotations

from ..errors import LockError as LockError
from .dispatcher import GrantCallback as GrantCallback
from .manager import ALL as ALL
from .manager import CREATE_RETRIES as CREATE_RETRIES
from .manager import LockInfo as LockInfo
from .manager import LockManager as LockManager
from .manager import _AllNames as _AllNames
from .mutex import _Mutex as _Mutex
from .requests import LockRequest as LockRequest
from .shared import LockStatistics as LockStatistics
from .shared import Mode as Mode
from .shared import Pending as Pending
from .shared import SharedLock as SharedLock
from .timeouts import DEFAULT_LOCK_TIMEOUTS as DEFAULT_LOCK_TIMEOUTS
from .timeouts import LockTimeouts as LockTimeouts
from .timeouts import lock_attempt_timeouts as lock_attempt_timeouts

__all__ = [
    "ALL",
    "LockError",
    "LockInfo",
    "LockManager",
    "LockRequest",
    "LockStatistics",
    "LockTimeouts",
    "SharedLock",
    "lock_attempt_timeouts",
]
