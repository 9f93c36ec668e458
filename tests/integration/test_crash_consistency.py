"""kill -9 a real daemon at random moments under load; what it acknowledged stays and ends right.

A real ``jobplane serve`` on SQLite runs the ops of ``crash_ops.py``, which
record every execution in a file outside the database. Two client threads
submit over HTTP all the time: single jobs, batches (some jobs depending on
earlier ones of the batch) and jobs depending on earlier acknowledged jobs.
The daemon is killed with SIGKILL after a random number of acknowledged
submissions plus a random delay, restarted, and so on for a few rounds; then it
runs until every job is final, and the test checks (docs/jobs.md,
"Persistence and crash recovery"):

* every acknowledged job (a 201) exists, with the ids it was acknowledged with;
* a batch exists whole or not at all; one that got no answer may be either;
  a refused one (an error answer) not at all;
* no job is lost or stuck: all are final within a timeout;
* no op ran for a job the store does not have, and an ordinary op never ran
  twice; an op running at a kill ends in error "daemon stopped while the
  operation was running" unless it is ``retry_on_crash``, which runs again;
* every job ends right: it succeeds unless one of its ops was stopped by a
  kill or a dependency ended in a status it did not accept; ops that did not
  run never did.

The plan (what is submitted, when the daemon is killed) comes from a seed,
printed on failure; ``CRASH_TEST_SEED=N`` replays one. Thread timing still
varies from run to run.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobplane.client import Client
from jobplane.errors import DaemonUnavailable, JobplaneError

from .crash_ops import LOG_ENV
from .http_server import free_port

pytestmark = pytest.mark.slow

SEED_ENV = "CRASH_TEST_SEED"
JOBPLANE = str(Path(sys.executable).parent / "jobplane")
KILLS = 3
WORKERS = 3
DRIVERS = 2
START_TIMEOUT = 30.0
ACK_TIMEOUT = 30.0
FINAL_TIMEOUT = 60.0
POLL = 0.05
CRASHED = "daemon stopped while the operation was running"
UNFINISHED = "queued,waiting,running,canceling"
FINAL = {"success", "error", "canceled"}


# -- the daemon ------------------------------------------------------------------------------


class Daemon:
    """``jobplane serve`` on one database and port, started and killed as often as needed."""

    def __init__(self, directory: Path, exec_log: Path) -> None:
        self.db = directory / "crash.db"
        self.log = directory / "daemon.log"
        self.url = f"http://127.0.0.1:{free_port()}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
        pythonpath = [str(Path(__file__).parent), self.env.get("PYTHONPATH", "")]
        self.env.update(PYTHONPATH=os.pathsep.join(filter(None, pythonpath)))
        self.env[LOG_ENV] = str(exec_log)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            *(JOBPLANE, "serve", "--db", f"sqlite:///{self.db}"),
            *("--port", self.url.rsplit(":", 1)[1], "--workers", str(WORKERS)),
            *("--ops", "crash_ops", "--lock-timeouts", "0.01,0.05,0.2"),
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # polling with a timeout: waiting on another process
            assert self.process.poll() is None, f"the daemon exited:\n{self.tail()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"the daemon did not start:\n{self.tail()}"
            time.sleep(POLL)

    def kill(self) -> None:
        assert self.process is not None
        assert self.process.poll() is None, f"the daemon died before its kill:\n{self.tail()}"
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


# -- the load --------------------------------------------------------------------------------


@dataclass
class Request:
    """One submission: the jobs sent, and what came back."""

    marker: str
    jobs: list[dict[str, Any]]
    outcome: str = "unsent"  # then "acknowledged", "refused" or "unanswered"
    ids: list[int] = field(default_factory=list)


class Load:
    """Client threads that submit while the daemon is up (``up`` set), until ``finish``."""

    def __init__(self, url: str, seed: int) -> None:
        self.url = url
        self.up = threading.Event()
        self._done = threading.Event()
        self._changed = threading.Condition()
        self.acknowledged: list[int] = []  # job ids, in order of the answers
        self.requests: list[Request] = []
        self._threads = [
            threading.Thread(
                target=self._drive, args=(n, random.Random(seed + n)), name=f"load-{n}"
            )
            for n in range(DRIVERS)
        ]
        self.errors: list[BaseException] = []

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def finish(self) -> None:
        self._done.set()
        self.up.set()  # lets a waiting driver see _done
        for thread in self._threads:
            thread.join(30)
            assert not thread.is_alive(), f"{thread.name} did not stop"

    def wait_acknowledged(self, more: int) -> None:
        """Block until ``more`` further jobs are acknowledged (or a driver failed)."""
        with self._changed:
            target = len(self.acknowledged) + more
            reached = self._changed.wait_for(
                lambda: len(self.acknowledged) >= target or bool(self.errors), ACK_TIMEOUT
            )
        assert not self.errors, f"a load thread failed: {self.errors[0]!r}"
        assert reached, f"only {len(self.acknowledged)} of {target} jobs acknowledged in time"

    def _drive(self, driver: int, rng: random.Random) -> None:
        client = Client(self.url, timeout=15.0)
        try:
            count = 0
            while self.up.wait(ACK_TIMEOUT * 2) and not self._done.is_set():
                count += 1
                request = self._plan(rng, f"d{driver}r{count}")
                with self._changed:
                    self.requests.append(request)
                if not self._send(client, request):
                    client.close()  # its connection died with the daemon
                    client = Client(self.url, timeout=15.0)
        except BaseException as exc:  # reported by wait_acknowledged and the test
            with self._changed:
                self.errors.append(exc)
                self._changed.notify_all()
        finally:
            client.close()

    def _send(self, client: Client, request: Request) -> bool:
        """Submit ``request``; False if the daemon did not answer."""
        try:
            if len(request.jobs) == 1:
                job = request.jobs[0]
                ids = [
                    client.submit(
                        job["ops"], priority=job["priority"], depends=job.get("depends", ())
                    )
                ]
            else:
                ids = client.submit_many(request.jobs)
        except DaemonUnavailable:
            request.outcome = "unanswered"  # maybe committed, maybe not
            return False
        except JobplaneError:
            request.outcome = "refused"
            return True
        with self._changed:
            request.outcome, request.ids = "acknowledged", ids
            self.acknowledged.extend(ids)
            self._changed.notify_all()
        return True

    def _plan(self, rng: random.Random, marker: str) -> Request:
        kind = rng.choices(("single", "batch", "after"), weights=(3, 2, 2))[0]
        if kind == "batch":
            jobs = [_job(rng, f"{marker}.j{i}") for i in range(rng.randint(2, 5))]
            for index in range(1, len(jobs)):
                if rng.random() < 0.5:
                    jobs[index]["depends"] = [
                        {"job": -rng.randint(1, index), "statuses": _accepts(rng)}
                    ]
            return Request(marker, jobs)
        job = _job(rng, f"{marker}.j0")
        with self._changed:
            earlier = list(self.acknowledged[-50:])
        if kind == "after" and earlier:
            job["depends"] = [{"job": rng.choice(earlier), "statuses": _accepts(rng)}]
        return Request(marker, [job])


SHAPES = (("once",), ("again",), ("once", "again"), ("again", "once"), ("again", "again"))


def _job(rng: random.Random, tag: str) -> dict[str, Any]:
    ops = []
    for index, kind in enumerate(rng.choice(SHAPES)):
        params: dict[str, Any] = {
            "tag": f"{tag}.o{index}",
            "duration": rng.choice((0, 0.005, 0.02)),
        }
        if rng.random() < 0.3:
            params["node"] = f"n{rng.randrange(3)}"
        ops.append({"op": f"crash.{kind}", "params": params})
    return {"ops": ops, "priority": rng.choice(("high", "normal", "low", 5))}


def _accepts(rng: random.Random) -> list[str]:
    return rng.choice((["success"], ["success", "error", "canceled"]))


# -- after the rounds --------------------------------------------------------------------------


def wait_all_final(url: str) -> None:
    deadline = time.monotonic() + FINAL_TIMEOUT
    with Client(url, timeout=15.0) as client:
        while True:  # polling with a timeout: waiting on another process
            left = client.list(status=UNFINISHED, limit=20)["jobs"]
            if not left:
                return
            assert time.monotonic() < deadline, (
                f"jobs still unfinished after {FINAL_TIMEOUT} s (stuck?): "
                + ", ".join(f"{job['id']} {job['status']}" for job in left)
            )
            time.sleep(POLL)


def all_jobs(url: str) -> dict[int, dict[str, Any]]:
    jobs: dict[int, dict[str, Any]] = {}
    with Client(url, timeout=15.0) as client:
        after = None
        while True:
            page = client.list(limit=1000, after=after, archived=None)
            for summary in page["jobs"]:
                jobs[summary["id"]] = client.get(summary["id"])
            after = page["next"]
            if after is None:
                return jobs


def executions(exec_log: Path) -> Counter[tuple[str, str, int, int]]:
    """(kind, op tag, job id, op index) of every execution, counted."""
    runs: Counter[tuple[str, str, int, int]] = Counter()
    text = exec_log.read_text() if exec_log.exists() else ""
    for line in text.splitlines():
        kind, tag, job_id, op_index = line.split()
        runs[(kind, tag, int(job_id), int(op_index))] += 1
    return runs


def message(op: dict[str, Any]) -> object:
    result = op["result"]
    return result.get("message") if isinstance(result, dict) else result


def job_tag(job: dict[str, Any]) -> str:
    return str(job["ops"][0]["params"]["tag"]).rsplit(".o", 1)[0]


def check(
    requests: list[Request], jobs: dict[int, dict[str, Any]], runs: Counter[Any]
) -> dict[str, int]:
    """Every promise in the module docstring; returns counts for the report."""
    by_tag = {job_tag(job): job for job in jobs.values()}
    assert len(by_tag) == len(jobs), "two jobs carry the same tag"
    sent = {f"{r.marker}.j{i}" for r in requests for i in range(len(r.jobs))}
    assert set(by_tag) <= sent, f"jobs nobody submitted: {sorted(set(by_tag) - sent)[:10]}"

    for request in requests:
        tags = [f"{request.marker}.j{i}" for i in range(len(request.jobs))]
        found = [tag for tag in tags if tag in by_tag]
        if request.outcome == "acknowledged":
            assert [by_tag[tag]["id"] if tag in by_tag else None for tag in tags] == request.ids, (
                f"acknowledged {request.marker} {request.ids}, found {found}"
            )
        elif request.outcome == "unanswered":
            assert len(found) in (0, len(tags)), f"batch {request.marker} in part: {found}"
        else:
            assert not found, f"{request.outcome} {request.marker} exists: {found}"

    ran: dict[str, list[tuple[str, int, int]]] = {}
    for (kind, tag, job_id, op_index), count in runs.items():
        ran.setdefault(tag, []).extend([(kind, job_id, op_index)] * count)
    for tag, executions_of_tag in ran.items():
        job = by_tag.get(tag.rsplit(".o", 1)[0])
        assert job is not None, f"op {tag} ran for a job the store does not have"
        for kind, job_id, op_index in executions_of_tag:
            assert (job["id"], job["ops"][op_index]["params"]["tag"]) == (job_id, tag)
            assert job["ops"][op_index]["op"] == f"crash.{kind}"

    counts = Counter[str]()
    for job in jobs.values():
        statuses = [op["status"] for op in job["ops"]]
        assert job["status"] in FINAL and set(statuses) <= FINAL, f"job {job['id']}: {statuses}"
        assert (job["status"] == "success") == all(s == "success" for s in statuses), job
        crashed = False
        for op in job["ops"]:
            times = len(ran.get(op["params"]["tag"], []))
            if op["op"] == "crash.once":
                assert times <= 1, f"job {job['id']}: {op['op']} ran {times} times"
            if op["status"] == "success":
                assert times >= 1, f"job {job['id']}: {op['op']} succeeded without running"
            elif message(op) == CRASHED:
                assert op["op"] == "crash.once", f"job {job['id']}: retry_on_crash op {op}"
                crashed = True
                counts["ops stopped by a kill"] += 1
            else:  # these ops never fail by themselves, nor is anything canceled
                assert op["status"] == "error" and times == 0, f"job {job['id']}: {op}"
            if op["op"] == "crash.again" and times > 1:
                counts["retry_on_crash ops run again"] += 1
        accepted = all(jobs[dep["job"]]["status"] in dep["statuses"] for dep in job["depends"])
        if not crashed and accepted:
            assert job["status"] == "success", f"job {job['id']} should have succeeded: {job}"
        if not accepted:
            assert job["status"] == "error", f"job {job['id']}: a dependency was not accepted"
            counts["jobs failed by a dependency"] += 1
    counts.update(f"requests {r.outcome}" for r in requests)
    return dict(counts)


def test_kill_9_at_random_moments_loses_nothing_acknowledged(tmp_path: Path) -> None:
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"crash consistency seed {seed}: rerun with {SEED_ENV}={seed}")
    rng = random.Random(seed)
    exec_log = tmp_path / "executions.log"
    daemon = Daemon(tmp_path, exec_log)
    try:
        with Load(daemon.url, rng.randrange(2**32)) as load:
            for _ in range(KILLS):
                daemon.start()
                load.up.set()
                load.wait_acknowledged(rng.randint(10, 60))
                time.sleep(rng.uniform(0, 0.05))  # picks the moment of the kill; no waiting on it
                daemon.kill()
                load.up.clear()
            daemon.start()
            load.up.set()
            load.wait_acknowledged(rng.randint(5, 20))
        assert not load.errors, f"a load thread failed: {load.errors[0]!r}"
        wait_all_final(daemon.url)
        counts = check(load.requests, all_jobs(daemon.url), executions(exec_log))
        print(f"{len(load.acknowledged)} jobs acknowledged; {counts}")
        assert counts.get("ops stopped by a kill", 0) + counts.get(
            "retry_on_crash ops run again", 0
        ), "no kill caught an op running: the test proved little"
    except AssertionError as exc:
        exc.add_note(f"seed {seed}: rerun with {SEED_ENV}={seed}\ndaemon log:\n{daemon.tail()}")
        raise
    finally:
        daemon.stop()
