"""Request bodies (pydantic) and the JSON shapes of jobs."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic

from .. import priorities
from ..jobs import MAX_ID, Job, LogEntry, OpStatus, json_error
from ..stores import Unreadable

Priority = Annotated[
    int | str,
    pydantic.WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": priorities.HIGHEST, "maximum": priorities.LOWEST},
                {"type": "string", "enum": list(priorities.NAMES)},
            ],
            "description": "lower runs first; names are high, normal and low",
        }
    ),
]
"""Checked by ``priorities.parse`` (422 invalid_priority), so only documented here."""

_STATUSES = [status.value for status in OpStatus]


def _known_statuses(value: str) -> str:
    for item in value.split(","):
        name = item.strip(" ")
        if name and name not in _STATUSES:
            raise ValueError(f"unknown status {name!r}; statuses are {', '.join(_STATUSES)}")
    return value


_ONE = "|".join(_STATUSES)
StatusList = Annotated[
    str,
    pydantic.AfterValidator(_known_statuses),
    pydantic.WithJsonSchema(
        {"type": "string", "pattern": rf"^ *(?:(?:{_ONE}) *)?(?:, *(?:(?:{_ONE}) *)?)*$"}
    ),
]
"""Comma-separated statuses; spaces around them and empty items are allowed."""


class _Body(pydantic.BaseModel):
    """A request body or a part of one: no unknown fields, no type coercion ("1" is
    not 1, 1 is not true)."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)


class _Request(_Body):
    """A whole request body, checked once, before its parts, for values a response
    could not carry back (the parts are not checked again)."""

    @pydantic.model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        problem = json_error(data)
        if problem is not None:
            raise ValueError(problem)
        return data


class OpSpec(_Body):
    op: str = pydantic.Field(description="a registered op name, e.g. test.delay")
    params: dict[str, Any] = pydantic.Field(default_factory=dict)
    priority: Priority | None = None


class DependencySpec(_Body):
    job: int = pydantic.Field(
        ge=-MAX_ID, le=MAX_ID, description="a job id; negative ids name earlier jobs of a batch"
    )
    statuses: list[str] = pydantic.Field(
        default_factory=lambda: ["success"],
        description="the final statuses of that job that let this one go on; [] accepts any "
        "final status, canceled included",
    )


class JobSpec(_Body):
    ops: list[OpSpec] = pydantic.Field(min_length=1, max_length=1000)
    priority: Priority | None = None
    depends: list[DependencySpec] = pydantic.Field(default_factory=list, max_length=100)

    def to_queue(self) -> dict[str, Any]:
        return {
            "ops": [op.model_dump(exclude_none=True) for op in self.ops],
            "priority": self.priority,
            "depends": [(d.job, d.statuses) for d in self.depends],
        }


class JobBody(JobSpec, _Request):
    """One job, the body of ``POST /v1/jobs``."""


class BatchSpec(_Request):
    jobs: list[JobSpec] = pydantic.Field(min_length=1, max_length=1000)


class PriorityBody(_Request):
    priority: Priority


class DrainBody(_Request):
    drained: bool


class ArchiveBody(_Request):
    older_than: float = pydantic.Field(ge=0, description="seconds since the job ended")


class ErrorDetail(pydantic.BaseModel):
    code: str = pydantic.Field(description="stable and machine-readable, e.g. job_not_found")
    message: str = pydantic.Field(description="for people; names the field at fault")


class ErrorBody(pydantic.BaseModel):
    """Every error answer: ``{"error": {"code": "...", "message": "..."}}``."""

    error: ErrorDetail


def log_json(entry: LogEntry) -> dict[str, Any]:
    return {"serial": entry.serial, "time": entry.time, "message": entry.message}


def job_json(job: Job) -> dict[str, Any]:
    """The full JSON of a job, its log lines grouped by op."""
    return {
        "id": job.id,
        "status": str(job.status),
        "priority": job.priority,
        "ops": [
            {
                "op": op.op,
                "params": op.params,
                "status": str(op.status),
                "priority": op.priority,
                "result": op.result,
                "escalations": op.escalations,
                "log": [log_json(e) for e in job.log if e.op_index == index],
                "received_at": job.received_at,
                "started_at": op.started_at,
                "ended_at": op.ended_at,
            }
            for index, op in enumerate(job.ops)
        ],
        "depends": [
            {"job": d.job_id, "statuses": [str(s) for s in d.statuses]} for d in job.depends
        ],
        "received_at": job.received_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "archived": job.archived,
    }


def summary_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": str(job.status),
        "priority": job.priority,
        "ops": len(job.ops),
        "op_names": [op.op for op in job.ops],
        "received_at": job.received_at,
        "ended_at": job.ended_at,
        "archived": job.archived,
    }


def quarantined_json(found: Unreadable) -> dict[str, Any]:
    """A record that cannot be read: what is wrong with it, never its text."""
    return {
        "id": found.job_id,
        "archived": found.archived,
        "received_at": found.received_at,
        "reason": found.reason,
        "size": found.size,
    }
