"""Shared locks and the lock manager (moved here from ``locking.py``)."""

from .manager import *  # noqa: F403
from .manager import __all__ as __all__
from .manager import _AllNames as _AllNames
from .manager import _Mutex as _Mutex
