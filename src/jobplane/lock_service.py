"""``LockService``: the locks the engine needs, and nothing more.

The engine (processor and queue) talks to locks only through these calls.
Today's in-memory :class:`jobplane.locking.LockManager` is the first
implementation, and its semantics are the contract every other
implementation keeps (``docs/locks.md``): grants in priority order, FIFO
within a priority, levels taken outermost first (so no deadlock), the big
lock, ``ALL`` of a level, shared and exclusive modes, requests that wait
without a thread and can be withdrawn (for timeouts, cancel and
re-prioritisation), and ``on_grant`` called exactly once for a request that
had to wait.

Owners: with several daemons an owner is ``(daemon_id, job_id)``, so the
locks of a lost daemon can be freed together (``docs/design/engine.md``
says how a database-held implementation meets this contract across
daemons).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .locking import LockInfo, LockManager, _AllNames


class LockGrant(Protocol):
    """A request made by :meth:`LockService.request` (``locking.LockRequest``)."""

    @property
    def level(self) -> str: ...

    @property
    def owner(self) -> Hashable: ...

    @property
    def granted(self) -> bool:
        """True once every lock of the request is held."""
        ...

    @property
    def error(self) -> Exception | None:
        """Set, instead of a grant, if a lock of the request was deleted."""
        ...

    def cancel(self) -> bool:
        """Withdraw: True if withdrawn (nothing held), False if it was granted meanwhile."""
        ...


class LockService(Protocol):
    """The lock calls the engine makes (see the module docstring for the contract)."""

    @property
    def levels(self) -> tuple[str, ...]:
        """The levels, outermost first; the first holds only the big lock."""
        ...

    def add(self, level: str, names: Iterable[str], owner: Hashable | None = None) -> None:
        """Make the named locks of ``level`` if they do not exist (locks are made on demand)."""
        ...

    def request(
        self,
        level: str,
        names: Iterable[str] | _AllNames,
        *,
        shared: bool = False,
        priority: int = 0,
        owner: Hashable,
        on_grant: Callable[[LockGrant], None],
    ) -> LockGrant:
        """Ask for one level's locks without blocking; ``on_grant`` once a waiting one is held."""
        ...

    def release(
        self, level: str, names: Iterable[str] | None = None, owner: Hashable | None = None
    ) -> None:
        """Release what ``owner`` holds at ``level`` (or only ``names``)."""
        ...

    def prune(self, level: str, *, older_than: float = 1.0) -> int:
        """Forget idle locks of ``level`` made on demand; returns how many."""
        ...

    def info(self) -> list[LockInfo]:
        """Every lock with its holders and waiters in grant order."""
        ...


def _lock_manager_is_a_lock_service(manager: LockManager) -> LockService:
    """Never called: ``mypy --strict`` checks here that LockManager keeps the protocol."""
    return manager
