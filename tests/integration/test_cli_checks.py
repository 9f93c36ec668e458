"""The ``jobplane`` command checks what it can before it calls the daemon.

Every command runs as a subprocess against a closed port: a value the CLI can
judge alone must be refused with exit 2 and a message naming it, not with
"could not reach the daemon" (exit 3), and never with a traceback or exit 70.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .http_server import free_port

JOBPLANE = str(Path(sys.executable).parent / "jobplane")
BIG = str(2**63)  # one past the largest job id

# (arguments, a piece of the one-line message on stderr): every command, every kind of
# check once; the variants of each check are in tests/unit/test_cli_args.py.
REFUSED: list[tuple[list[str], str]] = [
    (["submit", "test.noop", "--priority", "urgent"], "invalid priority 'urgent'"),
    (["change-priority", "--priority", "-21", "--pending"], "priority -21 is out of range"),
    (["submit", "test.delay", "duration=1e999"], "parameter 'duration': 1e999 is out of range"),
    (["submit", "test.delay", "--params-json", '{"duration": NaN}'], "NaN is not valid JSON"),
    (["submit", "test.noop", "--depends", "0"], "--depends '0': job ids are from 1 to"),
    (["submit", "test.noop", "--depends", "3:done"], "'done' is not a final status"),
    (["submit", "--file", "jobs.json", "--priority", "high"], "--priority goes with OP"),
    (["submit", "--file", "strings.json"], "strings.json: job 1 is not a JSON object"),
    (["cancel", "1", "--pending"], "give job ids, or one of --pending, --queued or --waiting"),
    (["change-priority", "--priority", "high", "1", "--pending"], "give job ids or --pending"),
    (["info", "0"], "Invalid value for 'job_id': Input should be greater than or equal to 1"),
    (["watch", BIG], "Invalid value for 'job_id': Input should be less than or equal to"),
    (["wait", "0"], "Invalid value for 'job_id'"),
    (["explain", "0"], "Invalid value for 'job_id'"),
    (["archive", "1", "0"], "Invalid value for 'ids'"),
    (["list", "--status", "queued,done"], "unknown status 'done'; statuses are queued,"),
    (["list", "--limit", "5000"], "Invalid value for '--limit': Input should be less than or"),
    (["autoarchive", "9" * 400], "is too large"),
    (["status", "--url", "localhost:8470"], "--url 'localhost:8470' must be http://HOST:PORT"),
    (["locks", "--token", "caf\u00e9"], "--token must be printable ASCII without spaces"),
]


def run(cwd: Path, url: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    env.update(JOBPLANE_URL=url, COLUMNS="200")
    return subprocess.run(
        [JOBPLANE, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False
    )


@pytest.fixture
def job_files(tmp_path: Path) -> Path:
    (tmp_path / "jobs.json").write_text(json.dumps({"ops": [{"op": "test.noop"}]}))
    (tmp_path / "strings.json").write_text(json.dumps([{"ops": [{"op": "test.noop"}]}, "x"]))
    return tmp_path


def test_bad_arguments_are_refused_before_the_daemon_is_called(job_files: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda case: run(job_files, url, case[0]), REFUSED))
    wrong = [
        f"{' '.join(args)!r}: exit {result.returncode}, stderr {result.stderr.strip()!r}"
        for (args, message), result in zip(REFUSED, done, strict=True)
        if result.returncode != 2
        or message not in result.stderr
        or "Traceback" in result.stderr
        or "could not reach" in result.stderr
    ]
    assert not wrong, "\n".join(wrong)


def test_good_arguments_do_reach_for_the_daemon(job_files: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    accepted = [
        ["submit", "test.delay", "message=NaN", "--priority", "-20", "--depends", "1:error"],
        ["submit", "--file", "jobs.json", "--token", "r" * 20],
        ["list", "--status", "queued, running", "--pending", "--limit", "1000"],
    ]
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda args: run(job_files, url, args), accepted))
    wrong = [
        f"{' '.join(args)!r}: exit {result.returncode}, stderr {result.stderr.strip()!r}"
        for args, result in zip(accepted, done, strict=True)
        if result.returncode != 3 or "could not reach" not in result.stderr
    ]
    assert not wrong, "\n".join(wrong)
