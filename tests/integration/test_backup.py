"""``jobplane backup PATH``: a consistent copy of the store, taken while a daemon writes to it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobplane import Client
from jobplane.stores import open_store

from .http_server import free_port

JOBPLANE = str(Path(sys.executable).parent / "jobplane")
TIMEOUT = 60.0
NOOP = [{"op": "test.noop"}]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}


def jobplane(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBPLANE, *args], capture_output=True, text=True, env=env(), timeout=TIMEOUT, check=False
    )


@contextmanager
def daemon(db: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [JOBPLANE, "serve", "--db", f"sqlite:///{db}", "--port", str(port), "--workers", "2"],
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # until it listens, or says why not
            if "listening on" in line or "jobplane:" in line:
                break
        assert "listening on" in line, line
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(TIMEOUT)
        assert process.stderr is not None
        process.stderr.close()


def test_backup_while_the_daemon_writes_holds_every_job_submitted_before(tmp_path: Path) -> None:
    db, copy = tmp_path / "jobs.db", tmp_path / "backup.db"
    with daemon(db) as url:
        submitted: list[int] = []
        enough = threading.Event()
        stop = threading.Event()

        def submit_until_stopped() -> None:
            with Client(url) as client:
                while not stop.is_set():
                    submitted.append(client.submit(NOOP))
                    if len(submitted) >= 200:
                        enough.set()

        writer = threading.Thread(target=submit_until_stopped)
        writer.start()
        try:
            assert enough.wait(TIMEOUT), "the writer did not get going"
            before = list(submitted)
            done = jobplane("backup", str(copy), "--db", f"sqlite:///{db}")
            during = len(submitted) - len(before)
        finally:
            stop.set()
            writer.join(TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert f"backed up sqlite:///{db} to {copy}:" in done.stdout
    assert during > 0, "the daemon was not writing while the backup ran"
    assert not Path(f"{copy}-wal").exists()  # one self-contained file
    with sqlite3.connect(copy) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert check.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        (count,) = check.execute("SELECT COUNT(*) FROM jobs").fetchone()
    assert len(before) <= count <= len(submitted)
    assert f"{count} jobs" in done.stdout
    store = open_store(f"sqlite:///{copy}")  # the daemon could run on it
    try:
        for job_id in before:
            store.load(job_id)
    finally:
        store.close()


def test_backup_of_a_stopped_daemons_store(tmp_path: Path) -> None:
    db, copy = tmp_path / "jobs.db", tmp_path / "copy.db"
    with daemon(db) as url, Client(url) as client:
        job_id = client.submit(NOOP)
    assert not Path(f"{db}-shm").exists()  # the daemon closed the store cleanly
    done = jobplane("backup", str(copy), "--db", f"sqlite:///{db}")
    assert done.returncode == 0, done.stderr
    assert "1 jobs" in done.stdout
    store = open_store(f"sqlite:///{copy}")
    try:
        assert store.load(job_id).id == job_id
    finally:
        store.close()


def test_backup_refuses_with_one_line_and_leaves_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    open_store(f"sqlite:///{db}").close()
    taken = tmp_path / "taken.db"
    taken.write_text("precious")
    refused = jobplane("backup", str(taken), "--db", f"sqlite:///{db}")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "exists: give a new file, or --replace" in refused.stderr
    assert taken.read_text() == "precious"
    assert jobplane("backup", str(taken), "--db", f"sqlite:///{db}", "--replace").returncode == 0

    missing = jobplane("backup", str(tmp_path / "x.db"), "--db", f"sqlite:///{tmp_path}/no.db")
    assert missing.returncode == 1 and "no database at" in missing.stderr
    nowhere = jobplane("backup", str(tmp_path / "no" / "x.db"), "--db", f"sqlite:///{db}")
    assert nowhere.returncode == 2 and "no directory" in nowhere.stderr
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    foreign = jobplane("backup", str(tmp_path / "y.db"), "--db", f"sqlite:///{other}")
    assert foreign.returncode == 1 and "is not a jobplane database" in foreign.stderr
    assert "Traceback" not in missing.stderr + nowhere.stderr + foreign.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
