"""Fixtures for driving real jobs through a real queue on a real SQLite store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from jobplane.jobs import Job
from jobplane.operations import OpContext, Registry
from jobplane.queue import JobQueue

TIMEOUT = 15.0


class TagParams(pydantic.BaseModel):
    tag: str
    exclusive: list[str] = []


class GateParams(pydantic.BaseModel):
    gate: str
    exclusive: list[str] = []


class Recorder:
    """A registry of test ops that record the order they ran in, and gates that hold a worker."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}
        self._mutex = threading.Lock()
        self.registry = Registry()
        self.registry.add("rec.mark", self._mark, locks=_locks)
        self.registry.add("rec.gate", self._gate, locks=_locks)
        self.registry.add("rec.fail", self._fail)

    def gate(self, name: str) -> threading.Event:
        with self._mutex:
            self.entered.setdefault(name, threading.Event())
            return self.gates.setdefault(name, threading.Event())

    def _mark(self, ctx: OpContext, params: TagParams) -> str:
        with self._mutex:
            self.order.append(params.tag)
        return params.tag

    def _gate(self, ctx: OpContext, params: GateParams) -> str:
        event = self.gate(params.gate)
        self.entered[params.gate].set()
        if not event.wait(TIMEOUT):
            raise TimeoutError(f"gate {params.gate} was never opened")
        return params.gate

    def _fail(self, ctx: OpContext, params: TagParams) -> None:
        raise RuntimeError(f"{params.tag} failed on purpose")


def _locks(params: Any) -> dict[str, list[str]]:
    spec: dict[str, list[str]] = {}
    for full in params.exclusive:
        level, _, name = full.partition(":")
        spec.setdefault(level, []).append(name)
    return spec


def mark(tag: str, **extra: Any) -> dict[str, Any]:
    return {"op": "rec.mark", "params": {"tag": tag, **extra}}


def gate(name: str, **extra: Any) -> dict[str, Any]:
    return {"op": "rec.gate", "params": {"gate": name, **extra}}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def make_queue(db_url: str, recorder: Recorder) -> Iterator[Any]:
    queues: list[JobQueue] = []

    def make(**options: Any) -> JobQueue:
        options.setdefault("workers", 1)
        options.setdefault("lock_timeouts", (0.05, 0.2, 1.0))
        options.setdefault("registry", recorder.registry)
        q = JobQueue.open(db_url, **options)
        queues.append(q)
        return q

    yield make
    for gate_event in recorder.gates.values():
        gate_event.set()
    for q in queues:
        q.close()


def wait_final(q: JobQueue, job_id: int) -> Job:
    return q.wait(job_id, timeout=TIMEOUT)


def wait_status(q: JobQueue, job_id: int, *statuses: str) -> Job:
    """Block (on change notifications, with a timeout) until the job has one of ``statuses``."""
    job = q.get(job_id)
    serial = job.log[-1].serial if job.log else 0
    import time

    deadline = time.monotonic() + TIMEOUT
    while job.status not in statuses:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"job {job_id} stayed {job.status}, wanted {statuses}"
        change = q.wait_for_change(job_id, serial, remaining, since_status=job.status)
        if change is not None:
            job = change.job
            serial = job.log[-1].serial if job.log else serial
    return job
