"""Request bodies (pydantic), path and query values, and the JSON shapes of jobs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from fastapi import Path
from starlette.convertors import Convertor, register_url_convertor

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


def _digits(value: object) -> object:
    """A number in a path or a query: digits only ("1.0", "+1", " 1" and "1e0" are refused)."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise ValueError("must be an integer written in digits, e.g. 42")
        if len(value) > 20:
            raise ValueError(f"must be at most {MAX_ID}")
        return int(value)
    return value


def _true_false(value: object) -> object:
    """A boolean in a query: true or false, nothing else."""
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError("must be true or false")
        return value == "true"
    return value


Digits = pydantic.BeforeValidator(_digits)
TrueFalse = pydantic.BeforeValidator(_true_false)
JobId = Annotated[int, Digits, Path(ge=1, le=MAX_ID, description="a job id")]

_LITERALS = ("batch",)
"""Paths /v1/jobs/NAME of their own: list each here, or GET /v1/jobs/NAME is job NAME."""


class _JobIdConvertor(Convertor[str]):
    """A path segment that is not a literal sibling path: /v1/jobs/batch is not job "batch".

    So ``GET /v1/jobs/batch`` finds only ``POST /v1/jobs/batch`` and answers 405,
    while "1.0" still reaches the route and gets 422 from ``_digits``.
    """

    regex = f"(?!(?:{'|'.join(_LITERALS)})$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("job_id", _JobIdConvertor())
JOB = "/v1/jobs/{job_id:job_id}"
"""The path of a job: routes under it use ``f"{JOB}/..."`` and a ``job_id: JobId`` parameter."""


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


Order = Literal["asc", "desc"]
"""The order of ``GET /v1/jobs``: by ascending id (oldest first) or descending."""

_PRIORITY_NUMBER = r"-?\d{1,2}"
_PRIORITY_ONE = rf"(?:{_PRIORITY_NUMBER}|{'|'.join(priorities.NAMES)})"
PriorityFilter = Annotated[
    str,
    pydantic.Field(
        pattern=rf"^{_PRIORITY_ONE}(?:\.\.{_PRIORITY_ONE})?$",
        description="one priority (-20..19 or a name) or an inclusive range FROM..TO, "
        "e.g. -20..-1; a job's priority is that of its unfinished ops (normal once finished)",
    ),
]


def priority_range(text: str | None) -> tuple[int, int] | None:
    """``"-5"`` -> ``(-5, -5)``, ``"-20..-1"`` -> ``(-20, -1)``, ``"high"`` -> ``(-10, -10)``.

    A query string is text: each end is a name or an integer written in digits
    (``priorities.parse_text``); the queue checks the range.
    """
    if text is None:
        return None
    lowest, _, highest = text.partition("..")
    return priorities.parse_text(lowest), priorities.parse_text(highest or lowest)


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


JOB_EXAMPLES: dict[str, dict[str, Any]] = {
    "one_op": {
        "summary": "One op",
        "value": {"ops": [{"op": "test.noop"}]},
    },
    "locks_and_priority": {
        "summary": "Two ops, one holding a lock, at high priority",
        "description": "The ops run in order; the first holds `node:n1` exclusively for a "
        "second. The job runs before normal and low ones; the second op drops to low.",
        "value": {
            "ops": [
                {"op": "test.delay", "params": {"duration": 1, "exclusive": ["node:n1"]}},
                {"op": "test.noop", "priority": "low"},
            ],
            "priority": "high",
        },
    },
    "after_another_job": {
        "summary": "After job 1, whatever its end",
        "description": "Waits until job 1 has ended; `statuses: []` accepts any final "
        'status (the default, `["success"]`, only success).',
        "value": {
            "ops": [{"op": "test.delay", "params": {"message": "job 1 is done"}}],
            "depends": [{"job": 1, "statuses": []}],
        },
    },
}
"""Examples of the body of ``POST /v1/jobs``, shown in the OpenAPI document."""

BATCH_EXAMPLES: dict[str, dict[str, Any]] = {
    "chain": {
        "summary": "Two jobs, the second after the first",
        "description": "`depends` job -1 is the job just before in the batch.",
        "value": {
            "jobs": [
                {"ops": [{"op": "test.delay", "params": {"duration": 0.5}}]},
                {"ops": [{"op": "test.noop"}], "depends": [{"job": -1}]},
            ]
        },
    },
}
"""Examples of the body of ``POST /v1/jobs/batch``, shown in the OpenAPI document."""


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
        "op_priorities": [op.priority for op in job.ops],
        "escalations": sum(op.escalations for op in job.ops),
        "started_at": job.started_at,
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
