"""The ops every registry has: ``test.delay`` and ``test.noop`` (``Registry(builtins=True)``)."""

from __future__ import annotations

from typing import Any

import pydantic

from ..errors import ValidationError
from .spec import LockSpec, OpContext, shared


class DelayParams(pydantic.BaseModel):
    """Parameters of ``test.delay``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    duration: float = pydantic.Field(0.0, ge=0, le=86400, description="seconds to wait")
    exclusive: list[str] = pydantic.Field(
        default_factory=list, description="locks to hold exclusively, written level:name"
    )
    shared: list[str] = pydantic.Field(
        default_factory=list, description="locks to hold shared, written level:name"
    )
    fail: bool = pydantic.Field(False, description="fail after the delay")
    message: str | None = pydantic.Field(None, description="a line to log")

    @pydantic.field_validator("exclusive", "shared")
    @classmethod
    def _level_name(cls, names: list[str]) -> list[str]:
        for name in names:
            level, sep, rest = name.partition(":")
            if not sep or not level or not rest:
                raise ValueError(f"lock {name!r} must be written level:name, e.g. node:n1")
        return names


class NoopParams(pydantic.BaseModel):
    """``test.noop`` takes no parameters."""

    model_config = pydantic.ConfigDict(extra="forbid")


def delay_locks(params: DelayParams) -> LockSpec:
    spec: dict[str, Any] = {}
    for mode, names in (("exclusive", params.exclusive), ("shared", params.shared)):
        for full in names:
            level, _, name = full.partition(":")
            spec.setdefault(level, {"exclusive": [], "shared": []})[mode].append(name)
    resolved: dict[str, Any] = {}
    for level, modes in spec.items():
        if modes["exclusive"] and modes["shared"]:
            both = set(modes["exclusive"]) & set(modes["shared"])
            if both:
                raise ValidationError(
                    f"lock {level}:{sorted(both)[0]} is both exclusive and shared"
                )
            raise ValidationError(
                f"test.delay cannot mix exclusive and shared locks at level {level!r}"
            )
        resolved[level] = modes["exclusive"] or shared(modes["shared"])
    return resolved


def delay(ctx: OpContext, params: DelayParams) -> dict[str, Any]:
    """Wait ``duration`` seconds holding the given locks; optionally log and fail.

    Cooperative: cancelling the job while it waits ends it at once.
    """
    if params.message:
        ctx.log(params.message)
    ctx.sleep(params.duration)
    if params.fail:
        raise RuntimeError("test.delay was asked to fail")
    return {"slept": params.duration}


def noop(ctx: OpContext, params: NoopParams) -> None:
    """Do nothing (so running it again after a crash is harmless: retry_on_crash)."""
    return None
