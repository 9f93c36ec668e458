"""Job stores: the contract (``base``) and its implementations.

``open_store(url)`` picks the implementation from the URL's scheme:
``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``.
"""

from __future__ import annotations

from ..errors import ValidationError
from .base import Durability, Store
from .records import UNREADABLE, Unreadable

DEFAULT_URL = "sqlite:///./jobplane.db"


def open_store(url: str = DEFAULT_URL, *, durability: Durability = "normal") -> Store:
    """Open (and migrate) the store at ``url``.

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

        return SQLiteStore(url, durability=durability)
    raise ValidationError(f"unknown store scheme {scheme!r} in {url!r}: use sqlite:///path")


__all__ = ["DEFAULT_URL", "UNREADABLE", "Durability", "Store", "Unreadable", "open_store"]
