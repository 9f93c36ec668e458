"""Unreadable job records, through a real daemon: it starts, logs each once, shows
them as ``error`` on every path (never a 500), and ``jobplane quarantine`` lists
and removes them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobplane.client import Client
from jobplane.http import TokenStore
from jobplane.jobs import Dependency, Job, OpState, OpStatus
from jobplane.stores import open_store

from .http_server import free_port, running_daemon
from .test_daemon import JOBPLANE, start

UNREADABLE = "stored record unreadable"  # what the API promises
LOGGED = "its stored record cannot be read"
SECRET = "hunter2"  # in a damaged record: must never show in an answer or the log


def _job(*, depends: tuple[int, ...] = (), status: OpStatus = OpStatus.QUEUED) -> Job:
    op = OpState("test.noop", {}, status=status, ended_at=None if status == "queued" else 2.0)
    return Job(0, [op], 1.0, tuple(Dependency(d) for d in depends))


def _prepare(db: Path) -> dict[str, int]:
    """A database with healthy and damaged jobs, written as a store and then by hand."""
    store = open_store(f"sqlite:///{db}")
    try:
        [queued_bad] = store.insert_jobs([_job()], max_unarchived=None)
        [done_bad] = store.insert_jobs([_job(status=OpStatus.SUCCESS)], max_unarchived=None)
        [dependant] = store.insert_jobs([_job(depends=(queued_bad,))], max_unarchived=None)
        [healthy] = store.insert_jobs([_job()], max_unarchived=None)
        [typed_bad] = store.insert_jobs([_job()], max_unarchived=None)
        [archived_bad] = store.insert_jobs([_job(status=OpStatus.ERROR)], max_unarchived=None)
        store.archive([archived_bad])
    finally:
        store.close()
    good_doc = json.dumps(_job().to_doc(), separators=(",", ":"))
    damage = {
        queued_bad: '{"ops": [{"op": "test.noop", "params": {"password": "' + SECRET,
        done_bad: good_doc.replace('"queued"', '"exploded"'),
        typed_bad: good_doc.replace('"received_at":1.0', '"received_at":"' + SECRET + '"'),
        archived_bad: "not JSON " + SECRET,
    }
    conn = sqlite3.connect(db)
    with conn:
        for job_id, text in damage.items():
            conn.execute("UPDATE jobs SET doc = ? WHERE id = ?", (text, job_id))
    conn.close()
    assert '"received_at":"' in damage[typed_bad]  # the replace found its target
    return {
        "queued_bad": queued_bad,
        "done_bad": done_bad,
        "dependant": dependant,
        "healthy": healthy,
        "typed_bad": typed_bad,
        "archived_bad": archived_bad,
    }


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    return subprocess.run(
        [JOBPLANE, *args, "--url", url],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=60,
        check=False,
    )


def test_a_daemon_starts_on_unreadable_records_and_answers_every_path(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    ids = _prepare(db)
    bad = [ids["queued_bad"], ids["done_bad"], ids["typed_bad"]]
    port = free_port()
    proc, lines, reader = start(db, port)
    url = f"http://127.0.0.1:{port}"
    try:
        assert "listening on" in "".join(lines) and proc.poll() is None, "".join(lines)
        with httpx.Client(base_url=url, timeout=30) as http:  # one keep-alive connection

            def get(path: str, **params: Any) -> Any:
                answer = http.get(path, params=params)
                assert answer.status_code == 200, (path, answer.text)
                assert SECRET not in answer.text
                return answer.json()

            listed = {job["id"]: job for job in get("/v1/jobs")["jobs"]}
            for job_id in bad:
                assert listed[job_id]["status"] == "error"
                job = get(f"/v1/jobs/{job_id}")
                assert job["status"] == "error"
                assert job["ops"][0]["result"] == {
                    "error": "UnreadableRecord",
                    "message": UNREADABLE,
                }
                assert get(f"/v1/jobs/{job_id}/wait", timeout=0) in (
                    {"changed": False},
                    {"changed": True, "job": job, "log": []},
                )
                assert (
                    f"job {job_id} has finished: error"
                    in get(f"/v1/jobs/{job_id}/explain")["reasons"]
                )
                cancel = http.post(f"/v1/jobs/{job_id}/cancel")
                assert cancel.status_code == 200 and cancel.json()["ok"] is False
            assert get("/v1/jobs", status="error", limit=1)["next"] == bad[0]
            assert (
                get("/v1/status")["jobs_by_status"]["queued"]
                + get("/v1/status")["jobs_by_status"]["running"]
                <= 2
            )  # only the healthy job and the dependant may be unfinished

        with Client(url) as client:
            assert client.wait_final(ids["healthy"], timeout=30)["status"] == "success"
            dependant = client.wait_final(ids["dependant"], timeout=30)  # never waits forever
            assert dependant["status"] == "error"
            assert (
                f"dependency job {ids['queued_bad']} ended with status error"
                in (dependant["ops"][0]["result"]["message"])
            )
            assert client.get(ids["healthy"])["status"] == "success"

        shown = _cli(url, "quarantine", "list")
        assert shown.returncode == 0, shown.stderr
        for job_id in bad:
            assert str(job_id) in shown.stdout
        assert SECRET not in shown.stdout
        found = json.loads(_cli(url, "quarantine", "list", "--json").stdout)
        assert [job["id"] for job in found] == bad  # the archived one is not read yet
        scanned = json.loads(_cli(url, "quarantine", "list", "--scan", "--json").stdout)
        assert [job["id"] for job in scanned] == sorted([*bad, ids["archived_bad"]])
        assert {job["reason"] for job in scanned} >= {"not JSON", "received_at is not a time"}

        removed = _cli(url, "quarantine", "remove", str(ids["queued_bad"]), str(ids["healthy"]))
        assert removed.returncode == 1
        assert f"removed job {ids['queued_bad']}" in removed.stdout
        assert f"job {ids['healthy']} is readable" in removed.stderr
        assert "Traceback" not in removed.stderr
        again = _cli(url, "quarantine", "remove", str(ids["queued_bad"]))
        assert again.returncode == 5 and "does not exist" in again.stderr
        with Client(url) as client:
            assert client.get(ids["healthy"])["status"] == "success"
            assert [job["id"] for job in client.quarantined()] == [*bad[1:], ids["archived_bad"]]
            assert client.list(status="error")["jobs"][0]["id"] != ids["queued_bad"]

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()
    log = "".join(lines)
    assert SECRET not in log
    for job_id in [*bad, ids["archived_bad"]]:
        assert log.count(f"job {job_id}: {LOGGED}") == 1, log  # once per process and job
    assert log.count(LOGGED) == 4


def test_removing_a_quarantined_job_needs_the_write_role(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("reader-token-0123456789 read\nwriter-token-0123456789 write\n")
    with running_daemon(tmp_path, tokens=TokenStore.from_file(tokens)) as (url, queue):
        [job_id] = queue.store.insert_jobs([_job(status=OpStatus.ERROR)], max_unarchived=None)
        conn = sqlite3.connect(tmp_path / "daemon.db")
        with conn:
            conn.execute("UPDATE jobs SET doc = '{' WHERE id = ?", (job_id,))
        conn.close()
        with Client(url, token="reader-token-0123456789") as reader:
            [found] = reader.quarantined(scan=True)
            assert (found["id"], found["reason"], found["size"]) == (job_id, "not JSON", 1)
            with pytest.raises(Exception, match="needs a write token"):
                reader.remove_quarantined(job_id)
        with Client(url, token="writer-token-0123456789") as writer:
            writer.remove_quarantined(job_id)
            assert writer.quarantined() == []
        with httpx.Client(base_url=url) as http:
            assert http.get("/v1/quarantine").status_code == 401


def test_a_record_damaged_while_the_daemon_runs_never_makes_a_path_fail(tmp_path: Path) -> None:
    with running_daemon(tmp_path) as (url, queue):
        done = queue.submit([{"op": "test.noop"}])
        queue.wait(done, timeout=30)
        later = queue.submit([{"op": "test.noop"}])
        queue.wait(later, timeout=30)
        conn = sqlite3.connect(tmp_path / "daemon.db")
        with conn:
            conn.execute("UPDATE jobs SET doc = ? WHERE id = ?", ('{"ops": [' + SECRET, done))
        conn.close()
        with httpx.Client(base_url=url, timeout=30) as http:  # one keep-alive connection
            for method, path in [
                ("GET", "/v1/jobs"),
                ("GET", "/v1/jobs?status=error"),
                ("GET", f"/v1/jobs/{done}"),
                ("GET", f"/v1/jobs/{done}/wait?timeout=0"),
                ("GET", f"/v1/jobs/{done}/explain"),
                ("GET", "/v1/status"),
                ("GET", "/metrics"),
                ("POST", f"/v1/jobs/{done}/cancel"),
                ("PUT", f"/v1/jobs/{done}/priority"),
                ("POST", f"/v1/jobs/{done}/archive"),
                ("GET", f"/v1/jobs/{later}"),
            ]:
                body = {"priority": "high"} if method == "PUT" else None
                answer = http.request(method, path, json=body)
                assert answer.status_code == 200, (method, path, answer.text)
                assert SECRET not in answer.text
            assert http.get(f"/v1/jobs/{done}").json()["archived"] is True
            jobs = http.get("/v1/jobs", params={"archived": "true"}).json()["jobs"]
            assert [(job["id"], job["status"]) for job in jobs] == [(done, "error")]
