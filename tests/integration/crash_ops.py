"""Ops for test_crash_consistency, loaded by a real daemon with ``--ops crash_ops``.

Each op appends one line per execution to the file named by ``CRASH_EXEC_LOG``,
outside the database, before it does its work: ``KIND TAG JOB_ID OP_INDEX``.
The file is opened with O_APPEND and fsync'd, so a line written before the
daemon is killed is there afterwards, and lines of concurrent ops never mix.
``crash.once`` is an ordinary op (it must never run twice); ``crash.again`` is
``retry_on_crash`` (it may run again after a crash).
"""

from __future__ import annotations

import os

import pydantic

from jobplane.operations import OpContext, Registry

LOG_ENV = "CRASH_EXEC_LOG"


class CrashParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    tag: str
    duration: float = 0.0
    node: str | None = None  # an exclusive node lock, so that some jobs wait for locks


def _record(kind: str, ctx: OpContext, params: CrashParams) -> None:
    line = f"{kind} {params.tag} {ctx.job_id} {ctx.op_index}\n".encode()
    fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _locks(params: CrashParams) -> dict[str, list[str]]:
    return {"node": [params.node]} if params.node else {}


def register(registry: Registry) -> None:
    @registry.op("crash.once", locks=_locks)
    def once(ctx: OpContext, params: CrashParams) -> str:
        _record("once", ctx, params)
        ctx.sleep(params.duration)
        return params.tag

    @registry.op("crash.again", locks=_locks, retry_on_crash=True)
    def again(ctx: OpContext, params: CrashParams) -> str:
        _record("again", ctx, params)
        ctx.sleep(params.duration)
        return params.tag
