"""The web dashboard: static files served by the HTTP app at ``/``.

The page (``static/index.html``) loads ES modules from ``/static/`` and talks
to the ``/v1`` API with the user's token; it has no server-side state and
needs no build step. Third-party code is vendored under ``static/vendor/``
(see ``static/vendor/manifest.json`` and ``docs/dashboard.md``).

The files hold no data, so they are served without a token; every piece of
data comes from the API, which checks the token as usual. The page is sent
with a Content-Security-Policy that allows scripts from this origin only
(plus the page's one inline import map, by its hash).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
_IMPORT_MAP = re.compile(rb'<script type="importmap">(.*?)</script>', re.DOTALL)


def content_security_policy(page: bytes) -> str:
    """The page's policy: this origin only; the inline import map allowed by its hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _IMPORT_MAP.findall(page)
    )
    return (
        "default-src 'self'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class _StaticFiles(StaticFiles):
    """Static files that browsers revalidate (by ETag) so an upgrade shows at once."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount(app: FastAPI) -> None:
    """Serve the dashboard page at ``/`` and its files under ``/static/``."""
    page = (STATIC / "index.html").read_bytes()
    headers = {
        "Content-Security-Policy": content_security_policy(page),
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    app.add_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount("/static", _StaticFiles(directory=STATIC), name="dashboard")


__all__ = ["STATIC", "content_security_policy", "mount"]
