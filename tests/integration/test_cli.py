"""The ``jobplane`` command run as a subprocess against a running daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobplane.http import TokenStore

from .http_server import free_port, running_daemon

JOBPLANE = str(Path(sys.executable).parent / "jobplane")


def run(url: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JOBPLANE_URL": url, "COLUMNS": "200"}
    env.pop("JOBPLANE_TOKEN", None)
    if token:
        env["JOBPLANE_TOKEN"] = token
    return subprocess.run(
        [JOBPLANE, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with running_daemon(tmp_path) as (address, _queue):
        yield address


def test_submit_wait_info_and_list(url: str, tmp_path: Path) -> None:
    done = run(url, "submit", "test.delay", "duration=0.05", "message=hello there", "--wait")
    assert done.returncode == 0, done.stderr
    assert "submitted job 1" in done.stdout and "job 1 success" in done.stdout
    info = json.loads(run(url, "info", "1", "--json").stdout)
    assert info["ops"][0]["params"]["message"] == "hello there"
    assert info["ops"][0]["params"]["duration"] == 0.05
    merged = run(
        url, "submit", "test.delay", "--params-json", '{"duration": 0}', "--priority", "low"
    )
    assert merged.returncode == 0, merged.stderr
    batch = tmp_path / "jobs.json"
    batch.write_text(
        json.dumps(
            {
                "jobs": [
                    {"ops": [{"op": "test.noop"}]},
                    {"ops": [{"op": "test.noop"}], "depends": [{"job": -1}]},
                ]
            }
        )
    )
    assert "submitted job 4" in run(url, "submit", "--file", str(batch), "--wait").stdout
    listed = json.loads(run(url, "list", "--finished", "--json").stdout)
    assert [job["id"] for job in listed["jobs"]] == [4, 3, 2, 1] and listed["next"] is None
    table = run(url, "list", "-o", "id,status,summary").stdout
    assert "test.noop" in table
    assert run(url, "list", "-o", "id,nope").returncode == 2


def test_watch_exit_codes_and_log(url: str) -> None:
    failing = run(url, "submit", "test.delay", "fail=true", "message=going to fail")
    watched = run(url, "watch", "1")
    assert watched.returncode == 1, watched.stdout + watched.stderr
    assert "going to fail" in watched.stdout and "job 1 error" in watched.stdout
    assert failing.returncode == 0
    run(url, "submit", "test.noop")
    assert run(url, "wait", "2").returncode == 0


def test_cancel_priority_explain_archive(url: str) -> None:
    run(url, "submit", "test.delay", "duration=30")
    changed = run(url, "change-priority", "--priority", "high", "1")
    assert changed.returncode in (0, 1) and "job 1" in changed.stdout
    assert run(url, "explain", "1").stdout.startswith("job 1")
    cancel = run(url, "cancel", "1")
    assert cancel.returncode == 0 and "ok:" in cancel.stdout
    assert run(url, "wait", "1").returncode == 1
    assert run(url, "cancel", "1").returncode == 1
    assert "archived job 1" in run(url, "archive", "1").stdout
    assert "archived 0 job(s)" in run(url, "autoarchive", "1d").stdout
    assert run(url, "autoarchive", "soon").returncode == 2
    assert run(url, "cancel", "--pending").returncode == 0


def test_system_commands_and_drain(url: str) -> None:
    assert "test.delay" in run(url, "ops").stdout
    assert json.loads(run(url, "status", "--json").stdout)["workers"] == 2
    assert "cluster:cluster" in run(url, "locks", "--all").stdout
    assert run(url, "drain", "on").returncode == 0
    refused = run(url, "submit", "test.noop")
    assert refused.returncode == 1 and "drained" in refused.stderr
    assert run(url, "drain", "off").returncode == 0
    assert run(url, "submit", "test.noop").returncode == 0


def test_errors_are_one_line_with_exit_codes(url: str) -> None:
    bad_op = run(url, "submit", "no.such.op")
    assert bad_op.returncode == 2
    assert (
        bad_op.stderr.startswith("jobplane: ops[0]: unknown op")
        and "Traceback" not in bad_op.stderr
    )
    assert run(url, "submit", "test.delay", "duration=-1").returncode == 2
    assert run(url, "submit", "test.delay", "oops").returncode == 2
    assert run(url, "info", "99").returncode == 5
    down = run(f"http://127.0.0.1:{free_port()}", "status")
    assert down.returncode == 3
    assert down.stderr.count("\n") == 1 and "could not reach" in down.stderr


def test_auth_exit_codes(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{'w' * 20} write\n{'r' * 20} read\n")
    with running_daemon(tmp_path, tokens=TokenStore.from_file(tokens)) as (url, _):
        assert run(url, "status").returncode == 4
        assert run(url, "status", token="x" * 20).returncode == 4
        assert run(url, "status", token="r" * 20).returncode == 0
        refused = run(url, "submit", "test.noop", token="r" * 20)
        assert refused.returncode == 4 and "may only read" in refused.stderr
        assert run(url, "submit", "test.noop", token="w" * 20).returncode == 0


def test_a_priority_on_the_command_line_is_a_name_or_an_integer(url: str) -> None:
    done = run(url, "submit", "test.noop", "--priority", "-3")
    assert done.returncode == 0, done.stderr
    assert json.loads(run(url, "info", "1", "--json").stdout)["ops"][0]["priority"] == -3
    refused = run(url, "submit", "test.noop", "--priority", "HIGH")
    assert refused.returncode == 2 and "invalid priority 'HIGH'" in refused.stderr
