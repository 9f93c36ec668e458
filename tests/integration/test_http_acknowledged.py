"""A 201 from ``POST /v1/jobs`` means the job is committed: kill -9 right after a burst of them.

Several clients submit single jobs at once (so the daemon gathers them into
shared commits, ``http/submits.py``); the moment enough 201s have come back,
the daemon is killed with SIGKILL, requests still in flight. Opened again,
the database holds every acknowledged job.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from jobplane.stores import open_store

from .http_server import free_port

pytestmark = pytest.mark.slow

JOBPLANE = str(Path(sys.executable).parent / "jobplane")
CLIENTS = 8
ACKNOWLEDGED = 400
START_TIMEOUT = 30.0
BURST_TIMEOUT = 60.0
POLL = 0.05
BODY = b'{"ops": [{"op": "test.noop"}]}'
JSON = {"content-type": "application/json"}


def test_every_job_acknowledged_by_201_is_in_the_database_after_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    url = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    command = [JOBPLANE, "serve", "--db", f"sqlite:///{db}", "--port", url.rsplit(":", 1)[1]]
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    acknowledged: list[int] = []
    mutex = threading.Lock()
    enough = threading.Event()
    killed = threading.Event()

    def submit_until_killed() -> None:
        with httpx.Client(base_url=url, timeout=10.0) as client:
            while not killed.is_set():
                try:
                    answer = client.post("/v1/jobs", content=BODY, headers=JSON)
                except httpx.TransportError:
                    return  # the daemon is gone: this request was never acknowledged
                assert answer.status_code == 201, answer.text
                with mutex:
                    acknowledged.append(answer.json()["id"])
                    if len(acknowledged) >= ACKNOWLEDGED:
                        enough.set()

    clients = [threading.Thread(target=submit_until_killed) for _ in range(CLIENTS)]
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # polling with a timeout: waiting on another process
            assert daemon.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(POLL)
        for client in clients:
            client.start()
        assert enough.wait(BURST_TIMEOUT), "the daemon did not acknowledge jobs in time"
        daemon.send_signal(signal.SIGKILL)  # requests in flight, commits maybe under way
        killed.set()
        assert daemon.wait(10) == -signal.SIGKILL
    finally:
        killed.set()
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
        for client in clients:
            if client.is_alive():
                client.join(15)
    # every answer read, even after the kill, was sent before the daemon died
    store = open_store(f"sqlite:///{db}")
    try:
        stored = {job.id for job in store.list_jobs(archived=None, limit=10**6)}
    finally:
        store.close()
    missing = sorted(set(acknowledged) - stored)
    assert not missing, f"{len(missing)} acknowledged jobs are not in the database: {missing[:10]}"
    assert len(set(acknowledged)) == len(acknowledged), "an id was acknowledged twice"
