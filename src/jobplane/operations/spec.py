"""What an op is: its definition, its lock needs, and the context it runs in.

The leaf of ``jobplane.operations``: the registry and the built-in ops
import it, it imports neither.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson
import pydantic

from ..errors import SHOWN, OpCanceled, ValidationError


@dataclass(frozen=True, slots=True)
class SharedNames:
    """Names to lock in shared mode (see :func:`shared`)."""

    names: tuple[str, ...]


def shared(names: Sequence[str]) -> SharedNames:
    """Mark names as needed in shared mode in an op's ``locks`` mapping."""
    return SharedNames(tuple(names))


LockSpec = Mapping[str, Any]
"""``{level: list of names (exclusive) | shared(names) | ALL}``."""


@dataclass(frozen=True, slots=True)
class LockNeed:
    """One level's worth of locks an op needs, resolved."""

    level: str
    names: tuple[str, ...] | None
    """``None`` means every lock of the level (ALL)."""
    shared: bool


class CancelSignal(Protocol):
    """What an op's context reads of its job's cancel: a ``threading.Event`` will do."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class OpContext:
    """What a running op may see and do. Made by the processor for each run."""

    __slots__ = (
        "_cancel_requested",
        "_log",
        "_on_cooperative",
        "cooperative",
        "job_id",
        "op_index",
        "priority",
    )

    def __init__(
        self,
        job_id: int,
        op_index: int,
        priority: int,
        log: Callable[[str], None],
        cancel_requested: CancelSignal,
        on_cooperative: Callable[[], None] | None = None,
    ) -> None:
        """``on_cooperative``: called once, at the op's first check (the processor stores it)."""
        self.job_id = job_id
        self.op_index = op_index
        self.priority = priority
        self._log = log
        self._cancel_requested = cancel_requested
        self._on_cooperative = on_cooperative
        self.cooperative = False

    def log(self, message: str) -> None:
        """Persist a log line for this op (numbered by a per-job serial)."""
        self._log(str(message))

    def check_cancel(self) -> None:
        """Raise ``OpCanceled`` if the job was canceled; marks this op as cancelable.

        An op that calls this at least once may be canceled while it runs;
        the cancel takes effect at its next call.
        """
        if not self.cooperative:
            self._cooperates()
        if self._cancel_requested.is_set():
            raise OpCanceled(f"job {self.job_id} was canceled while op {self.op_index} ran")

    def sleep(self, seconds: float) -> None:
        """Wait up to ``seconds``, ending early with ``OpCanceled`` if the job is canceled."""
        if not self.cooperative:
            self._cooperates()
        if self._cancel_requested.wait(seconds):
            self.check_cancel()

    def _cooperates(self) -> None:
        self.cooperative = True
        if self._on_cooperative is not None:
            self._on_cooperative()


Handler = Callable[..., Any]
"""``handler(ctx, params)``, or ``handler(ctx)`` for an op without params."""


@dataclass(frozen=True, slots=True)
class OpDef:
    """A registered op."""

    name: str
    handler: Handler
    params_model: type[pydantic.BaseModel]
    locks: Callable[[Any], LockSpec] | None
    big_lock: Literal["shared", "exclusive"]
    retry_on_crash: bool
    cancellable: bool
    description: str
    takes_params: bool = True
    """False if the handler is ``handler(ctx)``: it is then called without params."""
    strict: bool = True
    """Params are validated as JSON, strictly: no value is coerced (see :meth:`validate`)."""

    def validate(self, params: object) -> pydantic.BaseModel:
        """The validated params model, or ValidationError naming each bad field.

        Strict (the default): params are validated as the JSON they are sent
        as, in pydantic's strict mode. So ``true`` is not a number, ``"yes"``
        and ``1`` are not booleans, ``"1"`` is not an int; what JSON cannot
        say otherwise is still read (an integer for a float, an array for a
        tuple, a string for an enum, a date or a UUID). An op registered with
        ``strict=False`` gets pydantic's lax mode instead.
        """
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ValidationError(
                f"params of op {self.name!r} must be a JSON object, not {type(params).__name__}"
            )
        try:
            if self.strict:
                return self.params_model.model_validate_json(_json(self.name, params), strict=True)
            return self.params_model.model_validate(dict(params))
        except pydantic.ValidationError as exc:
            raise ValidationError(
                f"invalid params for op {self.name!r}: {_describe(exc)}"
            ) from None


def _json(op: str, params: Mapping[str, Any]) -> bytes:
    """The params as JSON text, which is what a strict validation reads."""
    try:
        return orjson.dumps(params)
    except TypeError:  # e.g. an integer beyond 64 bits, or a key that is not a string
        try:
            return json.dumps(params, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"params of op {op!r} must be JSON values: {exc}") from None


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(_cut(str(p)) for p in err["loc"]) or "params"
        # pydantic words a validator's ValueError "Value error, ...": keep only what it says
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}... ({len(text)} characters)"
