"""What the SQLite store costs per job, from one thread (no workers, no GIL handoffs).

Inserts ``--jobs`` single-op ``test.noop`` jobs (``insert_jobs`` of 100),
then saves each one twice, waiting (queued -> running, which leaves the
schedule; running -> success), timing the whole ``save`` and the writer's
``execute`` calls inside it; then, on a second store, claims them all with
``claim(--limit)``. Wall µs per job; run it back to back against another
commit (``PYTHONPATH=<its src>``) to compare.

Prints one JSON object. Usage:
    .venv/bin/python bench/store_saves.py [--jobs 10000] [--limit 32] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import tempfile
import time
from typing import Any

from jobplane.jobs import Job, OpState, OpStatus
from jobplane.stores.sqlite import SQLiteStore


class _TimedConnection:
    """The writer connection, timing ``execute``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.seconds, self.calls = conn, 0.0, 0

    def execute(self, *args: Any) -> sqlite3.Cursor:
        start = time.perf_counter()
        try:
            return self.conn.execute(*args)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def _jobs(count: int) -> list[Job]:
    now = time.time()
    return [Job(id=0, ops=[OpState("test.noop", {})], received_at=now) for _ in range(count)]


def saves(directory: str, jobs: int) -> dict[str, Any]:
    store = SQLiteStore(f"sqlite:///{directory}/saves.db")
    try:
        start = time.perf_counter()
        inserted: list[Job] = []
        for _ in range(0, jobs, 100):
            batch = _jobs(100)
            store.insert_jobs(batch, max_unarchived=None)
            inserted += batch
        result: dict[str, Any] = {"insert_us": round((time.perf_counter() - start) / jobs * 1e6, 1)}
        timed = _TimedConnection(store._writer)  # type: ignore[arg-type]
        store._writer = timed  # type: ignore[assignment]
        for status in (OpStatus.RUNNING, OpStatus.SUCCESS):
            timed.seconds, timed.calls = 0.0, 0
            start = time.perf_counter()
            for job in inserted:
                job.ops[0].status = status
                store.save(job)
            result[f"save_{status.value}"] = {
                "save_us": round((time.perf_counter() - start) / jobs * 1e6, 1),
                "execute_us": round(timed.seconds / jobs * 1e6, 1),
                "executes_per_save": round(timed.calls / jobs, 2),
            }
        store._writer = timed.conn
    finally:
        store.close()
    return result


def claims(directory: str, jobs: int, limit: int) -> dict[str, Any]:
    store = SQLiteStore(f"sqlite:///{directory}/claims.db")
    try:
        for _ in range(0, jobs, 1000):
            store.insert_jobs(_jobs(1000), max_unarchived=None)
        daemon = store.register_daemon("bench").daemon_id
        start, taken = time.perf_counter(), 0
        while batch := store.claim(daemon, limit):
            taken += len(batch)
        seconds = time.perf_counter() - start
    finally:
        store.close()
    return {"claimed": taken, "limit": limit, "claim_us": round(seconds / jobs * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 jobs")
    args = parser.parse_args()
    if args.quick:
        args.jobs = 1000
    jobs = max(100, args.jobs // 1000 * 1000)
    with tempfile.TemporaryDirectory(prefix="jobplane-bench-") as tmp:
        result = {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "jobs": jobs,
            **saves(tmp, jobs),
            # main before issue 10 has no claims: compare the saves there
            "claims": claims(tmp, jobs, args.limit) if hasattr(SQLiteStore, "claim") else None,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
