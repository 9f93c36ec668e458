"""ASGI wrappers around the app: request bodies checked before FastAPI reads them, HEAD.

``BodyCheck`` reads the whole body (it is JSON of at most ``limit`` bytes)
before the app sees the request, and refuses, in the one error shape:

* a body over the limit, declared or streamed (chunked): 413 ``payload_too_large``;
* a body that is not sent as JSON (``Content-Type`` other than
  ``application/json`` or ``application/*+json``, or none): 415
  ``unsupported_media_type``;
* JSON that the parser would choke on or that no response could carry back,
  with what is wrong (400 ``bad_json``): bytes that are not UTF-8, nesting
  deeper than ``MAX_DEPTH`` arrays and objects, an integer of more than
  ``MAX_DIGITS`` digits.

The depth and digit checks look at the raw bytes with the strings taken out,
and only when a cheap count says they could fail (more than ``MAX_DEPTH``
brackets, more than ``MAX_DIGITS`` digits); they are byte operations, about
a millisecond for a MiB. Syntax errors are left to the parser (FastAPI
answers them as ``json_invalid``, which ``errors`` turns into ``bad_json``).

``HeadAsGet`` answers ``HEAD`` wherever ``GET`` is served: the app sees a
``GET``, and the server, which knows the request was ``HEAD``, sends the
headers without the body.
"""

from __future__ import annotations

import re
import sys
from itertools import accumulate

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import errors

MAX_DEPTH = 100
"""Arrays and objects nest at most this deep in a request body."""
MAX_DIGITS = sys.int_info.default_max_str_digits
"""An integer in a body has at most this many digits (Python's limit, 4300)."""

_JSON_TYPES = re.compile(r"application/(?:[\w.+-]+\+)?json\s*(?:;.*)?", re.IGNORECASE)
_DIGITS = b"0123456789"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_NUMBERS = bytes(b if b in b"0123456789.eE+-" else ord(" ") for b in range(256))
"""Keeps the characters of numbers, turns every other byte into a space."""
_STEP = [0] * 256
for _open in b"[{":
    _STEP[_open] = 1
for _close in b"]}":
    _STEP[_close] = -1


class BodyCheck:
    """Read and check each request body before the app does (see the module docstring)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse_size(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse_size(scope, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = _problem(body, headers.get(b"content-type"))
        if problem is not None:
            status, code, text = problem
            await errors.error_response(status, code, text)(scope, _gone, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # blocks until the client disconnects
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse_size(self, scope: Scope, send: Send) -> None:
        response = errors.error_response(
            413, "payload_too_large", f"the request body is larger than {self.limit} bytes"
        )
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, _gone, send)


def _problem(body: bytes, content_type: bytes | None) -> tuple[int, str, str] | None:
    """Why this body is refused before it is parsed: (status, code, message), or None."""
    if not body:
        return None
    media = (content_type or b"").decode("latin-1")
    if not _JSON_TYPES.fullmatch(media):
        sent = f"Content-Type: {errors.cut(media)}" if media else "no Content-Type"
        return (
            415,
            "unsupported_media_type",
            f"the body must be JSON, sent with Content-Type: application/json ({sent} was sent)",
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            400,
            "bad_json",
            f"the body is not valid UTF-8: byte 0x{body[exc.start]:02x} at position "
            f"{exc.start} ({exc.reason})",
        )
    deep = body.count(b"[") + body.count(b"{") > MAX_DEPTH
    long = len(body) - len(body.translate(None, _DIGITS)) > MAX_DIGITS
    if not (deep or long):
        return None
    outside = _outside_strings(body)
    if deep and _depth(outside) > MAX_DEPTH:
        return 400, "bad_json", f"the body is nested deeper than {MAX_DEPTH} levels"
    if long and any(
        len(run) > MAX_DIGITS and run.lstrip(b"-").isdigit()
        for run in outside.translate(_NUMBERS).split()
    ):
        return 400, "bad_json", f"the body has an integer of more than {MAX_DIGITS} digits"
    return None


def _outside_strings(body: bytes) -> bytes:
    """The body without its strings: escaped backslashes and quotes go first, then
    everything between two quotes. (Byte operations only: fast on a whole MiB.)"""
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(plain.split(b'"')[::2])


def _depth(text: bytes) -> int:
    """How deep the arrays and objects of ``text`` (strings removed) nest."""
    brackets = text.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


async def _gone() -> Message:
    return {"type": "http.disconnect"}


class HeadAsGet:
    """Serve ``HEAD`` as ``GET``; the server drops the body of a HEAD answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = dict(scope, method="GET")
        await self.app(scope, receive, send)
