"""Ops: the registry, its op specs and the built-in ops (moved here from ``operations.py``)."""

from ..locking import ALL as ALL
from .registry import DEFAULT_LEVELS as DEFAULT_LEVELS
from .registry import Handler as Handler
from .registry import LockNeed as LockNeed
from .registry import LockSpec as LockSpec
from .registry import OpCanceled as OpCanceled
from .registry import OpContext as OpContext
from .registry import OpDef as OpDef
from .registry import Registry as Registry
from .registry import SharedNames as SharedNames
from .registry import shared as shared
