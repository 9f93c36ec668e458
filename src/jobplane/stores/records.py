"""Reading stored job records strictly, and what a record that cannot be read becomes.

A store keeps each job as a JSON document (``Job.to_doc()``). A document
spoiled behind the store's back (a disk fault, a bad restore, a hand edit)
must not break a daemon: a record that is not JSON, or not a job document
(a missing field, a field of the wrong type, an unknown status, a priority
off the scale ...), reads as a *quarantined* job (guarantee 7 of
:mod:`jobplane.stores.base`): one op in ``error`` whose result says
:data:`UNREADABLE`. It is final, so it is never run again, and a job that
depends on it sees a dependency that ended in ``error``.

``job_from_record`` checks every field it reads, so that no reader later
meets a value of the wrong type (a string priority, say, would fail every
listing that sorts or compares it). The reasons it gives name the field and
what is wrong with it, never the record's text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from .. import priorities
from ..jobs import Dependency, Job, OpState, OpStatus

UNREADABLE = "stored record unreadable"
"""The message of a quarantined job's one op."""

UNREADABLE_OP = "(unreadable record)"
"""The op name a quarantined job shows."""

_STATUSES = {status.value: status for status in OpStatus}


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record that cannot be read, as ``Store.quarantined()`` lists it."""

    job_id: int
    archived: bool
    received_at: float | None
    reason: str
    """What is wrong with the record; never its text."""
    size: int
    """The length of the stored record (characters, or bytes if not text)."""


class UnreadableRecord(Exception):
    """A stored record is not a job document; ``str()`` says why. Never leaves a store."""


def decode(text: str | bytes) -> Any:
    """JSON text as Python values: orjson where it can (much faster), else the standard library.

    Raises:
        UnreadableRecord: the text is not JSON.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what only the standard library wrote or reads
        pass
    except TypeError:  # neither text nor bytes
        raise UnreadableRecord("not JSON text") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise UnreadableRecord("not JSON") from None


def job_from_record(job_id: int, version: int, archived: bool, text: str | bytes) -> Job:
    """The job a stored record holds.

    Raises:
        UnreadableRecord: the record is not JSON, or not a job document.
    """
    doc = decode(text)
    if not isinstance(doc, dict):
        raise UnreadableRecord("not a JSON object")
    ops = doc.get("ops")
    if not isinstance(ops, list) or not ops:
        raise UnreadableRecord("'ops' is not a non-empty list")
    depends = doc.get("depends", [])
    if not isinstance(depends, list):
        raise UnreadableRecord("'depends' is not a list")
    return Job(
        id=job_id,
        ops=[_op(op, f"ops[{index}]") for index, op in enumerate(ops)],
        received_at=_time(doc, "received_at", required=True),  # type: ignore[arg-type]
        depends=tuple(_dependency(dep, f"depends[{i}]") for i, dep in enumerate(depends)),
        started_at=_time(doc, "started_at"),
        ended_at=_time(doc, "ended_at"),
        archived=archived,
        version=version,
    )


def quarantined_job(
    job_id: int, version: int, archived: bool, received_at: Any, ended_at: Any
) -> Job:
    """The stand-in for a record that cannot be read: a finished job in ``error``.

    ``received_at`` and ``ended_at`` come from the store's own columns when
    they hold numbers.
    """
    received = _number_or_none(received_at)
    ended = _number_or_none(ended_at)
    op = OpState(
        op=UNREADABLE_OP,
        params={},
        status=OpStatus.ERROR,
        result={"error": "UnreadableRecord", "message": UNREADABLE},
        ended_at=ended,
    )
    return Job(
        id=job_id,
        ops=[op],
        received_at=0.0 if received is None else received,
        ended_at=ended,
        archived=archived,
        version=version,
    )


def size_of(text: object) -> int:
    """The length of a stored record, whatever it holds."""
    return len(text) if isinstance(text, (str, bytes)) else len(str(text))


def _op(doc: Any, where: str) -> OpState:
    if not isinstance(doc, dict):
        raise UnreadableRecord(f"{where} is not an object")
    name, params = doc.get("op"), doc.get("params")
    if not isinstance(name, str) or not name:
        raise UnreadableRecord(f"{where}.op is not an op name")
    if not isinstance(params, dict):
        raise UnreadableRecord(f"{where}.params is not an object")
    priority = doc.get("priority")
    if not _is_int(priority) or not priorities.HIGHEST <= priority <= priorities.LOWEST:
        raise UnreadableRecord(f"{where}.priority is not a priority")
    escalations = doc.get("escalations", 0)
    if not _is_int(escalations) or escalations < 0:
        raise UnreadableRecord(f"{where}.escalations is not a count")
    cooperative = doc.get("cooperative", False)
    if not isinstance(cooperative, bool):
        raise UnreadableRecord(f"{where}.cooperative is not true or false")
    return OpState(
        op=name,
        params=params,
        priority=priority,
        status=_status(doc.get("status"), f"{where}.status"),
        result=doc.get("result"),
        started_at=_time(doc, "started_at", where),
        ended_at=_time(doc, "ended_at", where),
        escalations=escalations,
        cooperative=cooperative,
    )


def _dependency(doc: Any, where: str) -> Dependency:
    if not isinstance(doc, dict):
        raise UnreadableRecord(f"{where} is not an object")
    job, statuses = doc.get("job"), doc.get("statuses")
    if not _is_int(job) or job < 1:
        raise UnreadableRecord(f"{where}.job is not a job id")
    if not isinstance(statuses, list):
        raise UnreadableRecord(f"{where}.statuses is not a list")
    return Dependency(job, tuple(_status(s, f"{where}.statuses") for s in statuses))


def _status(value: Any, where: str) -> OpStatus:
    status = _STATUSES.get(value) if isinstance(value, str) else None
    if status is None:
        raise UnreadableRecord(f"{where} is not a status")
    return status


def _time(
    doc: dict[str, Any], key: str, where: str = "", *, required: bool = False
) -> float | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    number = _number_or_none(value)
    if number is None:
        raise UnreadableRecord(f"{where}.{key} is not a time" if where else f"{key} is not a time")
    return number


def _number_or_none(value: object) -> float | None:
    if _is_int(value) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
