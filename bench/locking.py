"""Benchmark jobplane.locking; prints one JSON object.

Uncontended figures are the best of several rounds of back-to-back
acquire+release pairs; ``threading.Lock`` is the floor for comparison.
The contended run has 4 threads take random locks out of 100 at random
priorities (a quarter of them shared, each held across a CPU yield) and
counts grants per second and how often a thread had to wait.
The manager-from-threads run does what the job processor does per op (the
big lock shared, maybe one inner lock shared, then release) from 1 and 4
threads; 4 threads should keep about 1 thread's rate, with context switches
in the hundreds: thousands mean the threads convoy on a mutex.

``--quick`` is a smoke run for the tests (seconds, not figures): one
round of a few thousand pairs.

Run: ``.venv/bin/python bench/locking.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import threading
import time
from collections.abc import Callable

from jobplane.locking import LockManager, SharedLock

ROUNDS = 5
PAIRS = 200_000
QUICK_PAIRS = 5_000


def best_rate(run: Callable[[int], None], count: int, rounds: int = ROUNDS) -> float:
    """Operations per second of ``run(count)``, best of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run(count)
        best = min(best, time.perf_counter() - start)
    return count / best


def threading_lock_pairs(count: int) -> None:
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release
    for _ in range(count):
        acquire()
        release()


def shared_lock_pairs(shared: bool, owner: object | None) -> Callable[[int], None]:
    def run(count: int) -> None:
        lock = SharedLock("bench")
        acquire, release = lock.acquire, lock.release
        for _ in range(count):
            acquire(shared, None, 0, owner)
            release(owner)

    return run


def manager_ten_names(count: int) -> None:
    mgr = LockManager(["cluster", "node"])
    names = [f"n{i}" for i in range(10)]
    mgr.add("node", names)
    mgr.acquire("cluster", ["cluster"], shared=True, owner="job")
    for _ in range(count):
        mgr.acquire("node", names, owner="job")
        mgr.release("node", owner="job")


def contended(threads: int = 4, locks: int = 100, per_thread: int = 50_000) -> dict[str, float]:
    """``threads`` threads take random locks out of ``locks`` at random priorities.

    Each holder yields the CPU while holding its lock (standing in for work that
    releases the GIL), so other threads really do run into held locks. A failed
    try (timeout=0) followed by a queued acquire counts as one wait.
    """
    pool = [SharedLock(f"node:n{i}") for i in range(locks)]
    start_line = threading.Barrier(threads + 1)
    waits = [0] * threads

    def work(seed: int) -> None:
        rng = random.Random(seed)
        picks = [
            (rng.choice(pool), rng.random() < 0.25, rng.randint(-20, 19)) for _ in range(per_thread)
        ]
        start_line.wait()
        for lock, shared, priority in picks:
            if not lock.acquire(shared, 0, priority, seed):
                waits[seed] += 1
                lock.acquire(shared, None, priority, seed)
            os.sched_yield()
            lock.release(seed)

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    start_line.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    grants = threads * per_thread
    return {
        "grants_per_s": round(grants / elapsed),
        "waited_fraction": round(sum(waits) / grants, 4),
    }


def _no_grant_expected(request: object) -> None:
    raise AssertionError("free locks are granted at once, without a callback")


def _job_ops(mgr: LockManager, mode: str, k: int, count: int, start: threading.Barrier) -> None:
    """What the job processor does around ``count`` ops of thread ``k``, one owner per op."""
    start.wait()
    for i in range(count):
        owner = (k, i)
        if mode == "acquire":
            mgr.acquire("cluster", ["cluster"], shared=True, owner=owner)
        else:
            mgr.request(
                "cluster", ["cluster"], shared=True, owner=owner, on_grant=_no_grant_expected
            )
        if mode == "two_levels":
            node = [f"n{(k * 7 + i) % 8}"]
            mgr.request("node", node, shared=True, owner=owner, on_grant=_no_grant_expected)
            mgr.release("node", owner=owner)
        mgr.release("cluster", owner=owner)


def manager_from_threads(
    mode: str, threads: int, pairs: int = 20_000, rounds: int = ROUNDS
) -> dict[str, float]:
    """``threads`` threads run ``pairs`` ops (take+release) through one manager, an owner each.

    Modes: ``request`` (``request`` the big lock shared, ``release``), ``acquire`` (the
    same with the blocking ``acquire``), ``two_levels`` (the big lock and one of 8 node
    locks, both shared, by ``request``). Median and slowest of ``rounds`` runs; voluntary
    context switches of the whole process (all threads) during the slowest.
    """
    runs: list[tuple[float, int]] = []
    for _ in range(rounds):
        mgr = LockManager(["cluster", "node"])
        mgr.add("node", [f"n{i}" for i in range(8)])
        start = threading.Barrier(threads + 1)
        workers = [
            threading.Thread(target=_job_ops, args=(mgr, mode, k, pairs // threads, start))
            for k in range(threads)
        ]
        for worker in workers:
            worker.start()
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
        start.wait()
        began = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - switches
        runs.append((pairs / elapsed, switches))
    slowest = min(runs)
    return {
        "pairs_per_s": round(statistics.median(rate for rate, _ in runs)),
        "slowest_pairs_per_s": round(slowest[0]),
        "voluntary_context_switches_in_slowest": slowest[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: seconds, not figures")
    quick = parser.parse_args().quick
    # --quick: one round of a few thousand pairs
    rounds, pairs = (1, QUICK_PAIRS) if quick else (ROUNDS, PAIRS)
    manager_pairs, thread_pairs = (QUICK_PAIRS // 10, QUICK_PAIRS) if quick else (20_000, 20_000)
    floor = best_rate(threading_lock_pairs, pairs, rounds)
    rates = {
        "exclusive_owner_given": best_rate(shared_lock_pairs(False, "job-1"), pairs, rounds),
        "shared_owner_given": best_rate(shared_lock_pairs(True, "job-1"), pairs, rounds),
        "exclusive_owner_thread": best_rate(shared_lock_pairs(False, None), pairs, rounds),
        "shared_owner_thread": best_rate(shared_lock_pairs(True, None), pairs, rounds),
    }
    manager = best_rate(manager_ten_names, manager_pairs, rounds)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "quick": quick,
        "rounds": rounds,
        "uncontended_pairs": pairs,
        "threading_lock": {"pairs_per_s": round(floor), "us_per_pair": round(1e6 / floor, 3)},
        "shared_lock_uncontended": {
            name: {"pairs_per_s": round(rate), "us_per_pair": round(1e6 / rate, 3)}
            for name, rate in rates.items()
        },
        "manager_acquire_10_names": {
            "acquire_release_per_s": round(manager),
            "us_per_acquire_release": round(1e6 / manager, 2),
        },
        "contended_4_threads_100_locks": contended(
            per_thread=QUICK_PAIRS // 5 if quick else 50_000
        ),
        f"manager_from_threads_{thread_pairs}_pairs": {
            f"{mode}_{threads}_thread{'s' if threads > 1 else ''}": manager_from_threads(
                mode, threads, thread_pairs, rounds
            )
            for mode in ("request", "acquire", "two_levels")
            for threads in (1, 4)
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
