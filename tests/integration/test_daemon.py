"""``jobplane serve`` as a real process: start, SIGTERM, a second daemon, settings."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobplane.client import Client
from jobplane.daemon import resolve
from jobplane.errors import ValidationError
from jobplane.queue import JobQueue
from jobplane.stores import open_store

from .http_server import free_port

JOBPLANE = str(Path(sys.executable).parent / "jobplane")


def start(
    db: Path, port: int, *extra: str
) -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
    """Start a daemon and wait (on its stderr, with a deadline) for its start line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    proc = subprocess.Popen(
        [JOBPLANE, "serve", "--db", f"sqlite:///{db}", "--port", str(port), *extra],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "listening on" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(30), "the daemon did not start"
    return proc, lines, reader


def test_sigterm_lets_the_running_op_finish_and_loses_nothing(tmp_path: Path) -> None:
    db, port = tmp_path / "d.db", free_port()
    proc, lines, reader = start(db, port, "--workers", "2")
    try:
        assert proc.poll() is None, "".join(lines)
        with Client(f"http://127.0.0.1:{port}") as c:
            running = c.submit([{"op": "test.delay", "params": {"duration": 1.0}}])
            queued = [c.submit([{"op": "test.noop"}], priority="low") for _ in range(3)]
            seen = c.get(running)
            while seen.status != "running":
                change = c.wait_for_change(running, 0, 10, since_status=seen.status)
                assert change is not None, "the job never started"
                seen = change.job
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()
    assert "jobplane stopped" in "".join(lines)
    store = open_store(f"sqlite:///{db}")
    try:
        assert store.load(running).status == "success"
        for job_id in queued:
            store.load(job_id)  # accepted jobs are all there
    finally:
        store.close()


def test_second_daemon_on_the_same_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    first, _, reader = start(db, free_port())
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
        second = subprocess.run(
            [JOBPLANE, "serve", "--db", f"sqlite:///{db}", "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )
        assert second.returncode == 3
        assert "is in use by process" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
        reader.join(10)
        assert first.stderr is not None
        first.stderr.close()


@pytest.mark.parametrize(
    "kind", ["hard link", "bind-mounted file", "bind-mounted folder", "symlinked folder"]
)
def test_second_daemon_on_the_same_file_under_another_name_is_refused(
    tmp_path: Path, kind: str, bind_mount: Callable[[Path, Path], None]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = data / "d.db"
    port = free_port()
    first, _, reader = start(db, port)
    try:
        if kind == "hard link":
            alias = data / "alias.db"
            os.link(db, alias)
        elif kind == "bind-mounted file":
            alias = data / "alias.db"
            alias.touch()
            bind_mount(db, alias)
        elif kind == "bind-mounted folder":
            bind_mount(data, tmp_path / "other")
            alias = tmp_path / "other" / "d.db"
        else:
            (tmp_path / "other").symlink_to(data, target_is_directory=True)
            alias = tmp_path / "other" / "d.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
        second = subprocess.run(
            [JOBPLANE, "serve", "--db", f"sqlite:///{alias}", "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )
        assert second.returncode == 3, second.stderr
        [line] = second.stderr.splitlines()
        assert line.startswith("jobplane: ") and f"in use by process {first.pid}" in line
        with Client(f"http://127.0.0.1:{port}") as c:  # the first daemon carries on
            job_id = c.submit([{"op": "test.noop"}])
            assert c.wait(job_id, timeout=30).status == "success"
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
        reader.join(10)
        assert first.stderr is not None
        first.stderr.close()


def test_non_loopback_bind_without_tokens_is_refused(tmp_path: Path) -> None:
    refused = subprocess.run(
        [JOBPLANE, "serve", "--db", f"sqlite:///{tmp_path / 'd.db'}", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0 without --tokens" in refused.stderr


def serve_refused(tmp_path: Path, *args: str, **env: str) -> list[str]:
    """Run ``jobplane serve`` that must refuse its settings: exit 2, its stderr lines."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    bad = subprocess.run(
        [JOBPLANE, "serve", "--db", f"sqlite:///{tmp_path / 'e.db'}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**clean, **env},
        check=False,
    )
    assert bad.returncode == 2, bad.stderr
    return bad.stderr.splitlines()


def test_settings_precedence_option_then_environment_then_file_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("JOBPLANE_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "jobplane.toml"
    config.write_text(
        '[serve]\nworkers = 3\nport = 9000\nlock_timeouts = "0.5,1,5"\nmax_waits = 7\n'
    )
    monkeypatch.setenv("JOBPLANE_PORT", "9050")
    monkeypatch.setenv("JOBPLANE_MAX_WAITS", "70")
    monkeypatch.setenv("JOBPLANE_LOCK_TIMEOUTS", "2,3,4")
    settings = resolve({"port": "9100", "workers": None}, str(config))
    assert (settings.workers, settings.port, settings.max_waits) == (3, 9100, 70)
    assert settings.lock_timeouts == (2.0, 3.0, 4.0)
    assert settings.read_timeout == 10.0  # the default
    monkeypatch.setenv("JOBPLANE_CONFIG", str(config))  # names the file, as --config does
    assert resolve({}, None).workers == 3
    monkeypatch.delenv("JOBPLANE_CONFIG")
    config.write_text("workers = 5\nlog_format = 'json'\n")  # no [serve] table: the top level
    settings = resolve({}, str(config))
    assert (settings.workers, settings.log_format) == (5, "json")
    assert resolve({}, None).workers == 8


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"workers": "many"}, "--workers must be a positive integer, got 'many'"),
        ({"workers": "0"}, "--workers must be a positive integer, got '0'"),
        ({"max_connections": "-1"}, "--max-connections must be a positive integer, got '-1'"),
        ({"port": "65536"}, "--port must be a port number from 0 to 65535, got '65536'"),
        (
            {"lock_timeouts": "5,1,2"},
            "--lock-timeouts must be MIN,MAX,STEP_TOTAL seconds with "
            "0 < MIN <= MAX <= STEP_TOTAL, got '5,1,2'",
        ),
        ({"aging_interval": "-1"}, "--aging-interval must be a number of seconds >= 0, got '-1'"),
        ({"read_timeout": "inf"}, "--read-timeout must be a number of seconds > 0, got 'inf'"),
        ({"log_format": "xml"}, "--log-format must be text or json, got 'xml'"),
        ({"durability": "eventual"}, "--durability must be normal or full, got 'eventual'"),
    ],
)
def test_a_bad_option_is_one_precise_message(given: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        resolve(given, None)
    assert str(raised.value) == message


def test_a_bad_setting_names_where_it_came_from_and_exits_2(tmp_path: Path) -> None:
    """The message names the option, the variable or the file that gave the value."""
    assert serve_refused(tmp_path, JOBPLANE_WORKERS="zero") == [
        "jobplane: JOBPLANE_WORKERS must be a positive integer, got 'zero'"
    ]
    assert serve_refused(tmp_path, "--workers", "0", JOBPLANE_WORKERS="zero") == [
        "jobplane: --workers must be a positive integer, got '0'"
    ]
    config = tmp_path / "jobplane.toml"
    config.write_text("[serve]\nworkers = true\nport = 8470\n")
    assert serve_refused(tmp_path, "--config", str(config)) == [
        f"jobplane: workers in {config} must be a positive integer, got True"
    ]
    config.write_text("[serve]\nworkerz = 3\nportt = 1\n")
    assert serve_refused(tmp_path, JOBPLANE_CONFIG=str(config)) == [
        f"jobplane: {config}: unknown setting(s) portt, workerz"
    ]
    config.write_text("[serve\nworkers = 3\n")
    [line] = serve_refused(tmp_path, "--config", str(config))
    assert line.startswith(f"jobplane: the config file {config} is not valid TOML: "), line
    missing = tmp_path / "missing.toml"
    assert serve_refused(tmp_path, "--config", str(missing)) == [
        f"jobplane: cannot read the config file {missing}: No such file or directory"
    ]


# Found when the daemon was probed (issue 9) -------------------------------------------------


def _stop(proc: subprocess.Popen[str], reader: threading.Thread) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    reader.join(10)
    assert proc.stderr is not None
    proc.stderr.close()


async def _waits_then_signal(
    url: str, proc: subprocess.Popen[str], signum: int, watched: list[int]
) -> tuple[list[dict[str, Any]], float, httpx.Response, httpx.Response]:
    """Open a wait per watched job, signal the daemon, and collect what the waits answer."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        states = {j: (await client.get(f"/v1/jobs/{j}")).json()["status"] for j in watched}
        waits = [
            asyncio.create_task(
                client.get(f"/v1/jobs/{j}/wait", params={"status": states[j], "timeout": 30})
            )
            for j in watched
        ]
        deadline = time.monotonic() + 30
        while (await client.get("/v1/status")).json().get("open_waits") != len(watched):
            assert time.monotonic() < deadline, "the waits never opened"
            assert not any(wait.done() for wait in waits)
            await asyncio.sleep(0.02)
        proc.send_signal(signum)
        answers = [(await wait).json() for wait in waits]
        answered = time.time()
        submitted = await client.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]})
        waited = await client.get(f"/v1/jobs/{watched[0]}/wait", params={"timeout": 30})
    return answers, answered, submitted, waited


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_starts_nothing_more_and_answers_open_waits_at_once(
    tmp_path: Path, signum: int
) -> None:
    db, port = tmp_path / "d.db", free_port()
    proc, lines, reader = start(db, port, "--workers", "1")
    url = f"http://127.0.0.1:{port}"
    try:
        with Client(url) as c:
            running = c.submit([{"op": "test.delay", "params": {"duration": 3.0}}])
            queued = [c.submit([{"op": "test.noop"}]) for _ in range(20)]
            seen = c.get(running)
            while seen.status != "running":
                change = c.wait_for_change(running, 0, 10, since_status=seen.status)
                assert change is not None, "the job never started"
                seen = change.job
        answers, answered, submitted, waited = asyncio.run(
            _waits_then_signal(url, proc, signum, [running, *queued[:9]])
        )
        assert proc.wait(30) == 0, "".join(lines)
    finally:
        _stop(proc, reader)
    assert all(answer["stopping"] for answer in answers), answers
    assert [answer["job"]["status"] for answer in answers] == ["running"] + ["queued"] * 9
    assert submitted.status_code == 503 and submitted.json()["error"]["code"] == "shutting_down"
    assert waited.status_code == 503 and waited.json()["error"]["code"] == "shutting_down"
    store = open_store(f"sqlite:///{db}")
    try:
        finished = store.load(running)
        assert finished.status == "success"
        assert finished.ended_at is not None and answered < finished.ended_at  # not after it
        for job_id in queued:  # nothing started after the signal
            job = store.load(job_id)
            assert job.status == "queued" and job.started_at is None, job_id
    finally:
        store.close()


def test_a_busy_port_is_one_line_and_exit_3_with_nothing_run(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    with JobQueue.open(f"sqlite:///{db}", start=False) as queue:
        job_id = queue.submit([{"op": "test.noop"}])
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [JOBPLANE, "serve", "--db", f"sqlite:///{db}", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines() == [
        f"jobplane: cannot listen on 127.0.0.1:{port}: the address is already in use"
    ]
    store = open_store(f"sqlite:///{db}")
    try:
        job = store.load(job_id)
        assert job.status == "queued" and job.started_at is None
    finally:
        store.close()


def test_a_missing_database_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "d.db"
    result = subprocess.run(
        [JOBPLANE, "serve", "--db", f"sqlite:///{missing}", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"jobplane: the directory of the database {missing.parent} does not exist"
    ]


def test_a_request_whose_headers_never_finish_is_closed(tmp_path: Path) -> None:
    port = free_port()
    proc, _lines, reader = start(tmp_path / "d.db", port, "--read-timeout", "0.5")
    try:
        for sent in (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b""):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(sent)
                began = time.monotonic()
                try:
                    data = sock.recv(1024)
                except TimeoutError:
                    data = None
                took = time.monotonic() - began
            assert data == b"" and took < 3.0, (sent, data, took)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            assert c.get("/healthz").status_code == 200  # whole requests are served
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        _stop(proc, reader)


def test_connections_beyond_the_limit_are_refused_with_503(tmp_path: Path) -> None:
    port = free_port()
    proc, _lines, reader = start(tmp_path / "d.db", port, "--max-connections", "2")
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        first = socket.create_connection(("127.0.0.1", port), timeout=10)
        second = socket.create_connection(("127.0.0.1", port), timeout=10)
        for sock in (first, second):  # answered, so the daemon holds both connections
            sock.sendall(request)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            refused = c.get("/healthz")
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "too_many_connections"
            assert refused.headers["connection"] == "close"
            first.close()
            second.close()
            deadline = time.monotonic() + 10
            while c.get("/healthz").status_code != 200:
                assert time.monotonic() < deadline, "closed connections were never let go"
                time.sleep(0.02)  # polling another process
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        _stop(proc, reader)


async def _changes_poll_then_signal(url: str, proc: subprocess.Popen[str]) -> float:
    """Open the dashboard's change poll, signal the daemon; seconds until the poll answers."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        serial = (await client.get("/v1/changes")).json()["serial"]
        poll = asyncio.create_task(
            client.get("/v1/changes", params={"since": serial, "timeout": 30})
        )
        await client.get("/v1/status")  # another round trip: the poll is usually open by now
        assert not poll.done()
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        answer = await poll
        assert answer.status_code == 200, answer.text
        return time.monotonic() - signalled


def test_a_signal_answers_the_dashboards_open_change_polls_at_once(tmp_path: Path) -> None:
    """A browser's open dashboard must not keep a stopping daemon alive for its poll's timeout."""
    db, port = tmp_path / "d.db", free_port()
    proc, lines, reader = start(db, port, "--workers", "1")
    url = f"http://127.0.0.1:{port}"
    try:
        with Client(url) as c:  # a running op keeps the daemon serving after the signal
            c.submit([{"op": "test.delay", "params": {"duration": 6.0}}])
        took = asyncio.run(_changes_poll_then_signal(url, proc))
        assert proc.wait(30) == 0, "".join(lines)
    finally:
        _stop(proc, reader)
    assert took < 3, f"the change poll was answered {took:.1f} s after the signal"


# Issue 12: JSON logs -----------------------------------------------------------------------

ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def test_json_logs_are_one_object_a_line_with_iso_8601_times_job_ids_and_tracebacks(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc, lines, reader = start(tmp_path / "d.db", port, "--log-format", "json")
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            params = {"duration": 0, "message": "hello from the op", "fail": True}
            body = {"ops": [{"op": "test.delay", "params": params}]}
            job_id = api.post("/v1/jobs", json=body).json()["id"]
            status = "queued"
            while status not in ("success", "error", "canceled"):
                answer = api.get(f"/v1/jobs/{job_id}/wait", params={"status": status}).json()
                status = answer["job"]["status"]
            assert status == "error"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        _stop(proc, reader)
    entries = []
    for line in lines:
        entry = json.loads(line)  # every line, the start and stop lines too
        assert isinstance(entry, dict), line
        assert ISO_8601.fullmatch(entry["time"]), entry
        assert datetime.fromisoformat(entry["time"]).tzinfo is not None, entry
        assert {"level", "logger", "message"} <= set(entry), entry
        entries.append(entry)
    messages = [entry["message"] for entry in entries]
    assert any("listening on" in m for m in messages), messages
    assert any("jobplane stopped" in m for m in messages), messages
    logged = [e for e in entries if "hello from the op" in e["message"]]
    assert logged and logged[0]["job_id"] == job_id, entries
    failed = [e for e in entries if "exception" in e]
    assert failed and "RuntimeError: test.delay was asked to fail" in failed[0]["exception"]
