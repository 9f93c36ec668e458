"""Canceling a job this daemon tracks (see docs/jobs.md for the answers' words).

Every unfinished op ends ``canceled``: a queued job at once; a job waiting
for locks is marked ``canceling`` and taken out of its wait, its next turn
ends it; a running op is marked ``canceling`` and its cancel event set, if it
is ``cancellable`` or checks for cancellation (cooperative).
"""

from __future__ import annotations

from ..jobs import CANCELED_BY_REQUEST, OpStatus
from ..locking import LockRequest
from .commit import commit_unlocked, marking
from .lockwait import unpark_unlocked, withdraw
from .state import EngineState, Where


def cancel(st: EngineState, job_id: int) -> tuple[bool, str] | None:
    """Cancel a tracked job; returns the answer, or None if the job is not tracked.

    Raises:
        StoreError: the store refused the change; nothing changed.
    """
    aj = st.active.get(job_id)
    if aj is None:
        return None
    kick: LockRequest | None = None
    with aj.mutex:
        job = aj.job
        if aj.where is Where.DONE or job.is_final:
            return False, f"job {job_id} has already finished ({job.status})"
        if aj.pending is not None:
            return False, (
                f"job {job_id} is recording {aj.pending_what}, which the store has "
                "refused so far (it is tried again); cancel again once it is recorded"
            )
        index = job.current_op()
        assert index is not None
        op = job.ops[index]
        if job.status is OpStatus.CANCELING:
            return False, f"job {job_id} is already being canceled"
        if op.status is OpStatus.RUNNING:
            opdef = st.registry.get(op.op)
            if not (opdef.cancellable or (aj.ctx is not None and aj.ctx.cooperative)):
                return False, (
                    f"job {job_id} is no longer waiting in the queue: op {index} "
                    f"({op.op}) is running and does not check for cancellation"
                )
            commit_unlocked(st, aj, marking(OpStatus.CANCELING, None, 0.0))
            aj.cancel_event.set()
            return True, f"job {job_id} will be canceled at its running op's next check"
        if op.status is OpStatus.QUEUED and not aj.held:
            commit_unlocked(st, aj, marking(OpStatus.CANCELED, CANCELED_BY_REQUEST, st.wall()))
            finished = True
        else:
            commit_unlocked(st, aj, marking(OpStatus.CANCELING, None, 0.0))
            kick = unpark_unlocked(st, aj)
            finished = False
    if finished:
        st.finish(aj)
        return True, f"job {job_id} canceled"
    if kick is not None:
        withdraw(st, aj, kick, timed_out=False)
    return True, f"job {job_id} will be canceled at its next turn"
