"""Committing a job's changes: compare-and-set, retry later, and dropping a lost job.

The store is the truth, so every change of a job is made on a copy,
committed with compare-and-set, and only then becomes the working copy
(:func:`commit_unlocked`). A ``StoreConflict`` is not a failure to wait out:
the working copy is stale, so the job is reloaded and the change applied
again.

A write the store refuses (``StoreError``) is never given up. The job stays
tracked (``Where.STORE``) with what it decided kept in memory (an op's
outcome: ``Active.pending``), keeps the locks it holds, and its turn is tried
again after a backoff (``RETRY_FIRST_S`` doubling up to ``RETRY_MAX_S``, on
the timers) until the store takes the write (:func:`retry_later`); the
failure is logged once per job and episode, and the recovery once. Writes a
user asks for (cancel, change priority) that the store refuses raise
``StoreError`` to the user with nothing changed.

A write the store refuses with ``LeaseLost`` means the job is not this
daemon's any more: it is dropped at once (:func:`drop_unlocked`: cancel event
set, lock request withdrawn, locks released), and nothing more is written
about it.

The small functions at the end build the changes the engine commits.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import LeaseLost, StoreConflict, StoreError
from ..jobs import Job, OpStatus, end_op
from .state import (
    Active,
    Change,
    EngineState,
    Where,
    move_unlocked,
    priority_unlocked,
    take_held_unlocked,
)

logger = logging.getLogger(__name__)

RETRY_FIRST_S = 0.05
"""The wait before trying again a write the store refused; it doubles each time ..."""
RETRY_MAX_S = 5.0
"""... up to this."""


def commit_unlocked(st: EngineState, aj: Active, change: Change, *, wait: bool = True) -> None:
    """Apply ``change`` to a copy of the job, commit it, then make it the working copy.

    ``wait=False``: the store commits it soon but this does not wait for it.
    A conflict means the working copy is stale (an unwaited save was lost):
    the job is reloaded, that lost change and this one are applied again
    and saved once more.

    Raises:
        StoreError: the store refused it (or conflicted twice); nothing changed.
    """
    job = aj.job.clone()
    change(job)
    try:
        st.store.save(job, wait=wait)
    except LeaseLost:
        raise  # not a stale copy: the job is not ours any more (the caller drops it)
    except StoreConflict as exc:
        logger.warning("job %s: %s; reloading it", aj.job.id, exc)
        job = st.store.load(aj.job.id)
        if aj.unconfirmed is not None:
            aj.unconfirmed(job)
        change(job)
        st.store.save(job, wait=wait)
    aj.job = job
    aj.unconfirmed = None if wait else change
    if aj.failures:
        logger.info(
            "job %s: the store took its write again after %d refusal(s)",
            aj.job.id,
            aj.failures,
            extra={"job_id": aj.job.id},
        )
        aj.failures = 0
        aj.store_error = ""


def log(st: EngineState, job_id: int, index: int, message: str) -> None:
    """Store a log line of op ``index`` (fenced while the job is tracked and owned)."""
    aj = st.active.get(job_id)
    owner = None if aj is None else aj.job.owner
    fence = None if aj is None or owner is None else (owner, aj.job.fence)
    try:
        st.store.append_log(job_id, index, st.wall(), message, fence=fence)
    except StoreError:
        logger.exception("job %s: could not store a log line", job_id)
    else:
        logger.info("job %s op %s: %s", job_id, index, message, extra={"job_id": job_id})


def note_failure_unlocked(aj: Active, exc: StoreError) -> float:
    """Count a refused write; log the first of an episode. Returns the backoff."""
    aj.failures += 1
    aj.store_error = str(exc)
    if aj.failures == 1:
        logger.error(
            "job %s: the store refused a write (%s); the job keeps its state and the "
            "write is tried again until the store takes it",
            aj.job.id,
            exc,
            extra={"job_id": aj.job.id},
        )
    return float(min(RETRY_FIRST_S * 2 ** (aj.failures - 1), RETRY_MAX_S))


def retry_later(st: EngineState, aj: Active, exc: StoreError) -> None:
    """A turn's write was refused: try the turn again after a backoff."""
    with aj.mutex:
        if aj.where is Where.DONE:
            return
        delay = note_failure_unlocked(aj, exc)
        move_unlocked(aj, Where.STORE)
        job_id = aj.job.id
        aj.timer = st.timers.call_later(delay, lambda: retry_now(st, job_id))


def retry_now(st: EngineState, job_id: int) -> None:
    aj = st.active.get(job_id)
    if aj is None:
        return
    with aj.mutex:
        if aj.where is Where.STORE:
            aj.timer = None
            st.requeue_unlocked(aj, priority_unlocked(aj))


def drop_unlocked(st: EngineState, aj: Active, exc: BaseException | None) -> None:
    """Forget a job this daemon no longer owns, writing nothing more about it.

    Its running op's cancel event is set, its lock request withdrawn and
    its locks released; its pool task, if queued, never runs.
    """
    if exc is not None:
        logger.error(
            "job %s: no longer owned by this daemon (%s); dropping it",
            aj.job.id,
            exc,
            extra={"job_id": aj.job.id},
        )
    move_unlocked(aj, Where.DONE)
    aj.pending, aj.unconfirmed = None, None
    aj.cancel_event.set()
    if aj.timer is not None:
        aj.timer.cancel()
        aj.timer = None
    request, aj.request = aj.request, None
    if request is not None and not request.cancel():
        aj.held.append(request.level)
    st.pool.remove(aj.job.id)
    st.release(aj, take_held_unlocked(aj))
    st.active.pop(aj.job.id, None)


# -- the changes -------------------------------------------------------------


def ending(index: int, outcome: OpStatus, result: Any, now: float, ran: Job | None) -> Change:
    """The change that records op ``index``'s outcome (see ``jobs.end_op``).

    ``ran``: the job as it was when the op started, whose start times are
    applied too, in case the record of the start was lost (a conflict).
    """
    started = None if ran is None else (ran.ops[index].started_at, ran.started_at)

    def end(job: Job) -> None:
        if started is not None:
            if job.ops[index].started_at is None:
                job.ops[index].started_at = started[0]
            if job.started_at is None:
                job.started_at = started[1]
        end_op(job, index, outcome, result, now)

    return end


def marking(status: OpStatus, result: Any, now: float) -> Change:
    """The change that marks every unfinished op ``status`` (see ``Job.mark_unfinished``)."""

    def mark(job: Job) -> None:
        job.mark_unfinished(status, result, now)

    return mark


def set_status(job: Job, index: int, status: OpStatus) -> None:
    job.ops[index].status = status


def error_result(exc: BaseException) -> dict[str, str]:
    """An op's error result for an exception."""
    return {"error": type(exc).__name__, "message": str(exc)}
