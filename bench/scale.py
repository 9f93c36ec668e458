"""A million queued jobs: what the store and the job queue cost with a long backlog.

Builds a SQLite database holding N queued ``low`` ``test.noop`` jobs (bulk
``insert_jobs`` in batches of 10,000), then measures:

store (always):
  * build rate, reopen time of the store;
  * latency (p50/p99 over ``--reps`` calls) of ``load``, ``counts``,
    ``oldest_queued``, ``list_jobs(limit=100)``, ``insert_jobs`` of one job,
    ``claim(1)`` + ``save(release=True)``; and from inserting a ``high`` job
    to ``claim`` returning it, behind the backlog.
queue (``--queue``; the daemon claims only what it can start soon):
  * RSS and open (recovery) time of ``JobQueue.open`` on the backlog against
    the same on an empty database;
  * latency of ``submit``, ``get``, ``status``, ``list(100)``;
  * drain throughput: 20,000 jobs from the backlog against 20,000 submitted
    to an empty queue, three rounds alternated (each round opens the queue
    anew); the ratio of the medians;
  * p50/p99/max from ``submit`` of a ``high`` job to its op starting while 4
    workers drain the backlog, over 500 tries (a p99 that is not just the
    slowest try).

Prints one JSON object. Usage:
    .venv/bin/python bench/scale.py [--quick] [--jobs N] [--queue]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic

from jobplane import priorities
from jobplane.activity import OpRun
from jobplane.jobs import Job, OpState, OpStatus
from jobplane.operations import OpContext, Registry
from jobplane.queue import JobQueue
from jobplane.stores.sqlite import SQLiteStore

BATCH = 10_000


def rss_mb() -> float:
    """Resident set size of this process, in MB (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def latency(call: Callable[[], object], reps: int) -> dict[str, float]:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
    }


def low_job(now: float) -> Job:
    return Job(id=0, ops=[OpState("test.noop", {}, priority=priorities.LOW)], received_at=now)


def build(path: Path, jobs: int) -> dict[str, Any]:
    """A database of ``jobs`` queued low jobs, inserted in batches."""
    store = SQLiteStore(f"sqlite:///{path}")
    start = time.perf_counter()
    try:
        left = jobs
        while left:
            size = min(BATCH, left)
            now = time.time()
            store.insert_jobs([low_job(now) for _ in range(size)], max_unarchived=None)
            left -= size
    finally:
        store.close()
    seconds = time.perf_counter() - start
    return {"jobs": jobs, "seconds": round(seconds, 1), "jobs_per_s": round(jobs / seconds)}


def store_figures(path: Path, jobs: int, reps: int) -> dict[str, Any]:
    start = time.perf_counter()
    store = SQLiteStore(f"sqlite:///{path}")
    opened = time.perf_counter() - start
    try:
        daemon = store.register_daemon("bench").daemon_id
        rand = random.Random(7)

        def claim_and_give_back() -> None:
            for job in store.claim(daemon, 1):
                store.save(job, release=True)

        def high_to_claim() -> None:
            job = Job(
                id=0, ops=[OpState("test.noop", {}, priority=priorities.HIGH)], received_at=0.0
            )
            [job_id] = store.insert_jobs([job], max_unarchived=None)
            [claimed] = store.claim(daemon, 1)
            assert claimed.id == job_id, "the high job was not claimed first"
            claimed.ops[0].status = OpStatus.SUCCESS
            store.save(claimed)

        figures = {
            "open_s": round(opened, 3),
            "load": latency(lambda: store.load(rand.randint(1, jobs)), reps),
            "counts": latency(store.counts, reps),
            "oldest_queued": latency(store.oldest_queued, reps),
            "list_100": latency(lambda: store.list_jobs(limit=100), reps),
            "insert_one": latency(
                lambda: store.insert_jobs([low_job(time.time())], max_unarchived=None), reps
            ),
            "claim_1_and_release": latency(claim_and_give_back, reps),
            "insert_high_to_claimed": latency(high_to_claim, reps),
        }
    finally:
        store.close()
    return figures


# -- the job queue -------------------------------------------------------------


class MarkParams(pydantic.BaseModel):
    token: int


def bench_registry(started: dict[int, float], event: threading.Event) -> Registry:
    registry = Registry()

    @registry.op("bench.mark", params=MarkParams, retry_on_crash=True)
    def mark(ctx: OpContext, params: MarkParams) -> None:
        started[params.token] = time.perf_counter()
        event.set()

    return registry


def queue_open(path: Path, registry: Registry) -> tuple[JobQueue, float, float]:
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    queue = JobQueue.open(
        f"sqlite:///{path}", registry=registry, workers=4, start=False, max_jobs=None
    )
    return queue, time.perf_counter() - start, rss_mb() - before


