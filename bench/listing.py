"""Listing jobs for the dashboard: one page at any depth, with each filter.

Fills a SQLite store with N jobs (default 100,000; 99.9 % finished, a few
running, priorities high/normal/low, five op names), then times
``Store.list_jobs`` for a 50-job page: newest first at the top and deep down
(keyset paging with ``before``), oldest first, by a rare status, by a
priority range, by text in an op name that matches often and that matches
nothing (the worst case: every document is read). Median of 20 runs each.

Prints one JSON object. Usage:
    .venv/bin/python bench/listing.py [--jobs 100000] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from jobplane.jobs import Job, OpState, OpStatus
from jobplane.stores import open_store
from jobplane.stores.base import Store

NAMES = ["instance.start", "instance.stop", "node.health", "cluster.verify", "instance.migrate"]
PAGE = 50


def fill(path: Path, count: int) -> None:
    store = open_store(f"sqlite:///{path}")
    rng = random.Random(1)
    try:
        for start in range(0, count, 1000):
            batch = [
                Job(
                    id=0,
                    ops=[
                        OpState(
                            rng.choice(NAMES),
                            {"instance": f"web{n % 50}", "node": f"n{n % 4}"},
                            priority=rng.choice([-10, 0, 0, 0, 10]),
                        )
                    ],
                    received_at=1000.0 + n,
                )
                for n in range(start, min(count, start + 1000))
            ]
            store.insert_jobs(batch, max_unarchived=None)
    finally:
        store.close()
    with sqlite3.connect(path) as conn:  # finish all but the newest 0.1 %, two of them running
        conn.execute("UPDATE jobs SET status = 'success' WHERE id <= ?", (count - count // 1000,))
        conn.execute("UPDATE jobs SET status = 'running' WHERE id IN (?, ?)", (count // 2, count))


def timed(store: Store, runs: int, **query: Any) -> dict[str, float | int]:
    times = []
    found = 0
    for _ in range(runs):
        began = time.perf_counter()
        found = len(store.list_jobs(limit=PAGE, **query))
        times.append((time.perf_counter() - began) * 1000)
    return {"median_ms": round(statistics.median(times), 3), "jobs": found}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a smoke run: seconds, not figures")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.runs = 2_000, 2
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "listing.db"
        began = time.perf_counter()
        fill(path, args.jobs)
        filled = time.perf_counter() - began
        store = open_store(f"sqlite:///{path}")
        try:
            n = args.jobs
            cases = {
                "newest_first_page": {"newest_first": True},
                "newest_first_deep_page": {"newest_first": True, "before": n // 100},
                "oldest_first_page": {},
                "oldest_first_deep_page": {"after": n - n // 100},
                "rare_status_running": {"newest_first": True, "statuses": [OpStatus.RUNNING]},
                "priority_high_band": {"newest_first": True, "priority": (-20, -1)},
                "op_text_common": {"newest_first": True, "op": "migrate"},
                "op_text_no_match": {"newest_first": True, "op": "no-such-op"},
            }
            results = {name: timed(store, args.runs, **query) for name, query in cases.items()}
        finally:
            store.close()
    print(
        json.dumps(
            {
                "benchmark": "listing",
                "jobs": args.jobs,
                "quick": args.quick,
                "page": PAGE,
                "fill_s": round(filled, 1),
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
