"""One table from error classes to HTTP statuses, and the one error shape.

Every error answer is ``{"error": {"code": "...", "message": "..."}}``. A
message never repeats more than ``errors.SHOWN`` characters of a quoted value
(whatever raised it), nor runs past ``MAX_MESSAGE`` characters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route

from .. import errors
from ..errors import SHOWN

logger = logging.getLogger(__name__)

MAX_MESSAGE = 1000
_QUOTED = re.compile(r"'(?:[^'\\\n]++|\\.)*+'" r'|"(?:[^"\\\n]++|\\.)*+"')

STATUS: dict[type[errors.JobplaneError], int] = {
    errors.ValidationError: 422,
    errors.JobNotFound: 404,
    errors.JobStateError: 409,
    errors.QueueFull: 503,
    errors.QueueDrained: 503,
    errors.ShuttingDown: 503,
    errors.TooManyWaits: 503,
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
        {"error": {"code": code, "message": _cut_echoes(message)}},
        status_code=status,
        headers=headers or None,
    )


def answer_for(exc: errors.JobplaneError) -> JSONResponse:
    """The answer to a request that failed with ``exc``."""
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status >= 500 and status != 503:
        logger.error("request failed: %s", exc)
    return error_response(status, exc.code, exc.message, **headers)


def cut(text: str) -> str:
    """``text`` (a user's input), cut to ``SHOWN`` characters."""
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}... ({len(text)} characters)"


def _cut_echoes(message: str) -> str:
    """Cut each long quoted value in ``message``, then the message itself."""
    if len(message) <= SHOWN:
        return message

    def shorten(match: re.Match[str]) -> str:
        quoted = match.group()
        if len(quoted) <= SHOWN + 2:
            return quoted
        return f"{quoted[: SHOWN + 1]}...{quoted[-1]} ({len(quoted) - 2} characters)"

    message = _QUOTED.sub(shorten, message)
    return message if len(message) <= MAX_MESSAGE else f"{message[:MAX_MESSAGE]}... (cut)"


def _plain(msg: str) -> str:
    """pydantic's message without its "Value error, " / "Assertion failed, " prefix."""
    return re.sub(r"^(Value error|Assertion failed), ", "", msg)


def _location(loc: tuple[Any, ...]) -> str:
    """Where: ``status``, ``ops[0].params``; not ``query.status`` (the part of the request
    is plain from the field's name)."""
    if len(loc) > 1 and loc[0] in ("query", "path", "body", "header"):
        loc = loc[1:]
    parts = [cut(str(p)) for p in loc]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text


def _plain_routes(routes: Iterable[BaseRoute]) -> Iterator[Route]:
    """The routes, and those of the routers included without a prefix (FastAPI keeps an
    included router as one entry that holds the original router)."""
    for route in routes:
        if isinstance(route, Route):
            yield route
            continue
        included = getattr(getattr(route, "original_router", None), "routes", None)
        if included is not None:
            yield from _plain_routes(included)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first
    route's), and HEAD wherever GET is (``middleware.HeadAsGet``)."""
    methods: set[str] = set()
    for route in _plain_routes(request.app.router.routes):
        if route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _json_problem(problem: Any, body: Any) -> str:
    """What the parser said, and where: line and column in the body."""
    what = str(problem.get("ctx", {}).get("error", "")) or "not valid JSON"
    position = problem["loc"][-1] if problem.get("loc") else None
    if isinstance(body, str) and isinstance(position, int):
        line = body.count("\n", 0, position) + 1
        column = position - (body.rfind("\n", 0, position) + 1) + 1
        return f"the body is not valid JSON: {what} at line {line} column {column}"
    return f"the body is not valid JSON: {what}"


def _parse_failure(cause: BaseException | None) -> str:
    """The message for a body the JSON parser failed on (``middleware`` catches most first)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not valid UTF-8: {cause.reason} at position {cause.start}"
    if isinstance(cause, RecursionError):
        return "the body is nested too deeply"
    if cause is not None:
        return f"the body is not valid JSON: {cause}"
    return "the body is not valid JSON"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the one error shape."""

    @app.exception_handler(errors.JobplaneError)
    async def jobplane_error(request: Request, exc: errors.JobplaneError) -> JSONResponse:
        return answer_for(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        for problem in problems:
            if problem.get("type") == "json_invalid":
                return error_response(400, "bad_json", _json_problem(problem, exc.body))
        text = "; ".join(f"{_location(p['loc'])}: {_plain(p['msg'])}" for p in problems[:10])
        return error_response(422, "invalid_request", text or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        code = codes.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {cut(request.url.path)}"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {cut(request.url.path)}"
        if exc.status_code == 400 and message == "There was an error parsing the body":
            code, message = "bad_json", _parse_failure(exc.__cause__)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return error_response(exc.status_code, code, message, **headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error (see the daemon log)")
