"""Throughput of WorkerPool against concurrent.futures.ThreadPoolExecutor.

Runs 100,000 no-op tasks with random priorities in [-20, 19] through 4
workers three ways -- ``WorkerPool.add_task``, ``WorkerPool.submit`` and
``ThreadPoolExecutor(4).submit`` -- and prints one JSON object with tasks per
second for each and the ratios against ThreadPoolExecutor. Each timing covers
queueing every task and waiting until all of them have run; thread start-up
is outside it. Every variant runs ``--rounds`` times (interleaved) and the
best round counts, which damps noise from other processes.

``futures_only`` is not a pool: one thread creates and completes the same
number of Futures. It is the ceiling for any Future-per-task API, so it shows
how much of ``submit``'s (and the executor's) time is the Futures themselves.

``--quick`` is a smoke run for the tests (seconds, not figures): 2,000
tasks, one round.

Usage: .venv/bin/python bench/workerpool.py [--tasks N] [--workers N] [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from jobplane.workerpool import WorkerPool


def noop() -> None:
    """The task: does nothing, so the figures measure the pool alone."""


def run_add_task(priorities: list[int], workers: int) -> float:
    with WorkerPool(workers, name="bench") as pool:
        add = pool.add_task
        start = time.perf_counter()
        for priority in priorities:
            add(noop, priority=priority)
        if not pool.wait_idle(timeout=600):
            raise RuntimeError("the pool did not drain")
        return time.perf_counter() - start


def run_submit(priorities: list[int], workers: int) -> float:
    with WorkerPool(workers, name="bench") as pool:
        submit = pool.submit
        start = time.perf_counter()
        futures = [submit(noop, priority=priority) for priority in priorities]
        if not pool.wait_idle(timeout=600):
            raise RuntimeError("the pool did not drain")
        elapsed = time.perf_counter() - start
    if not all(future.done() for future in futures):
        raise RuntimeError("a Future was left pending")
    return elapsed


def run_executor(priorities: list[int], workers: int) -> float:
    executor = ThreadPoolExecutor(workers)
    warm = [executor.submit(noop) for _ in range(workers * 4)]  # start its threads
    for future in warm:
        future.result()
    submit = executor.submit
    start = time.perf_counter()
    futures = [submit(noop) for _ in priorities]  # no priorities: plain FIFO
    executor.shutdown(wait=True)  # returns once every task has run
    elapsed = time.perf_counter() - start
    if not all(future.done() for future in futures):
        raise RuntimeError("a Future was left pending")
    return elapsed


def run_futures_only(priorities: list[int], workers: int) -> float:
    """No pool, one thread: create, start and complete a Future per task.

    A floor for anything that returns a Future per task (``submit`` and the
    executor alike): Future objects are costly to build and to garbage-collect.
    """
    start = time.perf_counter()
    futures = [Future[None]() for _ in priorities]
    for future in futures:
        future.set_running_or_notify_cancel()
        noop()
        future.set_result(None)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: seconds, not figures")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.rounds = 2_000, 1

    rng = random.Random(42)
    priorities = [rng.randint(-20, 19) for _ in range(args.tasks)]
    variants: dict[str, Callable[[list[int], int], float]] = {
        "add_task": run_add_task,
        "submit": run_submit,
        "thread_pool_executor": run_executor,
        "futures_only": run_futures_only,
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.rounds):
        for label, run in variants.items():
            best[label] = min(best[label], run(priorities, args.workers))

    rate = {label: args.tasks / seconds for label, seconds in best.items()}
    baseline = rate["thread_pool_executor"]
    print(
        json.dumps(
            {
                "benchmark": "workerpool",
                "tasks": args.tasks,
                "workers": args.workers,
                "rounds": args.rounds,
                "quick": args.quick,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "seconds": {label: round(s, 4) for label, s in best.items()},
                "tasks_per_second": {label: round(r) for label, r in rate.items()},
                "ratio_to_executor": {
                    "add_task": round(rate["add_task"] / baseline, 2),
                    "submit": round(rate["submit"] / baseline, 2),
                    "futures_only": round(rate["futures_only"] / baseline, 2),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
