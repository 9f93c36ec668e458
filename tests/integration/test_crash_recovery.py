"""kill -9 a process running a queue mid-load: no accepted job is lost, all end consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from jobplane.jobs import FINAL, OpStatus
from jobplane.processor import CRASHED, PRECEDING_FAILED
from jobplane.queue import JobQueue
from jobplane.stores import open_store

from .crash_child import registry

CHILD = Path(__file__).with_name("crash_child.py")


def run_child_until(url: str, accepted: int) -> list[int]:
    """Start the child, collect printed ids until ``accepted`` of them, then kill -9 it."""
    env = {**os.environ, "PYTHONPATH": str(CHILD.parent)}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), url], stdout=subprocess.PIPE, text=True, env=env
    )
    ids: list[int] = []
    enough = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            ids.append(int(line))
            if len(ids) >= accepted:
                enough.set()
        enough.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert enough.wait(60), "the child did not accept jobs in time"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return list(ids)


def check_consistent(job_status: OpStatus, statuses: list[OpStatus]) -> None:
    assert job_status in FINAL
    assert all(s in FINAL for s in statuses)
    if job_status is OpStatus.SUCCESS:
        assert all(s is OpStatus.SUCCESS for s in statuses)


def test_kill_9_loses_no_accepted_job_and_recovery_finishes_all(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    for _round in range(2):
        accepted = run_child_until(url, 300)
        store = open_store(url)
        try:
            for job_id in accepted:
                store.load(job_id)  # raises JobNotFound if an accepted job was lost
            in_flight = store.unfinished()
        finally:
            store.close()
        assert in_flight, "the kill should catch jobs unfinished"
    with JobQueue.open(url, registry=registry(), workers=3, lock_timeouts=(0.01, 0.02, 0.1)) as q:
        crashed = 0
        for job in q.list(limit=10_000, archived=None):
            final = q.wait(job.id, timeout=60)
            statuses = [op.status for op in final.ops]
            check_consistent(final.status, statuses)
            for index, op in enumerate(final.ops):
                if isinstance(op.result, dict) and op.result.get("message") == CRASHED:
                    crashed += 1
                    assert op.op not in ("crash.retry", "test.noop"), "retry_on_crash ops run again"
                    assert all(
                        later.status is OpStatus.ERROR and later.result == PRECEDING_FAILED
                        for later in final.ops[index + 1 :]
                    )
        ids = [job.id for job in q.list(limit=10_000, archived=None)]
        assert ids == sorted(set(ids))
