"""SQL of the stores, kept in ``.sql`` files and loaded once.

Each dialect has a folder (``sqlite/``, later ``postgresql/``) holding:

* ``queries.sql``: named blocks, each starting with a ``-- name: <name>`` line
  and running up to the next one. Comment lines right after the name line
  document the query; comment lines before the first block describe the file.
* ``migrations/NNNN_<what>.sql``: schema changes numbered from ``0001`` with no
  gaps, applied in order by the store; a migration is never edited once released.

``load_queries(SQL_ROOT, "sqlite")`` returns ``{name: sql}``;
``load_migrations(SQL_ROOT, "sqlite")`` returns the migrations in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

SQL_ROOT: Traversable = files(__name__)
"""The folder of this package, holding one subfolder per dialect."""

_NAME_LINE = re.compile(r"--\s*name:\s*(\S+)\s*")
_MIGRATION_FILE = re.compile(r"(\d{4})_(\w+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change: ``version`` counts from 1 without gaps."""

    version: int
    name: str
    sql: str


def parse_queries(text: str, source: str = "<sql>") -> dict[str, str]:
    """Split ``text`` into its named blocks.

    Raises:
        ValueError: SQL before the first name line, a repeated or malformed
            name, or an empty block. ``source`` names the file in the message.
    """
    queries: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []

    def finish_block() -> None:
        if name is None:
            return
        sql = "\n".join(body).strip()
        if not sql:
            raise ValueError(f"{source}: query {name!r} is empty")
        queries[name] = sql

    for number, line in enumerate(text.splitlines(), start=1):
        match = _NAME_LINE.fullmatch(line.strip())
        if match:
            finish_block()
            name, body = match.group(1), []
            if not name.isidentifier():
                raise ValueError(f"{source}:{number}: query name {name!r} is not an identifier")
            if name in queries:
                raise ValueError(f"{source}:{number}: query {name!r} is defined twice")
        elif name is not None:
            body.append(line)
        elif line.strip() and not line.lstrip().startswith("--"):
            raise ValueError(f"{source}:{number}: SQL before the first '-- name:' line")
    finish_block()
    return queries


def load_queries(package_dir: Traversable, dialect: str) -> dict[str, str]:
    """The named queries of ``<package_dir>/<dialect>/queries.sql``."""
    path = package_dir / dialect / "queries.sql"
    return parse_queries(path.read_text(encoding="utf-8"), f"{dialect}/queries.sql")


def load_migrations(package_dir: Traversable, dialect: str) -> list[Migration]:
    """The migrations of ``<package_dir>/<dialect>/migrations/``, by version.

    Raises:
        ValueError: a file not named ``NNNN_<what>.sql``, or versions that do
            not run 1, 2, 3 ... without gaps or repeats.
    """
    folder = package_dir / dialect / "migrations"
    migrations: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.is_file() or entry.name.startswith("."):
            continue
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match is None:
            raise ValueError(f"{dialect}/migrations/{entry.name}: expected NNNN_<what>.sql")
        sql = entry.read_text(encoding="utf-8")
        migrations.append(Migration(int(match.group(1)), match.group(2), sql))
    migrations.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"{dialect}/migrations: versions {versions} must run 1, 2, 3 ...")
    return migrations


__all__ = ["SQL_ROOT", "Migration", "load_migrations", "load_queries", "parse_queries"]
