"""The operation registry: op name -> handler, parameter schema, lock needs.

An op is a Python function ``handler(ctx, params) -> result``. Its
parameters are a pydantic model, validated when a job is *submitted*, so an
invalid job is refused before it is queued. Its lock needs are a function of
the validated parameters, returning ``{level: names}``; plain lists mean
exclusive locks, ``shared([...])`` shared ones, and ``ALL`` every lock of a
level. Every op also holds the big lock (the single lock of the outermost
level): shared, or exclusive for an op registered with
``big_lock="exclusive"``, which then has the whole system to itself.

::

    registry = Registry()

    class MigrateParams(BaseModel):
        instance: str
        source: str
        target: str

    @registry.op("instance.migrate",
                 locks=lambda p: {"instance": [p.instance], "node": [p.source, p.target]})
    def migrate(ctx: OpContext, params: MigrateParams) -> dict[str, str]:
        ctx.log(f"moving {params.instance} to {params.target}")
        return {"node": params.target}
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
import threading
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import orjson
import pydantic

from ..errors import SHOWN, OpNotFound, ValidationError, shown
from ..errors import OpCanceled as OpCanceled
from ..locking import ALL

DEFAULT_LEVELS = ("cluster", "node", "instance")


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


class OpContext:
    """What a running op may see and do. Made by the processor for each run."""

    __slots__ = ("_cancel_requested", "_log", "cooperative", "job_id", "op_index", "priority")

    def __init__(
        self,
        job_id: int,
        op_index: int,
        priority: int,
        log: Callable[[str], None],
        cancel_requested: threading.Event,
    ) -> None:
        self.job_id = job_id
        self.op_index = op_index
        self.priority = priority
        self._log = log
        self._cancel_requested = cancel_requested
        self.cooperative = False

    def log(self, message: str) -> None:
        """Persist a log line for this op (numbered by a per-job serial)."""
        self._log(str(message))

    def check_cancel(self) -> None:
        """Raise ``OpCanceled`` if the job was canceled; marks this op as cancelable.

        An op that calls this at least once may be canceled while it runs;
        the cancel takes effect at its next call.
        """
        self.cooperative = True
        if self._cancel_requested.is_set():
            raise OpCanceled(f"job {self.job_id} was canceled while op {self.op_index} ran")

    def sleep(self, seconds: float) -> None:
        """Wait up to ``seconds``, ending early with ``OpCanceled`` if the job is canceled."""
        self.cooperative = True
        if self._cancel_requested.wait(seconds):
            self.check_cancel()


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


class _NoParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class Registry:
    """Named ops and the lock levels they use (outermost first; the first is the big lock)."""

    def __init__(self, levels: Sequence[str] = DEFAULT_LEVELS, *, builtins: bool = True) -> None:
        if len(levels) < 1 or len(set(levels)) != len(levels):
            raise ValueError("levels must be a non-empty sequence of distinct names")
        self.levels: tuple[str, ...] = tuple(levels)
        self._ops: dict[str, OpDef] = {}
        if builtins:
            from . import builtin

            builtin.register(self)

    @property
    def big_lock_level(self) -> str:
        return self.levels[0]

    def op(
        self,
        name: str,
        *,
        locks: Callable[[Any], LockSpec] | None = None,
        params: type[pydantic.BaseModel] | None = None,
        big_lock: Literal["shared", "exclusive"] = "shared",
        retry_on_crash: bool = False,
        cancellable: bool = False,
        strict: bool = True,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function as op ``name``.

        The params model is ``params``, or the annotation of the handler's
        second parameter; a handler without one takes no params. Params are
        validated strictly unless ``strict=False`` (see :meth:`OpDef.validate`).
        """

        def decorate(handler: Handler) -> Handler:
            self.add(
                name,
                handler,
                locks=locks,
                params=params,
                big_lock=big_lock,
                retry_on_crash=retry_on_crash,
                cancellable=cancellable,
                strict=strict,
            )
            return handler

        return decorate

    def add(
        self,
        name: str,
        handler: Handler,
        *,
        locks: Callable[[Any], LockSpec] | None = None,
        params: type[pydantic.BaseModel] | None = None,
        big_lock: Literal["shared", "exclusive"] = "shared",
        retry_on_crash: bool = False,
        cancellable: bool = False,
        strict: bool = True,
    ) -> OpDef:
        """Register ``handler`` as op ``name`` (the non-decorator form of :meth:`op`)."""
        if not name or not isinstance(name, str):
            raise ValueError("an op needs a non-empty name")
        if name in self._ops:
            raise ValueError(f"op {name!r} is already registered")
        if big_lock not in ("shared", "exclusive"):
            raise ValueError("big_lock must be 'shared' or 'exclusive'")
        takes_params = _takes_params(handler)
        if params is not None and not takes_params:
            raise ValueError(
                f"{getattr(handler, '__qualname__', handler)!r} takes no params argument, "
                "so it cannot have params=..."
            )
        model = params or _params_model_of(handler)
        doc = inspect.getdoc(handler) or ""
        opdef = OpDef(
            name=name,
            handler=handler,
            params_model=model,
            locks=locks,
            big_lock=big_lock,
            retry_on_crash=retry_on_crash,
            cancellable=cancellable,
            description=doc.split("\n\n")[0],
            takes_params=takes_params,
            strict=strict,
        )
        self._ops[name] = opdef
        return opdef

    def get(self, name: str) -> OpDef:
        try:
            return self._ops[name]
        except KeyError:
            known = ", ".join(sorted(self._ops)) or "none"
            raise OpNotFound(f"unknown op {shown(name)}; registered ops: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._ops

    def ops(self) -> list[OpDef]:
        return [self._ops[name] for name in sorted(self._ops)]

    def lock_needs(self, opdef: OpDef, params: pydantic.BaseModel) -> list[LockNeed]:
        """Resolve an op's locks, outermost level first, the big lock included.

        Raises:
            ValidationError: the op's ``locks`` function failed or named an unknown level.
        """
        big = self.big_lock_level
        needs = [LockNeed(big, (big,), opdef.big_lock == "shared")]
        if opdef.locks is None:
            return needs
        try:
            spec = opdef.locks(params)
        except Exception as exc:
            raise ValidationError(f"op {opdef.name!r} could not name its locks: {exc}") from None
        for level in spec:
            if level not in self.levels:
                raise ValidationError(
                    f"op {opdef.name!r} asks for locks at unknown level {level!r}; "
                    f"levels are {', '.join(self.levels)}"
                )
            if level == big:
                raise ValidationError(
                    f"op {opdef.name!r} names the big lock level {big!r}; "
                    "use big_lock='exclusive' instead"
                )
        for level in self.levels[1:]:
            if level not in spec:
                continue
            value = spec[level]
            if value is ALL:
                needs.append(LockNeed(level, None, False))
            elif isinstance(value, SharedNames):
                if value.names:
                    needs.append(LockNeed(level, _names(value.names, opdef, level), True))
            else:
                names = _names(value, opdef, level)
                if names:
                    needs.append(LockNeed(level, names, False))
        return needs

    def load_module(self, module_name: str) -> None:
        """Import ``module_name`` and register its ops.

        The module either defines ``register(registry)``, which is called, or
        a module-level ``registry`` (a Registry) whose ops are copied in.
        """
        module = _import_ops_module(module_name)
        register = getattr(module, "register", None)
        other = getattr(module, "registry", None)
        if callable(register):
            register(self)
        elif isinstance(other, Registry):
            for opdef in other.ops():
                if opdef.name not in self._ops:
                    self._ops[opdef.name] = opdef
        else:
            raise ValidationError(
                f"ops module {module_name!r} defines neither register(registry) nor a "
                "module-level 'registry'"
            )


def _import_ops_module(name: str) -> ModuleType:
    """Import ``name``; a ValidationError that says where it looked, or what failed inside."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            path = name.replace(".", "/")
            raise ValidationError(
                f"cannot import ops module {name!r}: no {path}.py or package {path} in "
                f"{_search_path()}"
            ) from None
        problem: Exception = exc
    except Exception as exc:  # a SyntaxError, or anything the module raised while importing
        problem = exc
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # a parent package that fails to import, say
        spec = None
    where = f" ({spec.origin})" if spec is not None and spec.origin else ""
    raise ValidationError(
        f"cannot import ops module {name!r}{where}: {str(problem) or type(problem).__name__}"
    ) from None


def _search_path() -> str:
    """Where Python looks for modules, the current directory named as such."""
    here = os.getcwd()
    places = []
    for entry in sys.path:
        folder = os.path.abspath(entry or ".")
        places.append(f"{folder} (the current directory)" if folder == here else folder)
    return ", ".join(dict.fromkeys(places))


def _names(value: object, opdef: OpDef, level: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(
            f"op {opdef.name!r}: locks at level {level!r} must be a list of names, "
            f"shared([...]) or ALL"
        )
    names = []
    for name in value:
        if not isinstance(name, str) or not name:
            raise ValidationError(f"op {opdef.name!r}: lock names must be non-empty strings")
        names.append(name)
    return tuple(sorted(set(names)))


def _takes_params(handler: Handler) -> bool:
    """Whether the handler takes a second positional argument (the params)."""
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):  # no signature to read: assume (ctx, params)
        return True
    kinds = [p.kind for p in parameters]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Parameter.VAR_POSITIONAL in kinds or sum(k in positional for k in kinds) >= 2


def _params_model_of(handler: Handler) -> type[pydantic.BaseModel]:
    params = list(inspect.signature(handler).parameters.values())
    if len(params) < 2:
        return _NoParams
    hints = typing.get_type_hints(handler)
    model = hints.get(params[1].name)
    if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
        return model
    raise ValueError(
        f"the second parameter of {handler.__qualname__} must be annotated with a pydantic "
        "model, or pass params=Model to the registry"
    )
