"""Running one op: commit its start, run its handler, record its outcome.

Before an op runs, its start is committed (``running``, ``started_at``;
:func:`start_unlocked`): after a crash it must not run again unnoticed. The
handler gets an ``OpContext`` (log lines, cooperative cancel checks); its
outcome (``success``, ``error``, ``canceled``, with the result) is kept as
the job's pending change (:func:`run_op`) and committed by :func:`record`,
which only then releases the job's locks and finishes the job or defers it
(``DeferTask``) at its recomputed priority. An op's outcome is recorded
before its locks are released, its dependants are woken or its next op
starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pydantic

from ..activity import OpRun
from ..errors import StoreError
from ..jobs import Job, OpStatus, json_error, mark_cooperative, start_op
from ..operations import OpCanceled, OpContext, OpDef
from ..workerpool import DeferTask
from .commit import commit_unlocked, ending, error_result, log
from .state import Active, EngineState, Run, Where, take_held_unlocked

logger = logging.getLogger(__name__)


def start_unlocked(
    st: EngineState, aj: Active, index: int, opdef: OpDef, params: pydantic.BaseModel
) -> Run:
    """Commit op ``index``'s start; the returned :class:`Run` is what the turn runs.

    Raises:
        StoreError: the store refused it; the op does not run.
    """
    now = st.wall()

    def start(job: Job) -> None:
        start_op(job, index, now)

    # Before an op runs, its start must be committed: after a crash it must
    # not run again unnoticed. An op that may run again (retry_on_crash)
    # need not wait for that commit: if it is lost, the op just runs again.
    # If the store refuses it, the op does not run: the turn is tried again
    # later, the locks still held.
    commit_unlocked(st, aj, start, wait=not opdef.retry_on_crash)
    return Run(index, opdef, params)


def run_op(
    st: EngineState, aj: Active, run: Run, run_observers: list[Callable[[OpRun], None]]
) -> None:
    """Run the op's handler; its outcome becomes the job's pending change."""
    job_id = aj.job.id
    ctx = OpContext(
        job_id,
        run.index,
        aj.job.ops[run.index].priority,
        lambda message: log(st, job_id, run.index, message),
        aj.cancel_event,
        # Stored for other daemons' clients; a store with one daemon has none,
        # and a short op would pay a write for it.
        None if st.store.one_daemon else lambda: mark_cooperative_op(st, aj, run.index),
    )
    aj.ctx = ctx
    result: Any
    began = st.clock()
    try:
        if run.opdef.takes_params:
            result = run.opdef.handler(ctx, run.params)
        else:
            result = run.opdef.handler(ctx)
        outcome = OpStatus.SUCCESS
    except OpCanceled as exc:
        outcome, result = OpStatus.CANCELED, str(exc)
    except Exception as exc:
        logger.exception("job %s op %s (%s) failed", job_id, run.index, run.opdef.name)
        outcome, result = OpStatus.ERROR, error_result(exc)
    problem = json_error(result) if outcome is OpStatus.SUCCESS else None
    if problem is not None:
        outcome = OpStatus.ERROR
        result = {
            "error": "InvalidResult",
            "message": f"the op returned a value that is not JSON: {problem}",
        }
    for observer in st.observers:
        observer.op_finished(run.opdef.name, outcome, st.clock() - began)
    if run_observers:
        op = aj.job.ops[run.index]
        ended = st.wall()
        worker = threading.current_thread().name.partition(":")[0]
        ran = OpRun(
            worker,
            job_id,
            run.index,
            op.op,
            op.priority,
            op.started_at or ended,
            ended,
            outcome,
        )
        for run_observer in run_observers:
            run_observer(ran)
    with aj.mutex:
        aj.ctx = None
        aj.cancel_event.clear()
        aj.pending = ending(run.index, outcome, result, st.wall(), aj.job)
        aj.pending_what = f"the outcome of op {run.index} ({outcome})"


def record(st: EngineState, aj: Active) -> None:
    """Commit the pending change, then release the locks and finish or defer the job.

    Raises:
        StoreError: the store refused it; the caller tries again later.
        DeferTask: the job has ops left (to the pool, which requeues it).
    """
    with aj.mutex:
        if aj.pending is None or aj.where is Where.DONE:
            return
        aj.where = Where.TURN
        commit_unlocked(st, aj, aj.pending)
        aj.pending, aj.pending_what = None, ""
        release = take_held_unlocked(aj)
        aj.needs = None
        final = aj.job.is_final
        priority = aj.job.priority
        if not final:
            aj.where = Where.POOL
            aj.seq = next(st.seq)
            aj.aged_at = st.clock()
            aj.queued_priority = priority
    st.release(aj, release)
    if final:
        st.finish(aj)
        return
    raise DeferTask(priority=priority)


def end_unlocked(st: EngineState, aj: Active, index: int, outcome: OpStatus, result: Any) -> None:
    """Record op ``index``'s outcome; fail or cancel the ops after it if it did not succeed."""
    commit_unlocked(st, aj, ending(index, outcome, result, st.wall(), None))


def mark_cooperative_op(st: EngineState, aj: Active, index: int) -> None:
    """The running op checked for cancellation: store it (unwaited), for remote cancels.

    Only where other daemons' clients may read it (``Store.one_daemon`` false).
    """
    with aj.mutex:
        if aj.where is Where.DONE or aj.job.ops[index].status is not OpStatus.RUNNING:
            return
        try:
            commit_unlocked(st, aj, lambda job: mark_cooperative(job, index), wait=False)
        except StoreError as exc:  # LeaseLost too: recording the outcome drops the job
            logger.warning("job %s: op %s cooperates, not stored: %s", aj.job.id, index, exc)
