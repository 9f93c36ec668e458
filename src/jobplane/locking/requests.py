"""``LockRequest``: an asynchronous, all-or-nothing request for locks at one level.

The manager (``LockManager.request``) makes requests and moves them on; a
request's own state is changed under its ``_mutex`` once it has one (see
``jobplane.locking`` for the lock rules).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from ..errors import LockError
from .shared import LockStatistics, SharedLock

if TYPE_CHECKING:
    from .manager import LockManager, _Level


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
