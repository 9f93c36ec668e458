"""The HTTP server of the daemon: uvicorn, with what a server facing clients needs.

* **Bind first** (:func:`bind`): the daemon takes its address before it opens
  the store or recovers a job, so a busy port is found before anything runs.
* **A read timeout**: a client has ``read_timeout`` seconds to send a whole
  request (headers, then body), counted from the connection's opening, or
  from the first byte of the next request on a kept-alive connection; else
  the connection is closed. uvicorn has no such timeout (its keep-alive
  timeout covers the idle time between requests, and the first byte cancels
  it), so headers that never finish would hold a connection for ever.
* **One send per answer**: the writes of one turn of the event loop (an
  answer's head and body) go to the socket together (``_Coalescing``).
* **A connection limit**: a request on a connection beyond ``max_connections``
  open ones is answered 503 ``too_many_connections`` and the connection closed.
  Each open wait holds a connection, so the limit should exceed the waits'.
* **A two-step stop** (:class:`Server`): at the first SIGTERM or SIGINT,
  ``stop`` runs at once on the event loop (the daemon stops starting ops,
  refuses new work and answers its open waits), and the server goes on
  answering until ``stopped`` returns (the running ops are finished and
  recorded); then it stops serving. A second signal stops serving at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..errors import ListenError
from . import errors

logger = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 4000


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``. Raises ListenError (e.g. the port is in use)."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {where}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "the address is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ListenError(f"cannot listen on {where}: {reason}") from None
    return sock


class _Protocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, with a deadline for reading each request."""

    read_timeout = DEFAULT_READ_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Coalescing(transport, self.loop))  # type: ignore[arg-type]
        self._start_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_deadline()

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            logger.debug(
                "closing a connection from %s: no whole request in %g s",
                self.client,
                self.read_timeout,
            )
            self.transport.close()


class _Coalescing:
    """A transport whose writes of one turn of the event loop go out as one ``send``.

    uvicorn writes an answer's status line and headers, then its body, each with
    a ``write``: two system calls, and often two segments the client reads one by
    one. Here writes are gathered and sent once the current callback is done
    (``call_soon``), or as soon as ``GATHER_LIMIT`` bytes are gathered (so a
    large answer meets the real transport's flow control as before); ``close``
    sends what is gathered first. Everything else is the real transport's.
    """

    GATHER_LIMIT = 65536

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._gathered: list[bytes] = []
        self._size = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def write(self, data: bytes) -> None:
        if not self._gathered:
            self._loop.call_soon(self._send)
        self._gathered.append(data)
        self._size += len(data)
        if self._size >= self.GATHER_LIMIT:
            self._send()

    def close(self) -> None:
        self._send()
        self._transport.close()

    def _send(self) -> None:
        if self._gathered:
            data = b"".join(self._gathered)
            self._gathered.clear()
            self._size = 0
            if not self._transport.is_closing():
                self._transport.write(data)


class _ConnectionLimit:
    """Answer 503 to requests on connections beyond the limit, and close them."""

    def __init__(self, app: ASGIApp, connections: set[Any], limit: int) -> None:
        self.app = app
        self.connections = connections
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(self.connections) > self.limit:
            response = errors.error_response(
                503,
                "too_many_connections",
                f"this daemon serves at most {self.limit} connections at once; try again later",
                **{"Connection": "close", "Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Server(uvicorn.Server):
    """uvicorn's server for ``app``, with the daemon's limits and two-step stop.

    Serve with ``run(sockets=[bind(host, port)])``.

    Args:
        read_timeout: seconds a client has to send a whole request.
        max_connections: connections served at once.
        stop: runs on the event loop at the first signal; must not block.
        stopped: blocks, on a thread of its own, until the server may stop serving.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        stop: Callable[[], None],
        stopped: Callable[[], object],
    ) -> None:
        protocol = type("Protocol", (_Protocol,), {"read_timeout": read_timeout})
        super().__init__(uvicorn.Config(app, http=protocol, log_config=None, access_log=False))
        self.config.app = _ConnectionLimit(app, self.server_state.connections, max_connections)
        self._stop = stop
        self._stopped = stopped
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """The signal handler (uvicorn installs it while it serves)."""
        if self._stopping or self._loop is None:
            self.should_exit = True
            return
        self._stopping = True
        self._loop.call_soon_threadsafe(self._begin_stop)

    def _begin_stop(self) -> None:
        logger.info("stopping: no new ops start; running ops finish first")
        try:
            self._stop()
        finally:
            threading.Thread(target=self._stop_when_done, name="jobplane-stopping").start()

    def _stop_when_done(self) -> None:
        try:
            self._stopped()
        except Exception:
            logger.exception("waiting for the running ops failed; stopping now")
        self.should_exit = True
