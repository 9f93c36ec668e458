"""The daemon behind ``jobplane serve``: settings, logging, queue, HTTP server.

Settings come from, in order of precedence: command-line options, the
environment (``JOBPLANE_<NAME>``), a TOML file (``--config``), defaults.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from . import __version__
from .errors import ValidationError
from .operations import Registry
from .stores import DEFAULT_URL

logger = logging.getLogger(__name__)


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
    max_waits: int = 2000
    max_connections: int = 4000
    read_timeout: float = 10.0


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
        for name in ("workers", "max_waits", "max_connections"):
            if name in values:
                values[name] = _positive_int(values[name], name.replace("_", "-"))
        if "read_timeout" in values:
            values["read_timeout"] = _positive_seconds(values["read_timeout"], "read-timeout")
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


def _positive_seconds(value: object, name: str) -> float:
    try:
        number = float(str(value))
    except ValueError:
        number = 0.0
    if not 0 < number < float("inf"):
        raise ValidationError(f"--{name} must be a number of seconds > 0, got {value!r}")
    return number


def _port(value: object) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ValidationError(f"--port must be a port number from 0 to 65535, got {value!r}")
    return number


def setup_logging(fmt: str) -> None:
    """Log to stderr: ``text`` lines, or ``json``, one object a line.

    A JSON line has ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    any ``extra`` fields given (``job_id``) and ``exception`` (the traceback).
    """
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
                timestamp="time",
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _say(settings: Settings, line: str) -> None:
    """Tell the operator: a plain line, or a log record with JSON logs (every line parses)."""
    if settings.log_format == "json":
        logger.info(line)
    else:
        print(line, file=sys.stderr, flush=True)


def serve(settings: Settings) -> None:
    """Run the daemon until SIGTERM or SIGINT (see ``http/server.py`` for how it stops).

    The address is taken first, then the store is opened and its unfinished
    jobs recovered, then the workers start: a busy port runs nothing.
    """
    from .http import TokenStore, check_bind, create_app
    from .http.server import Server, bind
    from .queue import JobQueue

    setup_logging(settings.log_format)
    tokens = TokenStore.from_file(settings.tokens) if settings.tokens else None
    check_bind(settings.host, tokens)
    registry = Registry()
    if settings.ops:
        registry.load_module(settings.ops)
    _check_database_folder(settings.db)
    _allow_open_files(settings.max_connections + 256)
    sock = bind(settings.host, settings.port)
    try:
        queue = JobQueue.open(
            settings.db,
            registry=registry,
            workers=settings.workers,
            lock_timeouts=settings.lock_timeouts,
            aging_interval=settings.aging_interval,
            durability=settings.durability,  # type: ignore[arg-type]
        )
        try:
            app = create_app(queue, tokens=tokens, max_waits=settings.max_waits)
            waits, feed = app.state.long_polls, app.state.change_feed

            def stop() -> None:  # on the first signal
                queue.stop()
                waits.close()
                feed.close()

            server = Server(
                app,
                read_timeout=settings.read_timeout,
                max_connections=settings.max_connections,
                stop=stop,
                stopped=queue.wait_stopped,
            )
            _announce(settings, sock.getsockname()[1], tokens is not None)
            # While it serves, the server takes SIGTERM and SIGINT; these handlers
            # take any that come after, while queue.close() below finishes.
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda number, frame: None)
            server.run(sockets=[sock])
        finally:
            logger.info("stopping: running ops finish first")
            queue.close()
            _say(settings, "jobplane stopped")
    finally:
        sock.close()


def _announce(settings: Settings, port: int, with_tokens: bool) -> None:
    auth = (
        "tokens required" if with_tokens else "no tokens file: only loopback clients are accepted"
    )
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    _say(
        settings,
        f"jobplane {__version__} listening on http://{host}:{port} "
        f"(db {settings.db}, {settings.workers} workers); {auth}",
    )


def _check_database_folder(url: str) -> None:
    """A SQLite store's folder must exist (the store makes the file, not the folders)."""
    from .stores.sqlite import URL_PREFIX, database_path

    if url.startswith(URL_PREFIX):
        folder = os.path.dirname(database_path(url))
        if not os.path.isdir(folder):
            raise ValidationError(f"the directory of the database {folder} does not exist")


def _allow_open_files(needed: int) -> None:
    """Raise the soft limit of open files toward ``needed`` (each connection holds one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        logger.warning(
            "the open-file limit (%d) is below --max-connections + 256 (%d): "
            "connections beyond it are refused by the system",
            target,
            needed,
        )
