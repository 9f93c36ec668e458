"""``Client`` and ``AsyncClient``: the HTTP API from Python, as ``JobQueue`` is embedded.

Both have ``JobQueue``'s method names and meanings (``submit``, ``get``,
``list``, ``wait``, ``wait_for_change``, ``cancel``, ``change_priority``,
``explain``, ``archive``, ``status`` ...), return the typed answers of
``jobplane.models`` (parsed with the models the daemon documents its answers
with), and raise the classes of ``jobplane.errors`` that an embedded
``JobQueue`` raises for the same mistake, plus ``DaemonUnavailable`` when
the daemon cannot be reached and ``WaitTimeout`` when ``wait`` gives up.

Connection errors are retried with exponential back-off and jitter
(tenacity): a call that never reached the daemon (connection refused or
timed out) always, and one that may have reached it (the connection broke
before the answer) only if repeating it is harmless, which is every call but
the submits. Answers are never retried: a 503 (queue full, drained, store
failing) is raised at once. See ``docs/client.md``.
"""

from __future__ import annotations

from .aio import AsyncClient as AsyncClient
from .base import DEFAULT_URL as DEFAULT_URL
from .base import ERRORS as ERRORS
from .sync import Client as Client

__all__ = ["DEFAULT_URL", "ERRORS", "AsyncClient", "Client"]
