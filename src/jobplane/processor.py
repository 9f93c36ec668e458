"""Where the processor used to live: its names, re-exported from ``jobplane.engine``.

The processor is split by concept under ``engine/`` (docs/design/engine.md,
"Where each concept lives"); import from there in new code.
"""

from __future__ import annotations

from .engine.processor import CRASHED as CRASHED
from .engine.processor import DEFAULT_LOCK_TIMEOUTS as DEFAULT_LOCK_TIMEOUTS
from .engine.processor import PRECEDING_FAILED as PRECEDING_FAILED
from .engine.processor import RETRY_FIRST_S as RETRY_FIRST_S
from .engine.processor import RETRY_MAX_S as RETRY_MAX_S
from .engine.processor import LockTimeouts as LockTimeouts
from .engine.processor import Observer as Observer
from .engine.processor import Processor as Processor

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
