"""The wheel users install: typed (PEP 561), with its SQL files and the ``jobplane`` command."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_py_typed_the_sql_and_the_command(tmp_path: Path) -> None:
    (wheel,) = WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"])
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        commands = archive.read(entry_points).decode()
    assert "jobplane/py.typed" in names
    assert "jobplane/stores/sql/sqlite/queries.sql" in names
    assert "jobplane/stores/sql/sqlite/migrations/0001_initial.sql" in names
    assert "jobplane = jobplane.cli:main" in commands
