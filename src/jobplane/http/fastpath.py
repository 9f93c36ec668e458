"""``FastPaths``: the ordinary case of the two hottest requests, answered without the framework.

``POST /v1/jobs`` and ``GET /v1/jobs/{id}`` are most of what a busy daemon
serves. Through FastAPI each costs the event loop about 0.5 ms of CPU before
the queue is even called (middleware layers, routing, dependency solving,
body and parameter validation, response encoding: see docs/benchmarks.md),
and the loop, one thread under the GIL, is what limits the daemon. This ASGI
middleware answers the ordinary case of those two requests itself, and hands
every other request, and every request it is not sure about, to FastAPI
untouched (a body it has read is replayed). So:

* It sits inside ``HeadAsGet`` and ``BodyCheck`` (``middleware.py``): a body
  over the limit (declared or chunked), one not sent as JSON, not UTF-8,
  nested too deeply or with an integer of too many digits, is refused there
  before this class sees it, exactly as for every other endpoint; a HEAD
  comes here as a GET and the server drops the answer's body.
* The FastAPI routes remain the definition: same validation (the same pydantic
  models), same answers, and they alone are in the OpenAPI document.
  ``tests/integration/test_http_fastpath.py`` checks that both answer alike.
* Anything unusual goes to FastAPI, which answers with its precise error: a
  content type other than plain ``application/json``, a query string, a body
  that orjson cannot parse or that is not a valid job (or whose priority
  ``to_queue`` refuses), a missing or wrong token (read by ``auth.bearer_token``
  as the routes' ``HTTPBearer`` reads it), a job id that is not a
  plain decimal in range without leading zeros.
* The queue's own refusals (unknown op, bad params, bad priority, queue full
  or drained, shutting down, no such job) are answered here, through the one
  table of ``errors.py``; the call is not repeated.

The queue call itself runs on ``Offload``'s threads, never on the event loop:
a read alone, submits gathered by ``Submits`` (``submits.py``), so that those
arriving together share one hop and one commit. A job is committed before its
201 is sent, as through FastAPI.
"""

from __future__ import annotations

from typing import Any

import orjson
import pydantic
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import errors as jobplane_errors
from ..jobs import MAX_ID
from ..queue import JobQueue
from . import auth
from .errors import answer_for
from .offload import Offload
from .schemas import JobSpec, job_json
from .submits import Submits

_JOBS = "/v1/jobs"
_ONE_JOB = "/v1/jobs/"
_JSON = b"application/json"


class FastPaths:
    """In front of the app: the ordinary ``POST /v1/jobs`` and ``GET /v1/jobs/{id}``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        queue: JobQueue,
        tokens: auth.TokenStore | None,
        offload: Offload,
    ) -> None:
        self.app = app
        self.queue = queue
        self.tokens = tokens
        self.offload = offload
        self.submits = Submits(queue, offload)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("query_string"):
            method, path = scope["method"], scope["path"]
            if method == "POST" and path == _JOBS and self._json_body(scope):
                await self._submit(scope, receive, send)
                return
            if method == "GET" and path.startswith(_ONE_JOB):
                job_id = _job_id(path[len(_ONE_JOB) :])
                if job_id is not None and self._allowed(scope, write=False):
                    await self._get(job_id, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _get(self, job_id: int, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            job = await self.offload.run(self.queue.get, job_id)
        except jobplane_errors.JobplaneError as exc:
            await answer_for(exc)(scope, receive, send)
            return
        await _answer(send, 200, job_json(job))

    async def _submit(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            return  # the client went away: there is nobody to answer
        spec = _job_spec(body) if self._allowed(scope, write=True) else None
        if spec is None:  # FastAPI says what is wrong, or takes what it is unsure of
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            job_id = await self.submits.submit(spec)
        except jobplane_errors.JobplaneError as exc:
            await answer_for(exc)(scope, receive, send)
            return
        await _answer(send, 201, {"id": job_id})

    @staticmethod
    def _json_body(scope: Scope) -> bool:
        """True if the request says, once, that its body is ``application/json``."""
        types = [value for name, value in scope["headers"] if name == b"content-type"]
        return len(types) == 1 and types[0].split(b";", 1)[0].strip().lower() == _JSON

    def _allowed(self, scope: Scope, *, write: bool) -> bool:
        """True if ``auth.check`` allows the request, its token read as the routes read it."""
        token = None
        if self.tokens is not None:
            values = [value for name, value in scope["headers"] if name == b"authorization"]
            if len(values) > 1:
                return False  # FastAPI reads one of them: let it say which
            token = auth.bearer_token(values[0].decode("latin-1") if values else None)
        client = scope.get("client")
        try:
            auth.check_token(self.tokens, token, client[0] if client else None, write=write)
        except jobplane_errors.JobplaneError:
            return False
        return True


def _job_id(text: str) -> int | None:
    if not text.isdigit() or not text.isascii() or text[0] == "0" or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def _job_spec(body: bytes) -> dict[str, Any] | None:
    """The job as the queue takes it, if the body is a valid ``JobBody``; else None."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    try:  # JobSpec is JobBody without its check for NaN and lone surrogates: orjson refuses both
        return JobSpec.model_validate(data).to_queue()
    except (pydantic.ValidationError, jobplane_errors.JobplaneError):
        return None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None if the client disconnects first."""
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that first gives back the body already read, then the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(send: Send, status: int, content: Any) -> None:
    """``content`` as JSON, encoded by orjson (by the standard library what orjson refuses,
    such as integers beyond 64 bits), with the headers Starlette's JSONResponse sends."""
    try:
        body = orjson.dumps(content)
    except orjson.JSONEncodeError:
        body = bytes(JSONResponse(content).body)
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
