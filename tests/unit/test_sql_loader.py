"""The loader of the stores' ``.sql`` files: named queries and numbered migrations."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobplane.stores.sql import SQL_ROOT, load_migrations, load_queries, parse_queries


def test_named_blocks_run_to_the_next_name() -> None:
    text = """-- What this file holds: ignored.

-- name: first
-- What it does: kept with the query.
SELECT 1
FROM t;

-- name: second
UPDATE t SET x = :x
"""
    assert parse_queries(text) == {
        "first": "-- What it does: kept with the query.\nSELECT 1\nFROM t;",
        "second": "UPDATE t SET x = :x",
    }


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n", "defined twice"),
        ("SELECT 0\n-- name: a\nSELECT 1\n", "before the first"),
        ("-- name: a\n\n-- name: b\nSELECT 1\n", "'a' is empty"),
        ("-- name: not-a-name\nSELECT 1\n", "not an identifier"),
    ],
)
def test_malformed_query_files_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_queries(text, "test.sql")


def _migrations(root: Path, *names: str) -> Path:
    folder = root / "dialect" / "migrations"
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text(f"-- {name}\n", encoding="utf-8")
    return root


def test_migrations_load_in_version_order(tmp_path: Path) -> None:
    root = _migrations(tmp_path, "0002_more.sql", "0001_initial.sql", "0003_last.sql")
    migrations = load_migrations(root, "dialect")
    assert [(m.version, m.name) for m in migrations] == [(1, "initial"), (2, "more"), (3, "last")]
    assert migrations[1].sql == "-- 0002_more.sql\n"


@pytest.mark.parametrize(
    "names",
    [
        ("0001_initial.sql", "0003_gap.sql"),
        ("0002_no_first.sql",),
        ("0001_initial.sql", "0001_twice.sql"),
        ("0001_initial.sql", "2_short.sql"),
    ],
)
def test_misnumbered_migrations_are_refused(tmp_path: Path, names: tuple[str, ...]) -> None:
    root = _migrations(tmp_path, *names)
    with pytest.raises(ValueError):
        load_migrations(root, "dialect")


def test_the_packaged_sqlite_files_load() -> None:
    queries = load_queries(SQL_ROOT, "sqlite")
    assert {"insert_job", "save_job", "append_log", "count_jobs"} <= queries.keys()
    assert load_migrations(SQL_ROOT, "sqlite")[0].name == "initial"
