"""What the engine knows of a tracked job at one moment, for ``explain``.

``explain`` builds its typed ``JobSnapshot`` from this (``explain.py``).
"""

from __future__ import annotations

from typing import Any

from .state import EngineState, Where


def snapshot(st: EngineState, job_id: int) -> dict[str, Any] | None:
    """Where a tracked job is, the jobs ahead of it in the pool, its lock wait (None: untracked)."""
    aj = st.active.get(job_id)
    if aj is None:
        return None
    with aj.mutex:
        job = aj.job
        info: dict[str, Any] = {"where": aj.where.value, "job": job}
        if aj.where is Where.POOL:
            mine = (job.priority, aj.seq)
            higher = same = 0
            for other in list(st.active.values()):
                if other is aj or other.where is not Where.POOL:
                    continue
                key = (other.job.priority, other.seq)
                if key < mine:
                    if key[0] < mine[0]:
                        higher += 1
                    else:
                        same += 1
            info["ahead_higher"] = higher
            info["ahead_same"] = same
        if aj.request is not None:
            info["lock_request"] = aj.request
            info["wait_started"] = aj.wait_started
        if aj.where is Where.STORE:
            info["store_error"] = aj.store_error
            info["pending"] = aj.pending_what
        return info


def holder_op(st: EngineState, owner: object) -> str | None:
    """The current op of the tracked job owning a lock, as ``op N (name)``, or None.

    ``owner``: a job id, or ``(daemon id, job id)`` for a lock manager shared by daemons.
    """
    if isinstance(owner, tuple):
        owner = owner[1]
    aj = st.active.get(owner) if isinstance(owner, int) else None
    if aj is None:
        return None
    index = aj.job.current_op()
    return None if index is None else f"op {index} ({aj.job.ops[index].op})"
