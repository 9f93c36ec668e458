"""The API document's pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), offline.

FastAPI's pages load their code from a CDN, so they are blank where the daemon has
no internet. These pages load it from the package instead: Swagger UI and ReDoc
are vendored with the dashboard's code (``dashboard/static/vendor/``, listed with
their licences and SHA-256 in its ``manifest.json``) and served, like it, under
``/static/`` without a token; the pages themselves and ``/openapi.json`` need the
read role (``app.py``).

The bundles name other hosts themselves (ReDoc shows its logo from its CDN), so
each page is sent with a Content-Security-Policy that lets the browser fetch
images, fonts and data from this origin only: nothing leaves the machine.
"""

from __future__ import annotations

from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

VENDOR = "/static/vendor"
FAVICON = "/static/favicon.svg"
TITLE = "jobplane API"
POLICY = "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"


def swagger_page(openapi_url: str) -> HTMLResponse:
    """Swagger UI on the document at ``openapi_url``; no online validator."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=TITLE,
        swagger_js_url=f"{VENDOR}/swagger-ui-dist/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui-dist/swagger-ui.css",
        swagger_favicon_url=FAVICON,
        swagger_ui_parameters={"validatorUrl": None},
    )
    return _guarded(page)


def redoc_page(openapi_url: str) -> HTMLResponse:
    """ReDoc on the document at ``openapi_url``, in the browser's own fonts."""
    page = get_redoc_html(
        openapi_url=openapi_url,
        title=TITLE,
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url=FAVICON,
        with_google_fonts=False,
    )
    return _guarded(page)


def _guarded(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = POLICY
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


__all__ = ["redoc_page", "swagger_page"]
