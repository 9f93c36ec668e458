"""Instructions per job of a drain, counted by callgrind: a figure the drift does not move.

Wall-clock figures on the development machine move 20-30% from one hour to
the next, more than most changes do. ``valgrind --tool=callgrind`` counts
the instructions a process executes in user space; the count depends on the
code and its input, and only a little on how its threads interleave (the
same run twice differs by well under 1%).

This runs the phased drain of ``bench/jobqueue.py`` under callgrind:
single-op ``test.noop`` jobs submitted with ``submit_many`` of 100 while the
pool is paused, then drained by ``--workers`` workers. It runs it twice,
with ``--base`` jobs and with ``--base + --jobs`` jobs, and reports the
difference per job, so start-up and imports cancel out. Submitting is
counted with the drain.

What it does not count: time in the kernel (system calls, futex waits),
waiting for the GIL or the disk, cache misses. A change that only moves
contention shows in ``bench/jobqueue.py``, not here. Under callgrind the
threads take turns on one core, so group commits batch differently than on
the real machine.

Compare two checkouts back to back, the same way as ``bench/store_saves.py``:
    PYTHONPATH=<other checkout>/src .venv/bin/python bench/instructions.py

``--quick`` is a smoke run for the tests: the drain once, without valgrind
(no figures).

Prints one JSON object. Usage:
    .venv/bin/python bench/instructions.py [--jobs 1000] [--base 300] [--workers 4] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Any

COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")


def drain(jobs: int, workers: int) -> None:
    """Submit ``jobs`` noop jobs with the pool paused, then drain them (the counted part)."""
    from jobplane.queue import JobQueue

    done = threading.Event()
    finished = [0]

    def on_finished(job: Any) -> None:
        finished[0] += 1
        if finished[0] == jobs:
            done.set()

    with tempfile.TemporaryDirectory(prefix="jobplane-bench-") as tmp:
        url = f"sqlite:///{tmp}/drain.db"
        with JobQueue.open(url, workers=workers, max_jobs=jobs + 10, start=False) as q:
            processor: Any = q.processor
            if hasattr(type(processor), "on_finished"):
                processor.on_finished = on_finished
            else:  # a checkout from before the engine issue
                processor._on_finished = on_finished
            for first in range(0, jobs, 100):
                q.submit_many([{"ops": [{"op": "test.noop"}]}] * min(100, jobs - first))
            q.pool.resume()
            if not done.wait(600):
                raise SystemExit(f"the drain of {jobs} jobs did not finish in 600 s")


def counted(jobs: int, workers: int) -> int:
    """Instructions of one whole run of ``drain(jobs, workers)`` under callgrind."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        str(jobs),
        "--workers",
        str(workers),
    ]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    match = COLLECTED.search(run.stderr)
    if run.returncode != 0 or match is None:
        raise SystemExit(f"the run under callgrind failed:\n{run.stderr[-3000:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs counted (the difference)")
    parser.add_argument("--base", type=int, default=300, help="jobs of the run subtracted")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="a smoke run: no valgrind")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        drain(args.child, args.workers)
        return
    result: dict[str, Any] = {
        "python": platform.python_version(),
        "workers": args.workers,
        "quick": args.quick,
    }
    if args.quick:
        drain(50, args.workers)
        result["instructions_per_job"] = None
    else:
        if shutil.which("valgrind") is None:
            raise SystemExit("valgrind is not installed (Debian: apt-get install -y valgrind)")
        if args.jobs < 100 or args.base < 0:
            raise SystemExit("--jobs must be at least 100 and --base at least 0")
        small = counted(args.base, args.workers)
        large = counted(args.base + args.jobs, args.workers)
        result.update(
            jobs=args.jobs,
            base=args.base,
            instructions_base_run=small,
            instructions_large_run=large,
            instructions_per_job=round((large - small) / args.jobs),
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
