"""``Registry``: named ops, their params models and their lock needs, by level.

The model (params validated at submission, locks a function of the params,
the big lock always held) is stated in ``jobplane.operations``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import typing
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Literal

import pydantic

from ..errors import OpNotFound, ValidationError, shown
from ..locking import ALL
from . import builtin
from .spec import Handler, LockNeed, LockSpec, OpDef, SharedNames

DEFAULT_LEVELS = ("cluster", "node", "instance")


class _NoParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class Registry:
    """Named ops and the lock levels they use (outermost first; the first is the big lock)."""

    def __init__(self, levels: Sequence[str] = DEFAULT_LEVELS, *, builtins: bool = True) -> None:
        if len(levels) < 1 or len(set(levels)) != len(levels):
            raise ValueError("levels must be a non-empty sequence of distinct names")
        self.levels: tuple[str, ...] = tuple(levels)
        self._ops: dict[str, OpDef] = {}
        self._big_needs: dict[tuple[str, bool], LockNeed] = {}
        """The big lock's need, shared or not, made once (every op's first need)."""
        if builtins:
            self.add(
                "test.delay", builtin.delay, params=builtin.DelayParams, locks=builtin.delay_locks
            )
            self.add("test.noop", builtin.noop, params=builtin.NoopParams, retry_on_crash=True)

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
        key = (big, opdef.big_lock == "shared")
        need = self._big_needs.get(key)
        if need is None:
            need = self._big_needs[key] = LockNeed(big, (big,), key[1])
        needs = [need]
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
