"""Throughput of the HTTP API: a real ``jobplane serve`` daemon, concurrent clients.

Each run starts a fresh daemon (``python -m jobplane serve``, SQLite in a
temporary directory, durability normal, ``--workers`` workers) as a
subprocess, waits for ``/healthz``, and has ``--clients`` clients (threads,
each its own ``jobplane.Client``, or processes with ``--processes``) submit
single-op ``test.noop`` jobs together:

* single: one ``POST /v1/jobs`` per job (``--jobs`` jobs in all);
* batch: ``POST /v1/jobs/batch`` of ``--batch`` jobs (``--batch-jobs`` in all).

Each submission mode runs twice:

* workers running: the workers run jobs while they are being submitted;
  end-to-end = from the first submit until every job is final;
* workers held: ``--workers`` ``test.delay`` jobs at priority high occupy every
  worker first, so submissions only queue; then the holders are canceled and
  "drain only" = from then until every job is final. (``PUT /v1/drain`` does
  not pause workers: a drained queue refuses submissions.)

"Every job is final" is seen by a long poll (``/v1/jobs/{id}/wait``) on the
last job submitted, then ``GET /v1/jobs?status=<unfinished>&limit=1`` every
50 ms until it lists none. (Polling ``GET /v1/status`` instead would slow the
daemon down: with 40,000 jobs queued it costs about 50 ms of the daemon's time.)

The daemon is stopped (SIGTERM, then SIGKILL after a timeout) after every
run, also on errors and Ctrl-C. ``--quick`` is a smoke run for the tests
(seconds, not figures): 100 and 400 jobs, one daemon for all four runs.
Prints one JSON object. Usage:
    .venv/bin/python bench/http_api.py [--jobs 4000] [--batch-jobs 40000] [--clients 4]
                                   [--batch 100] [--workers 4] [--processes] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from jobplane.client import Client
from jobplane.errors import JobplaneError

NOOP_JOB = {"ops": [{"op": "test.noop"}]}
UNFINISHED = ("queued", "waiting", "running", "canceling")
POLL_INTERVAL = 0.05
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
FINISH_TIMEOUT = 600.0
BARRIER_TIMEOUT = 60.0
HOLD_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Daemon:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True, slots=True)
class ClientRun:
    """What one client did: its submit calls between ``start`` and ``end`` (perf_counter)."""

    start: float
    end: float
    jobs: int
    calls: int
    cpu_s: float
    last_id: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running_daemon(directory: Path, name: str, workers: int) -> Iterator[Daemon]:
    """A fresh daemon on its own database and port; stopped when the block ends."""
    port = free_port()
    log = directory / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    command = [
        *(sys.executable, "-m", "jobplane", "serve"),
        *("--db", f"sqlite:///{directory / name}.db"),
        *("--port", str(port), "--workers", str(workers)),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    daemon = Daemon(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_healthy(daemon)
        yield daemon
    finally:
        stop(daemon)


def wait_healthy(daemon: Daemon) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise RuntimeError(f"the daemon exited early:\n{daemon.log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{daemon.url}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(f"the daemon did not answer /healthz within {START_TIMEOUT} s")


def stop(daemon: Daemon) -> None:
    """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT (or we are interrupted)."""
    process = daemon.process
    try:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT)


# -- the clients -----------------------------------------------------------------------------

_barrier: Any = None


def _set_barrier(barrier: Any) -> None:
    global _barrier
    _barrier = barrier


def client_run(url: str, sizes: list[int], barrier: Any = None) -> ClientRun:
    """Submit one call per entry of ``sizes``: a single job for 1, else a batch of that size."""
    barrier = barrier if barrier is not None else _barrier
    with Client(url, timeout=60.0) as client:
        try:
            client.status()  # opens the connection before the clock starts
        except BaseException:
            barrier.abort()
            raise
        barrier.wait(BARRIER_TIMEOUT)
        cpu = time.process_time()
        start = time.perf_counter()
        last_id = 0
        for size in sizes:
            if size == 1:
                last_id = client.submit(NOOP_JOB["ops"])
            else:
                last_id = client.submit_many([NOOP_JOB] * size)[-1]
        end = time.perf_counter()
        return ClientRun(start, end, sum(sizes), len(sizes), time.process_time() - cpu, last_id)


def plans(jobs: int, clients: int, batch: int) -> list[list[int]]:
    """Split ``jobs`` over ``clients``, each share in calls of ``batch`` jobs (the last smaller)."""
    result = []
    for index in range(clients):
        share = jobs // clients + (1 if index < jobs % clients else 0)
        result.append([min(batch, share - first) for first in range(0, share, batch)])
    return result


def submit_all(url: str, work: list[list[int]], processes: bool) -> list[ClientRun]:
    """Run one client per plan at once; returns when every client is done."""
    executor: Executor
    if processes:
        context = multiprocessing.get_context("spawn")
        barrier: Any = context.Barrier(len(work))
        executor = ProcessPoolExecutor(
            len(work), mp_context=context, initializer=_set_barrier, initargs=(barrier,)
        )
        calls = [executor.submit(client_run, url, sizes) for sizes in work]
    else:
        barrier = threading.Barrier(len(work))
        executor = ThreadPoolExecutor(len(work), thread_name_prefix="bench-client")
        calls = [executor.submit(client_run, url, sizes, barrier) for sizes in work]
    try:
        return [call.result(FINISH_TIMEOUT) for call in calls]
    finally:
        # on an error the daemon is stopped next, so clients still submitting fail fast
        executor.shutdown(wait=False, cancel_futures=True)


# -- the runs ----------------------------------------------------------------------------------


def wait_all_final(client: Client, last_id: int) -> float:
    """Wait until every job is final; the perf_counter time it was seen.

    Jobs of one priority run in submission order, so the last job is about the
    last to finish: wait for it without polling, then poll for stragglers.
    """
    deadline = time.monotonic() + FINISH_TIMEOUT
    client.wait_final(last_id, timeout=FINISH_TIMEOUT)
    while client.list(status=UNFINISHED, limit=1)["jobs"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the jobs were not final within {FINISH_TIMEOUT} s")
        time.sleep(POLL_INTERVAL)
    return time.perf_counter()


def hold_workers(client: Client, workers: int) -> list[int]:
    """Occupy every worker with a cancelable ``test.delay``; their ids once all run."""
    hold = [{"op": "test.delay", "params": {"duration": HOLD_SECONDS}}]
    ids = [client.submit(hold, priority="high") for _ in range(workers)]
    deadline = time.monotonic() + START_TIMEOUT
    while client.status()["jobs_by_status"].get("running", 0) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError("the holding jobs did not all start")
        time.sleep(POLL_INTERVAL)
    return ids


def release(client: Client, ids: list[int]) -> None:
    for job_id in ids:
        client.cancel(job_id)


def release_quietly(client: Client, ids: list[int]) -> None:
    """Cancel what still holds a worker before stopping the daemon, after an error."""
    with contextlib.suppress(JobplaneError):
        release(client, ids)


def measure(
    daemon: Daemon,
    *,
    jobs: int,
    clients: int,
    batch: int,
    workers: int,
    held: bool,
    processes: bool,
) -> dict[str, Any]:
    """One run on ``daemon``: submit ``jobs`` noop jobs from ``clients`` clients."""
    with Client(daemon.url) as control:
        holders = hold_workers(control, workers) if held else []
        try:
            own_cpu = time.process_time()
            cpu_before = daemon_cpu_s(daemon.process.pid)
            runs = submit_all(daemon.url, plans(jobs, clients, batch), processes)
            client_cpu = (
                sum(run.cpu_s for run in runs) if processes else time.process_time() - own_cpu
            )
            start = min(run.start for run in runs)
            submitted = max(run.end for run in runs)
            cpu_submit = daemon_cpu_s(daemon.process.pid)
            if held:
                release(control, holders)
                released = time.perf_counter()
                holders = []
            finished = wait_all_final(control, max(run.last_id for run in runs))
            cpu_after = daemon_cpu_s(daemon.process.pid)
        finally:
            release_quietly(control, holders)
    calls = sum(run.calls for run in runs)
    result: dict[str, Any] = {
        "submission": "single" if batch == 1 else f"batch of {batch}",
        "workers": "held while submitting" if held else "running",
        "jobs": jobs,
        "calls": calls,
        "submit_s": round(submitted - start, 3),
        "submit_jobs_per_s": round(jobs / (submitted - start)),
    }
    if batch > 1:
        result["submit_batches_per_s"] = round(calls / (submitted - start), 1)
    if held:
        result["drain_only_jobs_per_s"] = round(jobs / (finished - released))
    else:
        result["end_to_end_jobs_per_s"] = round(jobs / (finished - start))
    if cpu_before is not None and cpu_submit is not None and cpu_after is not None:
        result["daemon_cpu_s_submitting"] = round(cpu_submit - cpu_before, 2)
        result["daemon_cpu_ms_per_call_submitting"] = round(
            (cpu_submit - cpu_before) * 1000 / calls, 3
        )
        result["daemon_cpu_s_total"] = round(cpu_after - cpu_before, 2)
    result["client_cpu_s_submitting"] = round(client_cpu, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=4_000, help="jobs of the single-submit runs")
    parser.add_argument("--batch-jobs", type=int, default=40_000, help="jobs of the batch runs")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--processes", action="store_true", help="clients as processes")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the daemon of the current run is stopped too
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.quick:
        args.jobs, args.batch_jobs = 100, 400
    if min(args.jobs, args.batch_jobs, args.clients, args.batch, args.workers) < 1:
        parser.error("every number must be at least 1")
    load = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="jobplane-bench-http-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        # --quick: one daemon for every run (starting one takes seconds); else a fresh one each
        shared = (
            stack.enter_context(running_daemon(Path(tmp), "quick", args.workers))
            if args.quick
            else None
        )
        runs = []
        for jobs, batch in ((args.jobs, 1), (args.batch_jobs, args.batch)):
            for held in (False, True):
                name = f"{'single' if batch == 1 else 'batch'}-{'held' if held else 'running'}"
                with (
                    contextlib.nullcontext(shared)
                    if shared
                    else running_daemon(Path(tmp), name, args.workers)
                ) as daemon:
                    runs.append(
                        measure(
                            daemon,
                            jobs=jobs,
                            batch=batch,
                            held=held,
                            clients=args.clients,
                            workers=args.workers,
                            processes=args.processes,
                        )
                    )
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1min_at_start": round(load, 2),
        },
        "parameters": {
            "daemon": f"python -m jobplane serve --workers {args.workers} (SQLite, durability "
            "normal, "
            + (
                "one daemon for every run: --quick, a smoke run, not figures)"
                if args.quick
                else "a fresh daemon and database per run)"
            ),
            "op": "test.noop, one op per job",
            "clients": args.clients,
            "client_kind": "processes" if args.processes else "threads of this process",
            "jobs_single": args.jobs,
            "jobs_batch": args.batch_jobs,
            "batch": args.batch,
            "draining": False,  # a drained queue refuses submissions; it never is here
            "all_final_seen_by": "long poll on the last job, then GET /v1/jobs?status="
            f"<unfinished>&limit=1 every {POLL_INTERVAL * 1000:g} ms until empty",
        },
        "runs": runs,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
