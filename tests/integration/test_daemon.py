"""``jobplane serve`` as a real process: start, SIGTERM, a second daemon, settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from jobplane.client import Client
from jobplane.daemon import resolve
from jobplane.errors import ValidationError
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
            job = c.get(running)
            while job["status"] != "running":
                change = c.wait(running, 0, 10, status=job["status"])
                assert change is not None, "the job never started"
                job = change["job"]
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
            assert c.wait_final(job_id, timeout=30)["status"] == "success"
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


def test_settings_precedence_and_validation(tmp_path: Path) -> None:
    config = tmp_path / "jobplane.toml"
    config.write_text('[serve]\nworkers = 3\nport = 9000\nlock_timeouts = "0.5,1,5"\n')
    settings = resolve({"port": "9100", "workers": None}, str(config))
    assert (settings.workers, settings.port, settings.lock_timeouts) == (3, 9100, (0.5, 1.0, 5.0))
    assert resolve({}, None).workers == 8
    with pytest.raises(ValidationError, match="--workers must be a positive integer"):
        resolve({"workers": "many"}, None)
    with pytest.raises(ValidationError, match="--lock-timeouts must be MIN,MAX,STEP_TOTAL"):
        resolve({"lock_timeouts": "5,1,2"}, None)
    config.write_text("[serve]\nworkerz = 3\n")
    with pytest.raises(ValidationError, match="unknown setting"):
        resolve({}, str(config))
    env = {**os.environ, "JOBPLANE_WORKERS": "zero"}
    bad = subprocess.run(
        [JOBPLANE, "serve", "--db", f"sqlite:///{tmp_path / 'e.db'}"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and "--workers must be a positive integer, got 'zero'" in bad.stderr
