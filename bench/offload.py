"""What it costs an event loop to run a call on another thread, by the way it is done.

Eight coroutines each run ``--calls``/8 trivial calls, one after the other, on
another thread, under uvloop (as the daemon runs): through anyio's thread pool
(``anyio.to_thread.run_sync``, what FastAPI does for a plain ``def``
endpoint), ``loop.run_in_executor`` with a ThreadPoolExecutor of 1 and of 4
threads, and jobplane's ``Offload`` (4 threads; ``http/offload.py``), against
calling inline. Reports CPU and wall-clock microseconds per call, the median
of ``--rounds`` rounds. Prints JSON. Usage:
    .venv/bin/python bench/offload.py [--calls 8000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio.to_thread
import uvloop

from jobplane.http.offload import Offload

CLIENTS = 8


def work(value: int) -> int:
    return value + 1


async def one_round(hop: Callable[[int], Awaitable[int]], calls: int) -> tuple[float, float]:
    async def client(count: int) -> None:
        for index in range(count):
            await hop(index)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(calls // CLIENTS) for _ in range(CLIENTS)))
    done = (calls // CLIENTS) * CLIENTS
    return (time.process_time() - cpu) / done * 1e6, (time.perf_counter() - wall) / done * 1e6


async def measure(calls: int, rounds: int) -> dict[str, dict[str, float]]:
    loop = asyncio.get_running_loop()
    one = concurrent.futures.ThreadPoolExecutor(1)
    four = concurrent.futures.ThreadPoolExecutor(4)
    offload = Offload()

    async def inline(value: int) -> int:
        return work(value)

    hops: dict[str, Callable[[int], Awaitable[int]]] = {
        "inline (no thread)": inline,
        "anyio.to_thread.run_sync": lambda v: anyio.to_thread.run_sync(work, v),
        "run_in_executor, 1 thread": lambda v: loop.run_in_executor(one, work, v),
        "run_in_executor, 4 threads": lambda v: loop.run_in_executor(four, work, v),
        "Offload, 4 threads": lambda v: offload.run(work, v),
    }
    results = {}
    try:
        for name, hop in hops.items():
            await one_round(hop, calls)  # warm up: threads started
            samples = [await one_round(hop, calls) for _ in range(rounds)]
            results[name] = {
                "cpu_us_per_call": round(statistics.median(s[0] for s in samples), 1),
                "wall_us_per_call": round(statistics.median(s[1] for s in samples), 1),
            }
    finally:
        one.shutdown()
        four.shutdown()
        offload.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=8_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke run: few calls, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 4 * CLIENTS, 1
    if args.calls < CLIENTS or args.rounds < 1:
        parser.error(f"--calls must be at least {CLIENTS} and --rounds at least 1")
    load = os.getloadavg()[0]
    results = uvloop.run(measure(args.calls, args.rounds))
    print(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average_1min_at_start": round(load, 2),
                },
                "parameters": {"calls": args.calls, "rounds": args.rounds, "clients": CLIENTS},
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
