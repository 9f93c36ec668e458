"""The HTTP API's answers as pydantic models: the daemon documents them, the clients return them.

One definition for both sides, so they cannot drift apart: the routes in
``http/app.py`` declare these as their response models (so they are in the
OpenAPI document, and the fuzz test checks every answer against them), and
``Client`` / ``AsyncClient`` parse each answer into them.

The names follow ``JobQueue``'s where one exists: a ``JobInfo`` has the
``id``, ``status``, ``priority``, ``ops`` and timestamps of a ``jobs.Job``;
``JobUpdate`` is what ``wait_for_change`` returns; ``Explanation`` and
``DaemonStatus`` mirror ``explain.Explanation`` and ``queue.QueueStatus``.

The models ignore fields they do not know, so a client keeps working
against a newer daemon that answers with more; they are frozen (answers
are facts, not something to edit). This module imports only pydantic, so
the clients need neither FastAPI nor the queue.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from .jobs import FINAL, OpStatus

__all__ = [
    "ArchiveDone",
    "Archived",
    "DaemonStatus",
    "DependencyInfo",
    "DrainState",
    "Explanation",
    "Health",
    "JobInfo",
    "JobPage",
    "JobSummary",
    "JobUpdate",
    "LockState",
    "LockWaiter",
    "LogLine",
    "OpDescription",
    "OpInfo",
    "Outcome",
    "QuarantineList",
    "QuarantinedJob",
    "Submitted",
    "SubmittedBatch",
    "WaitAnswer",
]


class _Answer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)


class LogLine(_Answer):
    """One line an op logged; ``serial`` increases by one per job."""

    serial: int
    time: float = pydantic.Field(description="seconds since the epoch")
    message: str


class OpInfo(_Answer):
    """One op of a job: what it runs, where it is, what it returned, what it logged."""

    op: str
    params: dict[str, Any]
    status: OpStatus
    priority: int = pydantic.Field(description="its current priority, lower runs first")
    result: Any = pydantic.Field(
        description="the op's return value; for an op that failed, its error"
    )
    escalations: int = pydantic.Field(description="priority steps gained by escalation or aging")
    log: list[LogLine]
    received_at: float
    started_at: float | None
    ended_at: float | None


class DependencyInfo(_Answer):
    job: int
    statuses: list[OpStatus] = pydantic.Field(
        description="the job goes on only if that job ends in one of these"
    )


class JobInfo(_Answer):
    """A job as committed, with its ops and their log (``GET /v1/jobs/{id}``)."""

    id: int
    status: OpStatus
    priority: int
    ops: list[OpInfo]
    depends: list[DependencyInfo]
    received_at: float
    started_at: float | None
    ended_at: float | None
    archived: bool

    @property
    def is_final(self) -> bool:
        """True once the job has ended (success, error or canceled): it never changes again."""
        return self.status in FINAL

    @property
    def log(self) -> list[LogLine]:
        """Every op's log lines in serial order, as ``jobs.Job.log``."""
        return sorted((entry for op in self.ops for entry in op.log), key=lambda e: e.serial)

    @property
    def last_serial(self) -> int:
        """The serial of the job's last log line (0 without any): for ``wait_for_change``."""
        return max((entry.serial for op in self.ops for entry in op.log), default=0)


class JobSummary(_Answer):
    """A job in a list (``GET /v1/jobs``): no params, results or log."""

    id: int
    status: OpStatus
    priority: int
    ops: int = pydantic.Field(description="how many ops the job has")
    op_names: list[str]
    op_priorities: list[int] = pydantic.Field(description="each op's current priority")
    escalations: int = pydantic.Field(description="priority steps gained, summed over the ops")
    received_at: float
    started_at: float | None
    ended_at: float | None
    archived: bool


class JobPage(_Answer):
    jobs: list[JobSummary]
    next: int | None = pydantic.Field(
        description="pass as ``after`` (newest first: as ``before``) for the next page; "
        "null on the last page"
    )


class Submitted(_Answer):
    id: int


class SubmittedBatch(_Answer):
    ids: list[int] = pydantic.Field(description="in the order of the batch")


class JobUpdate(_Answer):
    """What ``wait_for_change`` saw: the job now, and its log lines after the given serial."""

    job: JobInfo
    log: list[LogLine]


class WaitAnswer(_Answer):
    """The long poll's answer: ``log`` only when ``changed``; ``job`` when changed, or
    when the daemon stops (``stopping``) and gives its last look at the job."""

    changed: bool
    job: JobInfo | None = None
    log: list[LogLine] | None = None
    stopping: bool = False


class Outcome(_Answer):
    """Whether a cancel or priority change was done, and what happened, in words."""

    ok: bool
    message: str


class Explanation(_Answer):
    """Why a job is where it is, in words (``reasons``) and in fields."""

    job: int
    status: OpStatus
    priority: int
    reasons: list[str]
    ahead: dict[str, int] | None = pydantic.Field(
        description="queued: jobs ahead of it, by higher_priority and same_priority"
    )
    waiting_for_locks: list[dict[str, Any]]
    waiting_for_job: int | None
    escalations: int


class LockWaiter(_Answer):
    priority: int
    shared: bool
    job: int | None


class LockState(_Answer):
    """A lock: its holders and, in grant order, its waiters."""

    level: str
    name: str
    mode: Literal["exclusive", "shared"] | None = pydantic.Field(
        description="how it is held; null when free"
    )
    owners: list[int] = pydantic.Field(description="the jobs holding it")
    since: float | None
    pending: list[LockWaiter]


class OpDescription(_Answer):
    """A registered op: its name, what it does and its parameters' JSON Schema."""

    name: str
    description: str
    params_schema: dict[str, Any]
    big_lock: Literal["shared", "exclusive"]
    retry_on_crash: bool


class DaemonStatus(_Answer):
    workers: int
    running_ops: int
    jobs_by_status: dict[str, int]
    jobs_by_priority: dict[int, int] = pydantic.Field(
        description="unfinished jobs by priority (JSON object keys are strings)"
    )
    drained: bool
    version: str
    oldest_queued_age: float | None = pydantic.Field(
        description="seconds the oldest job waiting for a worker has waited"
    )
    open_waits: int = pydantic.Field(description="long polls open now")


class DrainState(_Answer):
    drained: bool


class Archived(_Answer):
    archived: list[int] = pydantic.Field(description="the jobs archived now")


class ArchiveDone(_Answer):
    ok: bool


class QuarantinedJob(_Answer):
    """A job whose stored record cannot be read: what is wrong, never its text."""

    id: int
    archived: bool
    received_at: float | None
    reason: str
    size: int = pydantic.Field(description="the record's length in bytes")


class QuarantineList(_Answer):
    jobs: list[QuarantinedJob]


class Health(_Answer):
    status: Literal["ok"]
