"""The daemon behind ``jobplane serve``: settings, logging, queue, HTTP server.

Settings come from, in order of precedence: command-line options, the
environment (``JOBPLANE_<NAME>``), a TOML file (``--config``), defaults.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ValidationError
from .operations import Registry
from .stores import DEFAULT_URL


@dataclass(frozen=True, slots=True)
class Settings:
    db: str = DEFAULT_URL
    workers: int = 8
    ops: str | None = None
    host: str = "127.0.0.1"
    port: int = 8470
    tokens: str | None = None
    lock_timeouts: tuple[float, float, float] = (1.0, 5.0, 30.0)
    aging_interval: float = 60.0
    log_format: str = "text"
    durability: str = "normal"


NAMES = tuple(f.name for f in fields(Settings))


def parse_timeouts(value: object) -> tuple[float, float, float]:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple)):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value)
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or not 0 < parts[0] <= parts[1] <= parts[2]:
        raise ValidationError(
            f"--lock-timeouts must be MIN,MAX,STEP_TOTAL seconds with 0 < MIN <= MAX <= "
            f"STEP_TOTAL, got {text!r}"
        )
    return parts[0], parts[1], parts[2]


def resolve(given: dict[str, Any], config: str | None) -> Settings:
    """Merge options (``given``, None when not set; env already applied) over a TOML file."""
    values: dict[str, Any] = {}
    if config:
        try:
            data = tomllib.loads(Path(config).read_text())
        except OSError as exc:
            raise ValidationError(f"cannot read the config file {config}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(f"the config file {config} is not valid TOML: {exc}") from None
        table = data.get("serve", data)
        unknown = sorted(set(table) - set(NAMES) - {"serve"})
        if unknown:
            raise ValidationError(f"{config}: unknown setting(s) {', '.join(unknown)}")
        values.update({k: v for k, v in table.items() if k in NAMES})
    values.update({k: v for k, v in given.items() if v is not None})
    try:
        if "workers" in values:
            values["workers"] = _positive_int(values["workers"], "workers")
        if "port" in values:
            values["port"] = _port(values["port"])
        if "lock_timeouts" in values:
            values["lock_timeouts"] = parse_timeouts(values["lock_timeouts"])
        if "aging_interval" in values:
            values["aging_interval"] = float(values["aging_interval"])
            if values["aging_interval"] < 0:
                raise ValueError
    except (TypeError, ValueError):
        raise ValidationError(
            f"--aging-interval must be a number of seconds >= 0, got {values['aging_interval']!r}"
        ) from None
    if values.get("log_format", "text") not in ("text", "json"):
        raise ValidationError("--log-format must be text or json")
    if values.get("durability", "normal") not in ("normal", "full"):
        raise ValidationError("--durability must be normal or full")
    return Settings(**values)


def _positive_int(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise ValidationError(f"--{name} must be a positive integer, got {value!r}")
    return number


def _port(value: object) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ValidationError(f"--port must be a port number from 0 to 65535, got {value!r}")
    return number


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if hasattr(record, "job_id"):
            entry["job_id"] = record.job_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def import_from_current_directory() -> None:
    """Let ``--ops`` name a module in the current directory, as uvicorn and celery do.

    (The ``jobplane`` command's own directory, not the current one, heads ``sys.path``.)
    """
    here = os.getcwd()
    if not any(os.path.abspath(entry or ".") == here for entry in sys.path):
        sys.path.insert(0, here)


def serve(settings: Settings) -> None:
    """Run the daemon until SIGTERM or SIGINT; running ops finish before it exits."""
    import uvicorn

    from .http import TokenStore, check_bind, create_app
    from .queue import JobQueue

    setup_logging(settings.log_format)
    tokens = TokenStore.from_file(settings.tokens) if settings.tokens else None
    check_bind(settings.host, tokens)
    registry = Registry()
    if settings.ops:
        import_from_current_directory()
        registry.load_module(settings.ops)
    queue = JobQueue.open(
        settings.db,
        registry=registry,
        workers=settings.workers,
        lock_timeouts=settings.lock_timeouts,
        aging_interval=settings.aging_interval,
        durability=settings.durability,  # type: ignore[arg-type]
    )
    try:
        app = create_app(queue, tokens=tokens)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False
        )
        server = uvicorn.Server(config)
        auth = "tokens required" if tokens else "no tokens file: only loopback clients are accepted"
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        print(
            f"jobplane {__version__} listening on http://{host}:{settings.port} "
            f"(db {settings.db}, {settings.workers} workers); {auth}",
            file=sys.stderr,
            flush=True,
        )
        # uvicorn handles SIGTERM/SIGINT while it serves, then re-raises the signal
        # once it has stopped; these handlers take that re-raise, so the queue below
        # is closed (running ops finish) and the process exits 0.
        stopped: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda number, frame: stopped.append(number))
        server.run()
    finally:
        logging.getLogger(__name__).info("stopping: running ops finish first")
        queue.close()
        print("jobplane stopped", file=sys.stderr, flush=True)
