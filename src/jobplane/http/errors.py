"""One table from error classes to HTTP statuses, and the one error shape.

Every error answer is ``{"error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from .. import errors

logger = logging.getLogger(__name__)

STATUS: dict[type[errors.JobplaneError], int] = {
    errors.ValidationError: 422,
    errors.JobNotFound: 404,
    errors.JobStateError: 409,
    errors.QueueFull: 503,
    errors.QueueDrained: 503,
    errors.StoreError: 503,
    errors.AuthError: 401,
    errors.Forbidden: 403,
    errors.LockError: 409,
}
"""Most specific class first is not needed: the lookup walks each error's MRO."""


def status_of(exc: errors.JobplaneError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers or None
    )


def answer_for(exc: errors.JobplaneError) -> JSONResponse:
    """The answer to a request that failed with ``exc``."""
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status >= 500 and status != 503:
        logger.error("request failed: %s", exc)
    return error_response(status, exc.code, exc.message, **headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the one error shape."""

    @app.exception_handler(errors.JobplaneError)
    async def jobplane_error(request: Request, exc: errors.JobplaneError) -> JSONResponse:
        return answer_for(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return error_response(400, "bad_json", "the request body is not valid JSON")
        text = "; ".join(f"{_location(p['loc'])}: {p['msg']}" for p in problems[:10])
        return error_response(422, "invalid_request", text or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        code = codes.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return error_response(exc.status_code, code, message, **headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error (see the daemon log)")
