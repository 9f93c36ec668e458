"""Checks of the command line's values, made before any call to the daemon.

Whatever the CLI can judge alone it refuses at once with ``ValidationError``
(exit 2) and a message naming the value, whether or not a daemon is running:
priorities, job ids, statuses, ``--depends``, ``key=value`` values, ``--file``
contents, ages, ``--url`` and ``--token``. The daemon checks everything again;
what only it can judge (op names, op parameters, whether a job exists) it
answers.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from .. import priorities
from ..errors import ValidationError
from ..jobs import FINAL, MAX_ID, OpStatus

LIST_LIMIT = 1000
"""The largest page the daemon lists (``GET /v1/jobs?limit=``)."""

STATUSES = tuple(status.value for status in OpStatus)
FINAL_STATUSES = tuple(status.value for status in OpStatus if status in FINAL)

JobId = Annotated[int, typer.Argument(min=1, max=MAX_ID, show_default=False)]
JobIds = Annotated[list[int], typer.Argument(min=1, max=MAX_ID, show_default=False)]
SomeJobIds = Annotated[list[int] | None, typer.Argument(min=1, max=MAX_ID, show_default=False)]
"""Job ids, or none when an option chooses the jobs (``--pending``)."""
Limit = Annotated[int, typer.Option(min=1, max=LIST_LIMIT, help="at most this many jobs")]

_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_TOKEN = re.compile(r"[\x21-\x7e]+")


def priority(text: str) -> int:
    """A priority given as text: an integer or a name, judged as the daemon judges it."""
    return priorities.parse(int(text) if _INTEGER.fullmatch(text) else text)


def statuses(text: str) -> str:
    """Comma-separated job statuses; empty items and spaces around names are dropped."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in STATUSES:
            raise ValidationError(f"unknown status {name!r}; statuses are {', '.join(STATUSES)}")
    return ",".join(names)


def dependency(digits: str, names: list[str], where: str) -> dict[str, Any]:
    """One ``--depends``: a job id from 1 to MAX_ID and final statuses."""
    if len(digits) > len(str(MAX_ID)) or not 1 <= int(digits) <= MAX_ID:
        raise ValidationError(f"{where}: job ids are from 1 to {MAX_ID}")
    for name in names:
        if name not in FINAL_STATUSES:
            raise ValidationError(
                f"{where}: {name!r} is not a final status ({', '.join(FINAL_STATUSES)})"
            )
    return {"job": int(digits), "statuses": names}


class OutOfRange(ValueError):
    """A JSON number too large for a float: it would become Infinity, which JSON cannot carry."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise OutOfRange(f"{text} is out of range for a number")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str) -> Any:
    """``json.loads`` without NaN, Infinity or numbers that overflow to them (ValueError)."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite)


def param_value(key: str, text: str) -> Any:
    """The value of ``key=value``: JSON when it parses (``1.5``, ``true``), else the text."""
    try:
        return loads(text)
    except OutOfRange as exc:
        raise ValidationError(f"parameter {key!r}: {exc}") from None
    except ValueError:
        return text


def job_file(path: Path) -> list[dict[str, Any]]:
    """The jobs of a ``--file``: one job ``{"ops": ...}``, ``{"jobs": [...]}`` or a list."""
    try:
        data = loads(path.read_text())
    except (OSError, ValueError) as exc:  # a UnicodeDecodeError is a ValueError
        raise ValidationError(f"cannot read jobs from {path}: {exc}") from None
    if isinstance(data, dict):
        batch = data.get("jobs", [data])
    elif isinstance(data, list):
        batch = data
    else:
        raise ValidationError(
            f"{path} must hold a job or a batch of jobs (an object or a list), "
            f"not {type(data).__name__}"
        )
    if not isinstance(batch, list):
        raise ValidationError(f"{path}: 'jobs' must be a list of jobs")
    if not batch:
        raise ValidationError(f"no jobs in {path}")
    for index, job in enumerate(batch):
        if not isinstance(job, dict):
            raise ValidationError(f"{path}: job {index} is not a JSON object")
    return batch


def age(text: str) -> float:
    """An age like ``1d``, ``1w``, ``12h``, ``30m``, ``all`` or seconds, in seconds."""
    if text == "all":
        return 0.0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw]?)", text.strip())
    if not match:
        raise ValidationError(
            f"age {text!r} must be like 1d, 1w, 12h, 30m, all or a number of seconds"
        )
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    seconds = float(match.group(1)) * unit
    if not math.isfinite(seconds):
        raise ValidationError(f"age {_short(text)!r} is too large")
    return seconds


def url(text: str) -> str:
    """The daemon's address: ``http://`` or ``https://`` and a host."""
    try:
        parsed: httpx.URL | None = httpx.URL(text)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValidationError(f"--url {text!r} must be http://HOST:PORT or https://HOST:PORT")
    return text


def token(text: str | None) -> str | None:
    """An API token, or None: it goes into an HTTP header, so printable ASCII only."""
    if not text:
        return None
    if not _TOKEN.fullmatch(text):
        raise ValidationError("--token must be printable ASCII without spaces")
    return text


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
