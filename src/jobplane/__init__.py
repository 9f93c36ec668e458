"""jobplane: a persistent job queue with priorities, a priority worker pool and locks."""

from __future__ import annotations

__version__ = "0.1.0"  # before the imports below: the modules read it

from .client import AsyncClient as AsyncClient
from .client import Client as Client
from .errors import JobplaneError as JobplaneError
from .queue import JobQueue as JobQueue

__all__ = ["AsyncClient", "Client", "JobQueue", "JobplaneError", "__version__"]