def drain(queue: JobQueue, count: int) -> float:
    """Start the pool and wait until ``count`` ops have run, whichever jobs they were.

    (Not jobs 1 .. count: ``store_figures`` gave some of those back to the
    store, which put them behind the whole backlog.)
    """
    ran = [0]
    done = threading.Event()

    def counted(run: OpRun) -> None:
        ran[0] += 1
        if ran[0] >= count:
            done.set()

    queue.add_run_observer(counted)
    start = time.perf_counter()
    queue.pool.resume()
    if not done.wait(600):
        raise RuntimeError(f"only {ran[0]} of {count} ops ran within 600 s")
    return count / (time.perf_counter() - start)


def drain_round(path: Path, registry: Registry, count: int, *, submit: bool) -> float:
    """Open ``path``, (``submit``: queue ``count`` low noop jobs), drain ``count``; jobs/s."""
    queue, _, _ = queue_open(path, registry)
    try:
        if submit:
            queue.submit_many([{"ops": [{"op": "test.noop"}], "priority": "low"}] * count)
        return drain(queue, count)
    finally:
        queue.close()


def queue_figures(
    path: Path, empty: Path, jobs: int, reps: int, tries: int, drained: int, rounds: int
) -> dict[str, Any]:
    started: dict[int, float] = {}
    event = threading.Event()
    registry = bench_registry(started, event)

    # Open and RSS of an empty queue, before the drains below fill its file.
    queue, empty_open, empty_rss = queue_open(empty, registry)
    queue.close()

    # Drain throughput, the backlog against an empty queue: ``rounds`` pairs,
    # alternated, so that the machine's drift falls on both alike.
    empty_rates, backlog_rates = [], []
    for _ in range(rounds):
        empty_rates.append(drain_round(empty, registry, drained, submit=True))
        backlog_rates.append(drain_round(path, registry, drained, submit=False))

    queue, full_open, full_rss = queue_open(path, registry)
    try:
        figures: dict[str, Any] = {
            "open_s": round(full_open, 2),
            "open_s_empty": round(empty_open, 2),
            "rss_mb": round(full_rss, 1),
            "rss_mb_empty": round(empty_rss, 1),
            "submit": latency(lambda: queue.submit([{"op": "test.noop"}], priority="low"), reps),
            "get": latency(lambda: queue.get(random.randint(1, jobs)), reps),
            "status": latency(queue.status, reps),
            "list_100": latency(lambda: queue.list(limit=100), reps),
            "drained_per_round": drained,
            "drain_jobs_per_s": [round(rate) for rate in backlog_rates],
            "drain_jobs_per_s_empty": [round(rate) for rate in empty_rates],
            "drain_backlog_of_empty": round(
                statistics.median(backlog_rates) / statistics.median(empty_rates), 3
            ),
        }
        # The high job while the 4 workers drain the backlog.
        drain(queue, min(drained, 2_000))
        waits = []
        for token in range(tries):
            event.clear()
            submitted = time.perf_counter()
            queue.submit([{"op": "bench.mark", "params": {"token": token}}], priority="high")
            if not event.wait(30):
                raise RuntimeError("the high job did not start within 30 s")
            waits.append((started[token] - submitted) * 1000)
        waits.sort()
        figures["high_submit_to_start"] = {
            "tries": tries,
            "p50_ms": round(statistics.median(waits), 3),
            "p99_ms": round(waits[min(len(waits) - 1, int(len(waits) * 0.99))], 3),
            "max_ms": round(waits[-1], 3),
        }
    finally:
        queue.close(wait=False)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of both parts: 100,000 jobs, few repetitions",
    )
    parser.add_argument("--jobs", type=int, default=None, help="queued jobs (default 1,000,000)")
    parser.add_argument("--queue", action="store_true", help="also measure the job queue")
    args = parser.parse_args()
    jobs = args.jobs or (100_000 if args.quick else 1_000_000)
    reps = 50 if args.quick else 200
    tries = 20 if args.quick else 500
    drained, rounds = (1_000, 1) if args.quick else (20_000, 3)
    result: dict[str, Any] = {
        "benchmark": "scale",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "queued_jobs": jobs,
    }
    with tempfile.TemporaryDirectory(prefix="jobplane-scale-") as tmp:
        path, empty = Path(tmp) / "backlog.db", Path(tmp) / "empty.db"
        result["build"] = build(path, jobs)
        result["store"] = store_figures(path, jobs, reps)
        if args.queue or args.quick:  # the smoke run covers both parts
            result["queue"] = queue_figures(path, empty, jobs, reps, tries, drained, rounds)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
