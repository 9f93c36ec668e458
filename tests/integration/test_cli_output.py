"""What the ``jobplane`` command prints, for people and for scripts (issue 12), as subprocesses.

stdout is a pipe here, as in a script: nothing may be wrapped or cut.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobplane import __version__
from jobplane.http import TokenStore

from .http_server import running_daemon

JOBPLANE = str(Path(sys.executable).parent / "jobplane")
LONG_NODE = "node:" + "a-node-with-a-name-long-enough-to-pass-eighty-columns-" * 2 + "end"


def run(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    """``jobplane ARGS`` with no COLUMNS and no JOBPLANE_* settings: as a script runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    env.pop("COLUMNS", None)
    if url is not None:
        env["JOBPLANE_URL"] = url
    return subprocess.run(
        [JOBPLANE, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def ok(*args: str, url: str | None = None) -> str:
    done = run(*args, url=url)
    assert done.returncode == 0, f"{args}: exit {done.returncode}: {done.stderr}"
    return done.stdout


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[str, object]]:
    with running_daemon(tmp_path) as (address, queue):
        try:
            yield address, queue
        finally:  # a test that failed leaves hour-long jobs behind: the daemon waits for them
            for job in queue.list(status=["queued", "waiting", "running"], limit=1000):
                queue.cancel(job.id)


# -- the first ten minutes ---------------------------------------------------------------------


def test_version_is_printed() -> None:
    assert ok("--version").strip() == f"jobplane {__version__}"


def test_url_and_token_go_before_or_after_the_command(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{'r' * 20} read\n")
    with running_daemon(tmp_path, tokens=TokenStore.from_file(tokens)) as (url, _):
        assert "workers" in ok("--url", url, "--token", "r" * 20, "status")
        assert "workers" in ok("status", "--url", url, "--token", "r" * 20)
        assert "workers" in ok("--url", url, "status", "--token", "r" * 20)
        assert "unreadable" in ok("--url", url, "--token", "r" * 20, "quarantine", "list")
        # after the command wins over before it
        refused = run("--token", "x" * 20, "status", "--url", url, "--token", "r" * 20)
        assert refused.returncode == 0, refused.stderr


def _option_lines(help_text: str) -> list[str]:
    section = help_text.split("Options:", 1)[1]
    return [line for line in section.splitlines() if line.startswith("  -")]


def test_help_names_real_metavars_and_explains_every_option() -> None:
    serve = ok("serve", "--help")
    assert re.search(r"--workers INTEGER\b", serve), serve
    cancel = ok("cancel", "--help")
    assert "IDS..." in cancel and "[IDS]..." in cancel, cancel
    info = ok("info", "--help")
    assert "IDS..." in info, info
    for command in ("serve", "submit", "list", "info", "cancel", "change-priority", "locks"):
        text = ok(command, "--help")
        assert "<" not in text and ">" not in text, f"{command}: {text}"
        for line in _option_lines(text):
            assert re.search(r"\S\s{2,}\S", line), f"{command}: no help for {line.strip()!r}"
    root = ok("--help")
    assert "--version" in root and "--url URL" in root and "--token TOKEN" in root, root


def test_ops_shows_parameters_with_types_and_defaults(daemon: tuple[str, object]) -> None:
    url, _ = daemon
    text = ok("ops", url=url)
    assert "duration: number = 0.0" in text, text
    assert "exclusive: list of string  locks to hold exclusively" in text, text
    assert "message: string or null = null" in text, text
    assert "``" not in text and ":class:" not in text, text


# -- lists ---------------------------------------------------------------------------------------


def test_list_shows_the_newest_first_and_says_how_many_more(daemon: tuple[str, object]) -> None:
    url, queue = daemon
    ids = [queue.submit([{"op": "test.delay", "params": {"duration": 3600}}]) for _ in range(7)]  # type: ignore[attr-defined]
    cut = run("list", "--limit", "3", "-o", "id", "--no-headers", url=url)
    assert [int(x) for x in cut.stdout.split()] == ids[::-1][:3], cut.stdout
    assert f"4 more \u2014 use --all or --before {ids[4]}" in cut.stderr, cut.stderr
    older = ok("list", "--limit", "3", "-o", "id", "--no-headers", "--before", str(ids[4]), url=url)
    assert [int(x) for x in older.split() if x.isdigit()][:3] == ids[::-1][3:6], older
    newer = ok("list", "-o", "id", "--no-headers", "--after", str(ids[4]), url=url)
    assert [int(x) for x in newer.split()] == [ids[6], ids[5]], newer
    every = ok("list", "--all", "--limit", "2", "-o", "id", "--no-headers", url=url)
    assert [int(x) for x in every.split()] == ids[::-1], every
    page = json.loads(ok("list", "--limit", "3", "--json", url=url))
    assert [job["id"] for job in page["jobs"]] == ids[::-1][:3] and page["next"] == ids[4]
    for job_id in ids:
        queue.cancel(job_id)  # type: ignore[attr-defined]


def test_finished_jobs_show_the_priority_they_ran_with(daemon: tuple[str, object]) -> None:
    url, queue = daemon
    done = run("submit", "test.noop", "--priority", "low", "--wait", url=url)
    assert done.returncode == 0, done.stderr
    listed = ok("list", "-o", "id,status,priority", "--no-headers", "--separator", "|", url=url)
    assert listed.splitlines()[0] == "1|success|10", listed
    assert "job 1: success, priority 10" in ok("info", "1", url=url)
    held = queue.submit([{"op": "test.delay", "params": {"duration": 3600}}], priority=5)  # type: ignore[attr-defined]
    pending = ok("list", "-o", "id,priority", "--no-headers", "--separator", "|", url=url)
    assert f"{held}|5" in pending.splitlines(), pending
    queue.cancel(held)  # type: ignore[attr-defined]


# -- output for scripts --------------------------------------------------------------------------


def test_piped_output_is_never_wrapped_or_cut(daemon: tuple[str, object]) -> None:
    url, queue = daemon
    job = queue.submit(  # type: ignore[attr-defined]
        [{"op": "test.delay", "params": {"duration": 3600, "exclusive": [LONG_NODE]}}]
    )
    deadline = time.monotonic() + 20  # the daemon's worker takes the lock: an external wait
    while LONG_NODE not in (text := ok("locks", url=url)):
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    row = next(line for line in text.splitlines() if LONG_NODE in line)
    assert str(job) in row, text
    assert "cluster:cluster" in ok("locks", "--all", url=url)
    queue.cancel(job)  # type: ignore[attr-defined]


def test_no_headers_and_separator_as_gnt_job_list(daemon: tuple[str, object]) -> None:
    url, _ = daemon
    assert ok("submit", "test.noop", "--wait", url=url)
    text = ok("list", "-o", "id,status,summary", url=url)
    assert text.splitlines()[0].split() == ["id", "status", "summary"], text
    bare = ok("list", "-o", "id,status,summary", "--no-headers", url=url)
    assert bare.split() == ["1", "success", "test.noop"], bare
    split = ok("list", "-o", "id,status,summary", "--separator", ",", url=url)
    assert split.splitlines() == ["id,status,summary", "1,success,test.noop"], split
    help_text = ok("list", "--help")
    for field in ("id", "status", "priority", "ops", "summary", "received", "started", "ended"):
        assert field in help_text


def test_submit_json_prints_the_ids(daemon: tuple[str, object], tmp_path: Path) -> None:
    url, _ = daemon
    assert json.loads(ok("submit", "test.noop", "--json", url=url)) == {"ids": [1]}
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{"ops": [{"op": "test.noop"}]}] * 2))
    waited = ok("submit", "--file", str(batch), "--json", "--wait", url=url)
    assert json.loads(waited) == {"ids": [2, 3]}


