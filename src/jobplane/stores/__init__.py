"""Job stores: the contract (``base``) and its implementations.

``open_store(url)`` picks the implementation from the URL's scheme:
``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, and
``memory://`` (a new, empty ``jobplane.testing.InMemoryStore``, for tests).
"""

from __future__ import annotations

import time

from ..errors import ValidationError
from .base import DEFAULT_AGING_INTERVAL, DEFAULT_LEASE_S, Clock, Durability, Store
from .records import UNREADABLE, Unreadable

DEFAULT_URL = "sqlite:///./jobplane.db"


def open_store(
    url: str = DEFAULT_URL,
    *,
    durability: Durability = "normal",
    clock: Clock = time.time,
    lease_s: float = DEFAULT_LEASE_S,
    aging_interval: float = DEFAULT_AGING_INTERVAL,
) -> Store:
    """Open (and migrate) the store at ``url``.

    ``clock`` is the store's wall clock (it decides lease expiry and aging);
    ``lease_s`` and ``aging_interval`` are the schedule settings of
    ``Store.configure``.

    Raises:
        ValidationError: an unknown scheme or a malformed URL.
        StoreLocked: another daemon holds a SQLite store.
        StoreError: the database could not be opened.
    """
    if durability not in ("normal", "full"):
        raise ValidationError(f"durability must be 'normal' or 'full', not {durability!r}")
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ValidationError(f"store URL {url!r} has no scheme: use sqlite:///path/to/jobs.db")
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore(
            url, durability=durability, clock=clock, lease_s=lease_s, aging_interval=aging_interval
        )
    if scheme == "memory":
        from .memory import InMemoryStore

        return InMemoryStore(clock=clock, lease_s=lease_s, aging_interval=aging_interval)
    raise ValidationError(f"unknown store scheme {scheme!r} in {url!r}: use sqlite:///path")


__all__ = ["DEFAULT_URL", "UNREADABLE", "Durability", "Store", "Unreadable", "open_store"]
