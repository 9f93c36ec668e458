"""A full disk under a real daemon: no job is dropped, every job's stored state ends true.

The SQLite file lives on a 2 MiB tmpfs; 2 ms jobs are submitted until the
daemon answers 503, so the store fails at every kind of write the engine
makes (start, end, inserts). Then the tmpfs grows, and every accepted job
must reach its true final state: each ran once and succeeded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobplane import errors
from jobplane.client import Client

from .http_server import free_port
from .test_daemon import start

DEADLINE = 30.0
MAX_SUBMITS = 20_000
CLIENTS = 4
DELAY = {"op": "test.delay", "params": {"duration": 0.002}}


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (tests run as root); ``grow(path)`` makes it 64 MiB."""
    where = tmp_path / "fs"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill_until_refused(url: str) -> tuple[list[int], list[errors.StoreError]]:
    """Submit 2 ms jobs from a few clients at once until each is refused with 503."""
    accepted: list[int] = []
    refusals: list[errors.StoreError] = []
    budget = iter(range(MAX_SUBMITS))

    def client() -> None:
        with Client(url, timeout=30) as c:
            for _ in budget:
                try:
                    accepted.append(c.submit([DELAY]))
                except errors.StoreError as exc:  # 503: the disk is full
                    refusals.append(exc)
                    return

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    return sorted(accepted), refusals


def grow(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(where)], check=True)


def test_a_full_disk_drops_no_job_and_leaves_no_job_running(small_tmpfs: Path) -> None:
    db, port = small_tmpfs / "jobs.db", free_port()
    proc, lines, reader = start(db, port, "--workers", "2")
    try:
        assert proc.poll() is None, "".join(lines)
        url = f"http://127.0.0.1:{port}"
        accepted, refusals = fill_until_refused(url)
        assert refusals, f"{MAX_SUBMITS} jobs fit on a 2 MiB disk"
        assert accepted, "the disk was full before the first job"
        grow(small_tmpfs)
        with Client(url, timeout=30) as c:
            deadline = time.monotonic() + DEADLINE
            finals = {}
            for job_id in accepted:
                left = deadline - time.monotonic()
                try:
                    finals[job_id] = c.wait_final(job_id, timeout=max(left, 0.1))
                except errors.JobStateError:
                    job = c.get(job_id)
                    pytest.fail(
                        f"job {job_id} stayed {job['status']} after the disk grew "
                        f"({len(accepted)} accepted); status: {c.status()}"
                    )
            wrong = {j: f["status"] for j, f in finals.items() if f["status"] != "success"}
            assert wrong == {}, "every accepted job ran once and succeeded"
            assert c.list(status="running")["jobs"] == []

            status = c.status()
            while status["jobs_by_status"]["running"] != status["running_ops"]:
                assert time.monotonic() < deadline, f"running != running_ops: {status}"
                time.sleep(0.05)  # polling a separate process, with a deadline
                status = c.status()
            assert status["jobs_by_status"]["running"] == 0

            # the daemon is healthy again: a new job runs
            assert c.wait_final(c.submit([DELAY]), timeout=30)["status"] == "success"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()
