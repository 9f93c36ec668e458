"""A job's dependencies, checked at its first turn.

The store hands out a job only once its dependencies are final (guarantee 9
of ``stores.base``), so no tracked job waits for one; the first turn reads
how each ended and ends the job if one did not end as it accepts.
"""

from __future__ import annotations

from ..errors import JobNotFound
from ..jobs import FINAL, OpStatus
from .run import end_unlocked
from .state import Active, EngineState


def check_dependencies_unlocked(st: EngineState, aj: Active, index: int) -> bool:
    """End the job if a dependency did not end as it accepts; True if ended."""
    for dep in aj.job.depends:
        try:
            status = st.store.load(dep.job_id).status
        except JobNotFound:
            status = OpStatus.ERROR
        if status not in FINAL:
            message = f"dependency job {dep.job_id} has not finished ({status})"
            end_unlocked(
                st, aj, index, OpStatus.ERROR, {"error": "DependencyFailed", "message": message}
            )
            return True
        if not dep.statuses or status in dep.statuses:
            continue
        accepted = ", ".join(str(s) for s in dep.statuses)
        if status is OpStatus.CANCELED:
            end_unlocked(
                st, aj, index, OpStatus.CANCELED, f"dependency job {dep.job_id} was canceled"
            )
        else:
            end_unlocked(
                st,
                aj,
                index,
                OpStatus.ERROR,
                {
                    "error": "DependencyFailed",
                    "message": f"dependency job {dep.job_id} ended with status "
                    f"{status}, but only {accepted} was accepted",
                },
            )
        return True
    return False
