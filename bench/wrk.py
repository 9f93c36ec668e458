"""Requests per second of single HTTP calls, measured with ``wrk``.

For each round a fresh daemon (``python -m jobplane serve --workers 4``,
SQLite in a temporary directory, durability normal; the workers run the
submitted jobs meanwhile) and three ``wrk`` runs against it, one after the
other, each ``--threads`` threads, ``--connections`` connections,
``--duration`` seconds:

* ``POST /v1/jobs`` of one ``test.noop`` job (the body from a Lua script);
* ``GET /v1/jobs/{id}`` of one finished job;
* ``GET /healthz`` (the HTTP stack's floor).

Each answer is counted by status in Lua: a run fails if any answer is not
the expected one (201 or 200), so the figure is of accepted requests. Each
figure is also given per ``GET /healthz`` of the same round (the floor), which
moves less with what else the machine runs. ``--python`` is the interpreter
(of a virtualenv with the code to measure installed) that runs the daemon;
with ``--baseline`` another one (say, of a worktree of the old code) runs a
round before each of ``--python``'s: before, after, before, after ... and the
median of the ratios of the pairs is printed (``after_per_before``).

``wrk`` is not installed by this script: on Debian or Ubuntu run
``apt-get install wrk``. Prints one JSON object. Usage:
    .venv/bin/python bench/wrk.py [--rounds 3] [--duration 10] [--connections 8]
                                  [--threads 1] [--workers 4] [--python PATH]
                                  [--baseline PATH] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FLOOR = "GET /healthz"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
POLL_INTERVAL = 0.05
BODY = json.dumps({"ops": [{"op": "test.noop"}]})

# wrk's Lua hooks: count answers by status per thread, and print one JSON line at the end.
LUA = """
wrk.method = "%(method)s"
%(body)s
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  statuses = {}
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[tostring(status)] = (counts[tostring(status)] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%%s": %%d', status, n))
  end
  io.write(string.format(
    'JSON {"requests": %%d, "duration_us": %%d, "socket_errors": %%d, '
    .. '"latency_us": {"p50": %%d, "p90": %%d, "p99": %%d, "max": %%d}, "statuses": {%%s}}\\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ", ")))
end
"""


def lua_script(method: str, body: str | None) -> str:
    lines = ""
    if body is not None:
        lines = f'wrk.body = {json.dumps(body)}\nwrk.headers["Content-Type"] = "application/json"'
    return LUA % {"method": method, "body": lines}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def call(method: str, url: str, body: str | None = None) -> Any:
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


@contextlib.contextmanager
def running_daemon(python: str, directory: Path, workers: int) -> Iterator[tuple[str, int]]:
    """A fresh daemon on its own database and port; (url, pid); stopped when the block ends."""
    port = free_port()
    log = directory / "daemon.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    command = [
        *(python, "-m", "jobplane", "serve", "--db", f"sqlite:///{directory / 'jobs.db'}"),
        *("--port", str(port), "--workers", str(workers)),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the daemon exited early:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                call("GET", f"{url}/healthz")
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not answer /healthz within {START_TIMEOUT} s")
            time.sleep(POLL_INTERVAL)  # polling a starting process
        yield url, process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)


def run_wrk(
    url: str, script: Path, *, threads: int, connections: int, duration: int, pid: int
) -> dict[str, Any]:
    command = [
        *("wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s"),
        *("-s", str(script), url),
    ]
    cpu = cpu_seconds(pid)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu
    line = next((x for x in output.splitlines() if x.startswith("JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    found = json.loads(line[5:])
    seconds = found["duration_us"] / 1e6
    return {
        "requests_per_s": round(found["requests"] / seconds),
        "requests": found["requests"],
        "statuses": found["statuses"],
        "socket_errors": found["socket_errors"],
        "latency_ms": {k: round(v / 1000, 2) for k, v in found["latency_us"].items()},
        "daemon_cpu_ms_per_request": round(cpu * 1000 / max(found["requests"], 1), 3),
    }


def one_round(args: argparse.Namespace, python: str, directory: Path) -> dict[str, dict[str, Any]]:
    post = directory / "post.lua"
    post.write_text(lua_script("POST", BODY))
    get = directory / "get.lua"
    get.write_text(lua_script("GET", None))
    options = {"threads": args.threads, "connections": args.connections, "duration": args.duration}
    with running_daemon(python, directory, args.workers) as (url, pid):
        job_id = call("POST", f"{url}/v1/jobs", BODY)["id"]
        call("GET", f"{url}/v1/jobs/{job_id}/wait?timeout=10")
        runs = {
            "POST /v1/jobs": (run_wrk(f"{url}/v1/jobs", post, pid=pid, **options), "201"),
            "GET /v1/jobs/{id}": (
                run_wrk(f"{url}/v1/jobs/{job_id}", get, pid=pid, **options),
                "200",
            ),
            "GET /healthz": (run_wrk(f"{url}/healthz", get, pid=pid, **options), "200"),
        }
    for name, (run, expected) in runs.items():
        unexpected = {s: n for s, n in run["statuses"].items() if s != expected}
        if unexpected or run["socket_errors"]:
            raise RuntimeError(
                f"{name}: unexpected answers {unexpected}, {run['socket_errors']} socket errors"
            )
    return {name: run for name, (run, _) in runs.items()}


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    summary = {}
    for name in rounds[0]:
        rates = [r[name]["requests_per_s"] for r in rounds]
        cpu = [r[name]["daemon_cpu_ms_per_request"] for r in rounds]
        floor = [r[name]["requests_per_s"] / r[FLOOR]["requests_per_s"] for r in rounds]
        summary[name] = {
            "median_requests_per_s": round(statistics.median(rates)),
            "min": min(rates),
            "max": max(rates),
            "median_per_healthz": round(statistics.median(floor), 2),
            "median_daemon_cpu_ms_per_request": round(statistics.median(cpu), 3),
            "median_latency_p50_ms": statistics.median(
                r[name]["latency_ms"]["p50"] for r in rounds
            ),
        }
    return summary


def compare(
    before: list[dict[str, dict[str, Any]]], after: list[dict[str, dict[str, Any]]]
) -> dict[str, float]:
    """Per endpoint, the median over the alternated pairs of after / before."""
    return {
        name: round(
            statistics.median(
                a[name]["requests_per_s"] / b[name]["requests_per_s"]
                for b, a in zip(before, after, strict=True)
            ),
            2,
        )
        for name in after[0]
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="fresh daemons, one after another")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4, help="the daemon's workers")
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter that runs the daemon"
    )
    parser.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="also run the daemon with this interpreter (other code), each round before "
        "--python's, and compare: before, after, before, after ...",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 1 s runs")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.connections = 1, 1, 2
    if shutil.which("wrk") is None:
        sys.exit(
            "bench/wrk.py needs the wrk HTTP benchmarking tool, which is not on PATH; "
            "install it (Debian/Ubuntu: apt-get install wrk) and run this again"
        )
    if min(args.rounds, args.duration, args.connections, args.threads, args.workers) < 1:
        parser.error("every number must be at least 1")
    # SIGTERM unwinds like Ctrl-C, so the daemon of the current round is stopped too
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    load = os.getloadavg()[0]
    rounds: list[dict[str, dict[str, Any]]] = []
    baseline: list[dict[str, dict[str, Any]]] = []
    for _ in range(args.rounds):
        sides = [(args.baseline, baseline)] if args.baseline else []
        for python, results in [*sides, (args.python, rounds)]:
            with tempfile.TemporaryDirectory(prefix="jobplane-bench-wrk-") as tmp:
                results.append(one_round(args, python, Path(tmp)))
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1min_at_start": round(load, 2),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        },
        "parameters": {
            "daemon": f"{args.python} -m jobplane serve --workers {args.workers} (SQLite, "
            "durability normal, a fresh daemon and database per round, workers draining)",
            "wrk": f"wrk -t {args.threads} -c {args.connections} -d {args.duration}s",
            "machine_busy": "other work on the machine moves every figure: compare a round "
            "with the GET /healthz of the same round (per_healthz) and before with after "
            "alternated (--baseline)",
            "post_body": BODY,
            "rounds": args.rounds,
        },
        "summary": summarise(rounds),
        "rounds": rounds,
    }
    if args.baseline:
        result["parameters"]["baseline"] = f"{args.baseline} -m jobplane serve, alternated"
        result["baseline_summary"] = summarise(baseline)
        result["after_per_before"] = compare(baseline, rounds)
        result["baseline_rounds"] = baseline
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
