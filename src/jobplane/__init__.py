"""jobplane: a persistent job queue with priorities, a priority worker pool and locks.

``Client``, ``JobQueue`` and ``JobplaneError`` are imported on first use, so a
program that needs only one of them (the command line needs only the client)
does not pay for importing the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .client import Client as Client
    from .errors import JobplaneError as JobplaneError
    from .queue import JobQueue as JobQueue

_LAZY = {"Client": ".client", "JobQueue": ".queue", "JobplaneError": ".errors"}

__all__ = ["Client", "JobQueue", "JobplaneError", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jobplane' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
