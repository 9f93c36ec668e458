"""The job model: jobs, their ops, statuses, and how they derive.

A job is an ordered list of ops. Each op has its own status and priority;
the job's status and priority are *derived* from its ops, as in Ganeti:

* status: all ops succeeded -> ``success``; else the first op that is
  ``error``, ``canceling`` or ``canceled`` decides; else the last op that is
  ``waiting`` or ``running``; else ``queued`` (so a job between two ops
  reads ``queued``).
* priority: the lowest number among its unfinished ops (``NORMAL`` when
  none remain).

Jobs are plain data. Only the processor and the queue change them, and
every change is committed to the store (with a version check) before it is
acted upon.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from . import priorities


class OpStatus(StrEnum):
    QUEUED = "queued"
    WAITING = "waiting"
    RUNNING = "running"
    CANCELING = "canceling"
    CANCELED = "canceled"
    SUCCESS = "success"
    ERROR = "error"


JobStatus = OpStatus
"""A job's status takes the same values as an op's."""

FINAL = frozenset({OpStatus.SUCCESS, OpStatus.ERROR, OpStatus.CANCELED})

MAX_ID = 2**63 - 1
"""The largest job id (and log serial) a store holds: a signed 64-bit integer."""


def json_error(value: Any, *, other_types: bool = False) -> str | None:
    """Why ``value`` is not JSON that can be stored and sent back, or None.

    ``other_types``: let values of other types pass (only look for the two
    traps below), for input a schema will convert to JSON afterwards.

    Besides types JSON has no place for, two things pass ``json.dumps`` but
    break a response later: a string with a lone surrogate (``"\\ud800"``,
    which UTF-8 cannot hold) and a float that is not finite (NaN, Infinity).
    """
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                return "strings must be valid Unicode (no lone surrogates)"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite (no NaN or Infinity)"
    if isinstance(value, dict):
        if not other_types and not all(isinstance(key, str) for key in value):
            return "object keys must be strings"
        items: Any = (x for pair in value.items() for x in pair)
    elif isinstance(value, (list, tuple)):
        items = value
    elif other_types:
        return None
    else:
        return f"{type(value).__name__} is not a JSON type"
    for item in items:
        if (problem := json_error(item, other_types=other_types)) is not None:
            return problem
    return None


PENDING = frozenset({OpStatus.QUEUED, OpStatus.WAITING})

PRECEDING_FAILED = "Preceding operation failed"
CANCELED_BY_REQUEST = "canceled by request"
ALL_STATUSES = tuple(OpStatus)


@dataclass(frozen=True, slots=True)
class Dependency:
    """Wait for job ``job_id`` to finish; go on only if it ends in one of ``statuses``.

    An empty ``statuses`` accepts any final status.
    """

    job_id: int
    statuses: tuple[OpStatus, ...] = (OpStatus.SUCCESS,)

    def to_doc(self) -> dict[str, Any]:
        return {"job": self.job_id, "statuses": [str(s) for s in self.statuses]}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Dependency:
        return cls(int(doc["job"]), tuple(OpStatus(s) for s in doc["statuses"]))


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line an op logged; ``serial`` increases by one per job."""

    serial: int
    op_index: int
    time: float
    message: str

    def to_doc(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "op_index": self.op_index,
            "time": self.time,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ControlRequests:
    """Control asked of a job's owning daemon by another client, not yet applied.

    ``serial`` counts the requests ever recorded for the job; the owner clears
    what it applied with ``Store.clear_requests(job, serial)``, which keeps any
    newer request. Applying a request twice is harmless (cancel and priority
    changes are idempotent), so an owner lost between applying and clearing
    costs nothing.
    """

    serial: int = 0
    cancel: bool = False
    priority: int | None = None

    @property
    def pending(self) -> bool:
        return self.cancel or self.priority is not None


NO_REQUESTS = ControlRequests()


@dataclass(slots=True)
class OpState:
    """One op of a job, as stored."""

    op: str
    params: dict[str, Any]
    priority: int = priorities.NORMAL
    status: OpStatus = OpStatus.QUEUED
    result: Any = None
    started_at: float | None = None
    ended_at: float | None = None
    escalations: int = 0
    """How many steps escalation (lock waits) and aging moved this op's priority."""
    cooperative: bool = False
    """This run of the op called ``check_cancel``/``sleep``: a cancel is accepted while it runs.

    Stored (saved without waiting at the op's first check), so that any
    daemon answers a cancel as the owner would; a new run starts without it.
    """

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def to_doc(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "params": self.params,
            "priority": self.priority,
            "status": str(self.status),
            "result": self.result,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "escalations": self.escalations,
            **({"cooperative": True} if self.cooperative else {}),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> OpState:
        return cls(
            op=doc["op"],
            params=doc["params"],
            priority=int(doc["priority"]),
            status=OpStatus(doc["status"]),
            result=doc.get("result"),
            started_at=doc.get("started_at"),
            ended_at=doc.get("ended_at"),
            escalations=int(doc.get("escalations", 0)),
            cooperative=bool(doc.get("cooperative", False)),
        )


@dataclass(slots=True)
class Job:
    """A job as stored. ``version`` is bumped by the store on every save."""

    id: int
    ops: list[OpState]
    received_at: float
    depends: tuple[Dependency, ...] = ()
    started_at: float | None = None
    ended_at: float | None = None
    archived: bool = False
    version: int = 0
    log: list[LogEntry] = field(default_factory=list)
    """Filled only by reads that ask for the log; never saved with the job."""
    owner: int | None = None
    """The daemon that claimed the job, or None while it is unowned (see ``stores.base``)."""
    fence: int = 0
    """The fencing token of the current claim; the owner's saves carry it."""
    requests: ControlRequests = NO_REQUESTS
    """Control requests waiting for the owner; read-only (the store keeps them apart)."""

    @property
    def status(self) -> OpStatus:
        return derive_status(self.ops)

    @property
    def priority(self) -> int:
        return derive_priority(self.ops)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def current_op(self) -> int | None:
        """Index of the first op that has not finished, or None."""
        for index, op in enumerate(self.ops):
            if not op.is_final:
                return index
        return None

    def mark_unfinished(self, status: OpStatus, result: Any, now: float) -> None:
        """Give every unfinished op ``status`` (Ganeti's ``MarkUnfinishedOps``).

        A final status also records ``result`` and the end time, of the ops
        and, once none is left unfinished, of the job. Cancel uses it: every
        unfinished op becomes ``canceling`` (or ``canceled`` at once), never
        just the current one.
        """
        final = status in FINAL
        for op in self.ops:
            if not op.is_final:
                op.status = status
                if final:
                    op.result, op.ended_at = result, now
        if final:
            self.ended_at = now

    def end_op(self, index: int, outcome: OpStatus, result: Any, now: float) -> None:
        """Record op ``index``'s final ``outcome``; the ops after it end too unless it succeeded.

        After an error they fail ("Preceding operation failed"); after a
        cancel, or if the job was being canceled, they are canceled.
        """
        canceling = any(op.status is OpStatus.CANCELING for op in self.ops[index:])
        op = self.ops[index]
        op.status, op.result, op.ended_at = outcome, result, now
        if outcome is OpStatus.ERROR:
            self.mark_unfinished(OpStatus.ERROR, PRECEDING_FAILED, now)
        elif outcome is OpStatus.CANCELED or canceling:
            self.mark_unfinished(OpStatus.CANCELED, CANCELED_BY_REQUEST, now)
        elif self.current_op() is None:
            self.ended_at = now

    def clone(self) -> Job:
        """A copy whose ops can be changed without touching this one."""
        return Job(
            self.id,
            [
                OpState(
                    op.op,
                    op.params,
                    op.priority,
                    op.status,
                    op.result,
                    op.started_at,
                    op.ended_at,
                    op.escalations,
                    op.cooperative,
                )
                for op in self.ops
            ],
            self.received_at,
            self.depends,
            self.started_at,
            self.ended_at,
            self.archived,
            self.version,
            list(self.log),
            self.owner,
            self.fence,
            self.requests,
        )

    def to_doc(self) -> dict[str, Any]:
        """The JSON document the stores keep (everything but id, version and log)."""
        return {
            "ops": [op.to_doc() for op in self.ops],
            "depends": [d.to_doc() for d in self.depends],
            "received_at": self.received_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }

    @classmethod
    def from_doc(cls, job_id: int, version: int, archived: bool, doc: dict[str, Any]) -> Job:
        return cls(
            id=job_id,
            ops=[OpState.from_doc(o) for o in doc["ops"]],
            received_at=doc["received_at"],
            depends=tuple(Dependency.from_doc(d) for d in doc.get("depends", ())),
            started_at=doc.get("started_at"),
            ended_at=doc.get("ended_at"),
            archived=archived,
            version=version,
        )


def derive_status(ops: list[OpState]) -> OpStatus:
    """A job's status from its ops' statuses (see the module docstring)."""
    if len(ops) == 1:  # most jobs: the job's status is its op's
        return ops[0].status
    last_active: OpStatus | None = None
    all_success = True
    for op in ops:
        status = op.status
        if status in (OpStatus.ERROR, OpStatus.CANCELING, OpStatus.CANCELED):
            return status
        if status is not OpStatus.SUCCESS:
            all_success = False
        if status in (OpStatus.WAITING, OpStatus.RUNNING):
            last_active = status
    if all_success:
        return OpStatus.SUCCESS
    return last_active or OpStatus.QUEUED


def derive_priority(ops: list[OpState]) -> int:
    """The lowest priority number among unfinished ops, NORMAL when none remain."""
    lowest: int | None = None
    for op in ops:
        if op.status not in FINAL and (lowest is None or op.priority < lowest):
            lowest = op.priority
    return priorities.NORMAL if lowest is None else lowest


# -- state changes ---------------------------------------------------------------
#
# The engine changes a job only through these, on a copy that it then
# commits (see ``stores.base``, compare-and-set): they never touch a store.

PRECEDING_FAILED = "Preceding operation failed"
CANCELED_BY_REQUEST = "canceled by request"
DAEMON_LOST = "daemon lost while the operation was running"


def start_op(job: Job, index: int, now: float) -> None:
    """Op ``index`` starts running now (the job too, if it had not started)."""
    op = job.ops[index]
    op.status, op.started_at, op.cooperative = OpStatus.RUNNING, now, False
    if job.started_at is None:
        job.started_at = now


def mark_cooperative(job: Job, index: int) -> None:
    """Op ``index``, running, checked for cancellation: a cancel is accepted while it runs."""
    job.ops[index].cooperative = True


def end_op(job: Job, index: int, outcome: OpStatus, result: Any, now: float) -> None:
    """Record op ``index``'s outcome; fail or cancel the ops after it if it did not succeed.

    An op that was ``canceling`` cancels the ops after it even if it
    succeeded; the job ends when no op is left unfinished.
    """
    op = job.ops[index]
    was_canceling = op.status is OpStatus.CANCELING
    op.status, op.result, op.ended_at = outcome, result, now
    rest: OpStatus | None = None
    if outcome is OpStatus.ERROR:
        rest = OpStatus.ERROR
    elif outcome is OpStatus.CANCELED or was_canceling:
        rest = OpStatus.CANCELED
    if rest is not None:
        reason = PRECEDING_FAILED if rest is OpStatus.ERROR else CANCELED_BY_REQUEST
        for later in job.ops[index + 1 :]:
            later.status, later.result, later.ended_at = rest, reason, now
    if job.current_op() is None:
        job.ended_at = now


def recover(
    job: Job, retry_on_crash: Callable[[str], bool | None], now: float, message: str = DAEMON_LOST
) -> bool:
    """Apply the crash rules to a job whose daemon was lost; True if it changed.

    ``retry_on_crash(op_name)`` tells whether an op may run again, or None if
    the op is not registered (the job then fails at that op). The rules: a
    started ``running`` op that may run again goes back to ``queued``; any
    other started op (``running`` or ``canceling``) ends in error with
    ``message``; a ``canceling`` op that had not started ends ``canceled``;
    ``waiting`` goes back to ``queued``.
    """
    changed = False
    for index, op in enumerate(job.ops):
        if op.is_final:
            continue
        retry = retry_on_crash(op.op)
        if retry is None:
            _fail_from(job, index, f"op {op.op!r} is not registered in this daemon", now)
            return True
        if op.status in (OpStatus.RUNNING, OpStatus.CANCELING) and op.started_at is not None:
            if op.status is OpStatus.RUNNING and retry:
                op.status, op.started_at, op.cooperative = OpStatus.QUEUED, None, False
                changed = True
                continue
            _fail_from(job, index, message, now)
            return True
        if op.status is OpStatus.CANCELING:
            for later in job.ops[index:]:
                later.status, later.result, later.ended_at = (
                    OpStatus.CANCELED,
                    CANCELED_BY_REQUEST,
                    now,
                )
            job.ended_at = now
            return True
        if op.status is OpStatus.WAITING:
            op.status = OpStatus.QUEUED
            changed = True
    return changed


def _fail_from(job: Job, index: int, message: str, now: float) -> None:
    job.ops[index].status = OpStatus.ERROR
    job.ops[index].result = {"error": "Crash", "message": message}
    job.ops[index].ended_at = now
    for later in job.ops[index + 1 :]:
        later.status, later.result, later.ended_at = OpStatus.ERROR, PRECEDING_FAILED, now
    job.ended_at = now
