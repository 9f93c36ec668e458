"""A consistent copy of a SQLite store, taken while its daemon runs (``jobplane backup``).

SQLite's online backup API (``sqlite3.Connection.backup``) copies the
database in one step, inside one read transaction: in WAL mode the daemon
goes on writing meanwhile (readers never block the writer), and the copy is
the database as of the moment the copy began, with every job committed by
then and none half-written. It reads the file directly, so it needs neither
the daemon nor its permission, only read access to the database file and
its ``-wal``/``-shm`` companions (run it as the daemon's user).

The copy is written beside the destination under a temporary name, checked
(``PRAGMA quick_check``, the schema version, the jobs), switched to a
rollback journal so that it is one self-contained file, flushed to disk, and
only then renamed to the destination: a backup that fails or is interrupted
leaves no partial file where the backup should be. Restoring is copying the
file back while the daemon is stopped (see ``docs/deploy.md``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import StoreError, ValidationError
from .sql import SQL_ROOT, parse_queries
from .sqlite import BUSY_TIMEOUT_S, database_path

Q = parse_queries(SQL_ROOT.joinpath("sqlite", "backup.sql").read_text(), "sqlite/backup.sql")


@dataclass(frozen=True, slots=True)
class Backup:
    """What a backup copied."""

    source: str
    destination: Path
    schema_version: int
    jobs: int
    size_bytes: int
    seconds: float


def backup(
    url: str,
    destination: str | os.PathLike[str],
    *,
    replace: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> Backup:
    """Copy the SQLite store at ``url`` to the file ``destination``, consistently.

    Raises:
        ValidationError: a URL that is not SQLite's, a destination that exists
            (unless ``replace``), is the database itself, or whose folder is missing.
        StoreError: no database at ``url``, not a jobplane database, or SQLite failed.
    """
    started = clock()
    source = database_path(url)
    target = Path(destination).absolute()
    _check(url, source, target, replace=replace)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        version, jobs = _copy(source, partial)
        _flush(partial)
        os.replace(partial, target)
        _flush(target.parent)
    except sqlite3.Error as exc:
        raise StoreError(f"backing up {url} to {target} failed: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"backing up {url} to {target} failed: {exc.strerror}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return Backup(url, target, version, jobs, target.stat().st_size, clock() - started)


def _check(url: str, source: str, target: Path, *, replace: bool) -> None:
    if not os.path.isfile(source):
        raise StoreError(f"no database at {source} (from {url})")
    if not target.parent.is_dir():
        raise ValidationError(f"cannot write the backup {target}: no directory {target.parent}")
    if target.exists():
        if target.resolve() == Path(source).resolve():
            raise ValidationError(f"the backup {target} would be the database itself")
        if not replace:
            raise ValidationError(f"{target} exists: give a new file, or --replace to overwrite it")


def _copy(source: str, partial: Path) -> tuple[int, int]:
    """Copy ``source`` to ``partial`` in one read transaction; (schema version, jobs)."""
    reader = sqlite3.connect(f"file:{quote(source)}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            reader.backup(copy)  # all pages in one step: one snapshot
            copy.execute(Q["single_file"])
            problem = copy.execute(Q["quick_check"]).fetchone()[0]
            if problem != "ok":
                raise StoreError(f"the copy of {source} fails SQLite's quick_check: {problem}")
            try:
                version, jobs = copy.execute(Q["backup_summary"]).fetchone()
            except sqlite3.OperationalError:
                raise StoreError(f"{source} is not a jobplane database") from None
            return int(version), int(jobs)
        finally:
            copy.close()
    finally:
        reader.close()


def _flush(path: Path) -> None:
    """Make ``path`` (a file, or a folder's entries) durable before going on."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
