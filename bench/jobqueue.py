"""Throughput and latency of the job queue on the SQLite store.

(a) Submit N single-op ``test.noop`` jobs and drain them with 4 workers, for
    durability normal and full, three ways: one ``submit`` per job while the
    workers drain ("concurrent"); one ``submit`` per job with the pool paused,
    then drain ("phased"); ``submit_many`` of 100 with the pool paused, then
    drain. End-to-end = N jobs from the first submit until the last is final.
    ``test.noop`` is ``retry_on_crash``, so it starts without waiting for its
    "running" record; one more row (normal, submit_many) uses ``bench.noop``,
    the same op without ``retry_on_crash``, which waits for it.
(b) With 10,000 ``low`` jobs queued (each a 2 ms ``test.delay``, so the
    backlog lasts), submit one ``high`` job and measure the time from
    ``submit`` returning to its op starting; p50/p99/max over 500 tries
    (over 50, as before, the p99 was the slowest try: nearly always the
    first, which comes as the pool resumes and all four workers start a
    2 ms job at once).

``--quick`` is a smoke run for the tests (seconds, not figures): 200 jobs,
a backlog of 200, 5 tries.

Prints one JSON object. Usage:
    .venv/bin/python bench/jobqueue.py [--jobs 20000] [--backlog 10000] [--tries 500] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pydantic

from jobplane.jobs import FINAL
from jobplane.operations import OpContext, Registry
from jobplane.queue import JobQueue


class MarkParams(pydantic.BaseModel):
    token: int


def _nothing(ctx: OpContext) -> None:
    return None


def drain_run(
    directory: Path,
    jobs: int,
    durability: str,
    *,
    batch: int,
    phased: bool,
    op: str = "test.noop",
) -> dict[str, Any]:
    """Submit ``jobs`` noop jobs (one per call, or ``batch`` per submit_many) and drain them.

    ``phased``: the pool is paused while submitting, then drains the backlog;
    otherwise the 4 workers drain while jobs are still being submitted.
    """
    name = f"drain-{durability}-{batch}-{'phased' if phased else 'concurrent'}-{op}.db"
    url = f"sqlite:///{directory / name}"
    done = threading.Event()
    finished = [0]
    lock = threading.Lock()

    registry = Registry()
    registry.add("bench.noop", _nothing)  # like test.noop, but not retry_on_crash
    with JobQueue.open(
        url,
        registry=registry,
        workers=4,
        durability=durability,
        max_jobs=jobs + 10,
        start=not phased,
    ) as q:

        def on_finished(job: Any) -> None:
            with lock:
                finished[0] += 1
                if finished[0] == jobs:
                    done.set()

        q.processor.on_finished = on_finished
        noop = [{"op": op}]
        start = time.perf_counter()
        if batch == 1:
            for _ in range(jobs):
                q.submit(noop)
        else:
            for first in range(0, jobs, batch):
                q.submit_many([{"ops": noop}] * min(batch, jobs - first))
        submitted = time.perf_counter()
        if phased:
            q.pool.resume()
        assert done.wait(600), "jobs did not finish"
        end = time.perf_counter()
        last = q.list(limit=1, after=jobs - 1)[0]
        assert last.status in FINAL
    result: dict[str, Any] = {
        "durability": durability,
        "op": op,
        "jobs": jobs,
        "submit": "one per call" if batch == 1 else f"submit_many of {batch}",
        "mode": "phased" if phased else "concurrent",
        "submit_per_s": round(jobs / (submitted - start)),
        "end_to_end_jobs_per_s": round(jobs / (end - start)),
    }
    if phased:
        result["drain_only_jobs_per_s"] = round(jobs / (end - submitted))
    return result


def latency_run(directory: Path, backlog: int, tries: int) -> dict[str, Any]:
    url = f"sqlite:///{directory / 'latency.db'}"
    registry = Registry()
    started: dict[int, float] = {}
    events: dict[int, threading.Event] = {i: threading.Event() for i in range(tries)}

    def mark(ctx: OpContext, params: MarkParams) -> None:
        started[params.token] = time.perf_counter()
        events[params.token].set()

    registry.add("bench.mark", mark)
    slow = {"op": "test.delay", "params": {"duration": 0.002}}
    with JobQueue.open(url, registry=registry, workers=4, max_jobs=backlog + tries + 10) as q:
        q.pool.pause()
        for start in range(0, backlog, 500):
            q.submit_many([{"ops": [slow], "priority": "low"}] * min(500, backlog - start))
        q.pool.resume()
        latencies = []
        for token in range(tries):
            q.submit([{"op": "bench.mark", "params": {"token": token}}], priority="high")
            returned = time.perf_counter()
            assert events[token].wait(30)
            latencies.append((started[token] - returned) * 1000)
        queued_after = q.status().jobs_by_status["queued"]
        q.set_drained(True)
        for job in q.list(status="queued", limit=10_000):
            q.cancel(job.id)
    latencies.sort()
    return {
        "backlog_low_jobs": backlog,
        "low_jobs_still_queued_at_end": queued_after,
        "tries": tries,
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 3),
        "max_ms": round(latencies[-1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--tries", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="a smoke run: seconds, not figures")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.backlog, args.tries = 200, 200, 5
    with tempfile.TemporaryDirectory(prefix="jobplane-bench-") as tmp:
        directory = Path(tmp)
        result = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "quick": args.quick,
            "drain": [
                drain_run(directory, args.jobs, durability, batch=batch, phased=phased)
                for durability in ("normal", "full")
                for batch, phased in ((1, False), (1, True), (100, True))
            ]
            + [
                # An op that is not retry_on_crash waits for its "running" record.
                drain_run(directory, args.jobs, "normal", batch=100, phased=True, op="bench.noop")
            ],
            "high_job_latency": latency_run(directory, args.backlog, args.tries),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
