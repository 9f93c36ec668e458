"""The daemon behind ``jobplane serve``: settings, logging, queue, HTTP server.

Settings (``Settings``, typed with pydantic-settings) come from, in order of
precedence: command-line options, the environment (``JOBPLANE_<NAME>``), a TOML
file (``--config`` or ``JOBPLANE_CONFIG``), defaults.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pythonjsonlogger.json import JsonFormatter

from . import __version__
from .errors import ValidationError
from .operations import Registry
from .stores import DEFAULT_URL

logger = logging.getLogger(__name__)


def _no_bool(value: object) -> object:
    """TOML's ``true`` is not a number (pydantic would read it as 1)."""
    if isinstance(value, bool):
        raise ValueError("a boolean")
    return value


def _split(value: object) -> object:
    """``"1,5,30"`` (an option or a variable) or a TOML array: three items."""
    return tuple(part.strip() for part in value.split(",")) if isinstance(value, str) else value


def _ordered(value: tuple[float, float, float]) -> tuple[float, float, float]:
    if not 0 < value[0] <= value[1] <= value[2]:
        raise ValueError("out of order")
    return value


Count = Annotated[int, BeforeValidator(_no_bool), Field(gt=0)]
Seconds = Annotated[float, BeforeValidator(_no_bool), Field(allow_inf_nan=False)]
Port = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=65535)]
CountOrZero = Annotated[int, BeforeValidator(_no_bool), Field(ge=0)]
LockTimeouts = Annotated[
    tuple[Seconds, Seconds, Seconds], NoDecode, BeforeValidator(_split), AfterValidator(_ordered)
]


class Settings(BaseSettings):
    """The daemon's settings, typed: each comes from, first found, its option
    (``resolve``'s ``given``), ``JOBPLANE_<NAME>``, the TOML file that ``config``
    names (its ``[serve]`` table, or its top level), or the default here."""

    model_config = SettingsConfigDict(env_prefix="JOBPLANE_", extra="forbid", frozen=True)

    db: str = DEFAULT_URL
    workers: Count = 8
    ops: str | None = None
    host: str = "127.0.0.1"
    port: Port = 8470
    tokens: str | None = None
    lock_timeouts: LockTimeouts = (1.0, 5.0, 30.0)
    aging_interval: Annotated[Seconds, Field(ge=0)] = 60.0
    prefetch: CountOrZero | None = None
    """Jobs claimed beyond the free workers; None: twice the workers."""
    max_parked: CountOrZero | None = None
    """Claimed jobs waiting for locks at which no more are claimed; None: 20 per worker."""
    lease: Annotated[Seconds, Field(gt=0)] = 15.0
    log_format: Literal["text", "json"] = "text"
    durability: Literal["normal", "full"] = "normal"
    max_waits: Count = 2000
    max_connections: Count = 4000
    read_timeout: Annotated[Seconds, Field(gt=0)] = 10.0
    config: str | None = None
    """The TOML file the settings below the environment came from, if any."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _ConfigFile(settings_cls)


class _ConfigFile(PydanticBaseSettingsSource):
    """The TOML file named by the sources above it (``--config`` or ``JOBPLANE_CONFIG``)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # the whole table is read at once, in __call__

    def __call__(self) -> dict[str, Any]:
        config = self.current_state.get("config")
        if not config:
            return {}
        table = _read_toml(str(config))
        if "config" in table:  # the file cannot name another file
            raise ValidationError(f"{config}: unknown setting(s) config")
        return table


def _read_toml(config: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(Path(config).read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read the config file {config}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"the config file {config} is not valid TOML: {exc}") from None
    table = data.get("serve", data)
    if not isinstance(table, dict):
        raise ValidationError(f"{config}: [serve] must be a table of settings")
    return table


EXPECTED = {
    "db": "a store URL",
    "workers": "a positive integer",
    "ops": "a module name",
    "host": "a host name or address",
    "port": "a port number from 0 to 65535",
    "tokens": "a file name",
    "lock_timeouts": "MIN,MAX,STEP_TOTAL seconds with 0 < MIN <= MAX <= STEP_TOTAL",
    "aging_interval": "a number of seconds >= 0",
    "prefetch": "an integer >= 0",
    "max_parked": "an integer >= 0",
    "lease": "a number of seconds > 0",
    "log_format": "text or json",
    "durability": "normal or full",
    "max_waits": "a positive integer",
    "max_connections": "a positive integer",
    "read_timeout": "a number of seconds > 0",
    "config": "a file name",
}
"""What each setting must be, for the one-line error when it is not."""


def resolve(given: dict[str, Any], config: str | None = None) -> Settings:
    """The settings from options (``given``, None when not set) over the environment,
    over the TOML file (``config``, else ``JOBPLANE_CONFIG``), over the defaults.

    Raises:
        ValidationError: a value is not valid, in one line naming the option,
            variable or file it came from; or the file is unreadable, not TOML,
            or names a setting that does not exist.
    """
    options = {name: value for name, value in given.items() if value is not None}
    if config is not None:
        options["config"] = config
    try:
        return Settings(**options)
    except PydanticValidationError as exc:
        raise ValidationError(_one_line(exc.errors(), options)) from None


def _one_line(errors: list[ErrorDetails], options: dict[str, Any]) -> str:
    """The first error, naming the option, variable or file the bad value came from."""
    config = str(options.get("config") or _environment("config")[1])
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return f"{config}: unknown setting(s) {', '.join(unknown)}"
    name = str(errors[0]["loc"][0])
    where, value = f"--{name.replace('_', '-')}", options.get(name, errors[0]["input"])
    if name not in options:
        variable, found = _environment(name)
        if variable is not None:
            where, value = variable, found
        else:  # not the default either: the file
            where, value = f"{name} in {config}", _read_toml(config).get(name, value)
    return f"{where} must be {EXPECTED.get(name, 'valid')}, got {value!r}"


def _environment(name: str) -> tuple[str | None, str | None]:
    """The variable that sets ``name`` and its value (read as pydantic-settings does,
    ignoring case), or (None, None)."""
    wanted = f"JOBPLANE_{name}".lower()
    for variable, value in os.environ.items():
        if variable.lower() == wanted:
            return variable, value
    return None, None


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


def import_from_current_directory() -> None:
    """Let ``--ops`` name a module in the current directory, as uvicorn and celery do.

    (The ``jobplane`` command's own directory, not the current one, heads ``sys.path``.)
    """
    here = os.getcwd()
    if not any(os.path.abspath(entry or ".") == here for entry in sys.path):
        sys.path.insert(0, here)


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
        import_from_current_directory()
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
            prefetch=settings.prefetch,
            max_parked=settings.max_parked,
            lease_s=settings.lease,
            durability=settings.durability,
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
