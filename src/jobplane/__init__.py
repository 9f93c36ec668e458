"""jobplane: a persistent job queue with priorities, a priority worker pool and locks."""

from __future__ import annotations

from .errors import JobplaneError as JobplaneError

__version__ = "0.1.0"

__all__ = ["JobplaneError", "__version__"]