# -- info, watch, status, errors -----------------------------------------------------------------


def test_info_takes_several_ids_with_times_and_plain_errors(daemon: tuple[str, object]) -> None:
    url, _ = daemon
    assert run("submit", "test.delay", "fail=true", "--wait", url=url).returncode == 1
    ok("submit", "test.noop", "--wait", url=url)
    text = ok("info", "1", "2", url=url)
    assert "job 1: error" in text and "job 2: success" in text, text
    assert "RuntimeError: test.delay was asked to fail" in text, text
    assert "{'error'" not in text and '{"error"' not in text, text
    assert text.count("Total processing time:") == 2, text
    assert text.count("Execution start:") == 2 and text.count("Execution end:") == 2, text
    assert not re.search(r"\w+ ,|\w+ $", text, re.MULTILINE), text
    ok("submit", "test.delay", "duration=3600", url=url)
    queued = ok("info", "3", url=url)
    assert "not ended" in queued and "started ," not in queued, queued
    ok("cancel", "3", url=url)


def test_watch_prints_the_end_once(daemon: tuple[str, object]) -> None:
    url, _ = daemon
    ok("submit", "test.delay", "duration=0.01", "message=hello", url=url)
    watched = ok("watch", "1", url=url)
    assert watched.count("success") == 1, watched


def test_status_counts_running_jobs_as_running(daemon: tuple[str, object]) -> None:
    url, queue = daemon
    job = queue.submit([{"op": "test.delay", "params": {"duration": 3600}}])  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while "1 running" not in (text := ok("status", url=url)):
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    assert "pending" not in text, text
    queue.cancel(job)  # type: ignore[attr-defined]


def test_daemon_errors_name_no_pydantic_path(daemon: tuple[str, object]) -> None:
    url, _ = daemon
    refused = run("submit", "test.delay", 'exclusive=["nolevel"]', url=url)
    assert refused.returncode == 2
    assert "Value error" not in refused.stderr and "body." not in refused.stderr, refused.stderr
    assert "lock 'nolevel' must be written level:name" in refused.stderr, refused.stderr
