"""Where the processor used to live: its names, re-exported from ``jobplane.engine``.

The processor is split by concept under ``engine/`` (docs/design/engine.md,
"Where each concept lives"); import from there in new code.
"""

from __future__ import annotations

from .engine.commit import RETRY_FIRST_S as RETRY_FIRST_S
from .engine.commit import RETRY_MAX_S as RETRY_MAX_S
from .engine.processor import Processor as Processor
from .engine.state import CRASHED as CRASHED
from .engine.state import Observer as Observer
from .jobs import PRECEDING_FAILED as PRECEDING_FAILED
from .locking import DEFAULT_LOCK_TIMEOUTS as DEFAULT_LOCK_TIMEOUTS
from .locking import LockTimeouts as LockTimeouts

__all__ = [
    "CRASHED",
    "DEFAULT_LOCK_TIMEOUTS",
    "PRECEDING_FAILED",
    "RETRY_FIRST_S",
    "RETRY_MAX_S",
    "LockTimeouts",
    "Observer",
    "Processor",
]
