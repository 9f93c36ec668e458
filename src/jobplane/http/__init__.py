"""The HTTP API (FastAPI): ``create_app(queue)``, tokens and the bind rule."""

from __future__ import annotations

from .app import create_app as create_app
from .auth import TokenStore as TokenStore
from .auth import check_bind as check_bind

__all__ = ["TokenStore", "check_bind", "create_app"]
