"""The schedule order, stated once for every store (see docs/priorities.md).

A store keeps, for each *ready* job, one number: its schedule key. Claims
take ready jobs by ``(key, id)``, lowest first. With an aging interval
``I > 0`` seconds:

    key = ready_at + priority * I

where ``ready_at`` is when the job last became ready. Waiting ``I``
seconds moves a job's place exactly as much as one priority step would, so
aging costs nothing per queued job: no row is rewritten as time passes. A
job whose aging has reached ``HIGHEST`` (``key <= now + HIGHEST * I``) ties
with every other job at ``HIGHEST`` and goes by id: the store files it under
:data:`CLAMPED`, once, when it first claims after that moment. With ``I == 0``
(aging off) the key is just the priority.

The effective priority of a job that waited ``w`` seconds is
``max(HIGHEST, priority - floor(w / I))``; a claim writes it into the job's
ops (``priority``, ``escalations``), so the job runs at the priority it
earned.
"""

from __future__ import annotations

import math

from .. import priorities
from ..jobs import PENDING, Job

_PENDING = frozenset(str(status) for status in PENDING)
CLAMPED = -1.0e300
"""The key of a ready job at ``HIGHEST`` (submitted there or aged there): below every other key."""


def schedule_key(ready_at: float, priority: int, interval: float) -> float:
    """The key of a job that became ready at ``ready_at`` (wall clock) at ``priority``."""
    if interval <= 0:
        return float(priority)
    if priority <= priorities.HIGHEST:
        return CLAMPED
    return ready_at + priority * interval


def clamp_limit(now: float, interval: float) -> float:
    """Keys at or below this have aged to ``HIGHEST`` by ``now`` (only when ``interval > 0``)."""
    return now + priorities.HIGHEST * interval


def aging_steps(priority: int, ready_at: float, now: float, interval: float) -> int:
    """How many priority steps a job at ``priority``, ready since ``ready_at``, has earned."""
    if interval <= 0 or priority <= priorities.HIGHEST:
        return 0
    waited = max(0.0, now - ready_at)
    return min(priority - priorities.HIGHEST, math.floor(waited / interval))


def apply_aging(job: Job, ready_at: float, now: float, interval: float) -> int:
    """Write the aging a job earned into its unfinished ops; returns the steps taken.

    Every unfinished op above ``HIGHEST`` moves by the job's steps (an op
    never passes ``HIGHEST``) and counts one more escalation, as the
    in-memory aging of earlier versions did.
    """
    steps = aging_steps(job.priority, ready_at, now, interval)
    if steps <= 0:
        return 0
    for op in job.ops:
        if not op.is_final and op.priority > priorities.HIGHEST:
            op.priority = priorities.escalate(op.priority, steps)
            op.escalations += 1
    return steps


def is_ready(*, archived: bool, owner: int | None, deps_left: int, status: str) -> bool:
    """Whether a job belongs in the schedule (guarantee 9 of ``stores.base``)."""
    return not archived and owner is None and deps_left == 0 and status in _PENDING


def refile(
    *,
    ready: bool,
    restart: bool,
    ready_at: float | None,
    key: float | None,
    priority: int,
    now: float,
    interval: float,
) -> tuple[float | None, float | None]:
    """A job's ``(ready_at, key)`` after a change: the key is set exactly while it is ready.

    A job that becomes ready, or whose wait restarts (released by its
    owner, or given a new priority), is ready from ``now``; one that stays
    ready keeps its place.
    """
    if not ready:
        return ready_at, None
    if restart or key is None or ready_at is None:
        return now, schedule_key(now, priority, interval)
    return ready_at, key
