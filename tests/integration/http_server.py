"""A real uvicorn server on a free loopback port, in a thread, for the HTTP tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from jobplane.http import TokenStore, create_app
from jobplane.operations import Registry
from jobplane.queue import JobQueue


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_daemon(
    tmp_path: Path,
    *,
    tokens: TokenStore | None = None,
    registry: Registry | None = None,
    fast_paths: bool = True,
    **queue_options: Any,
) -> Iterator[tuple[str, JobQueue]]:
    queue_options.setdefault("workers", 2)
    queue_options.setdefault("lock_timeouts", (0.05, 0.2, 1.0))
    queue = JobQueue.open(f"sqlite:///{tmp_path / 'daemon.db'}", registry=registry, **queue_options)
    port = free_port()
    config = uvicorn.Config(
        create_app(queue, tokens=tokens, fast_paths=fast_paths),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    try:
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert thread.is_alive(), "uvicorn stopped while starting"
            threading.Event().wait(0.01)
        yield f"http://127.0.0.1:{port}", queue
    finally:
        server.should_exit = True
        thread.join(15)
        queue.close()
