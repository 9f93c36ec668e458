"""Fixtures of the store contract suite: every test runs once per store.

To add a store, add its name to ``STORES`` and teach ``store_url``,
``unusable_url``, ``open_new`` and ``damage`` how to give a fresh, empty
database of that kind and how to spoil one of its records behind the
store's back (a PostgreSQL store would create or truncate a schema here,
and mark itself with ``pytest.mark.postgres``). ``memory`` is
``jobplane.testing.InMemoryStore``: passing the same suite shows the
contract does not lean on SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from jobplane.jobs import Dependency, Job, OpState
from jobplane.stores import Durability, Store, open_store
from jobplane.testing import InMemoryStore, ManualClock, MemoryDatabase

STORES = ["sqlite", "memory"]

OpenStore = Callable[..., Store]
MakeJob = Callable[..., Job]
Damage = Callable[[int, "str | bytes"], None]


def _make_job(
    ops: int = 1,
    priority: int = 0,
    *,
    depends: Sequence[int | Dependency] = (),
    received_at: float = 1000.0,
) -> Job:
    """A job of ``ops`` queued no-op ops; an int dependency accepts success only."""
    return Job(
        id=0,
        ops=[OpState("test.noop", {"n": n}, priority=priority) for n in range(ops)],
        received_at=received_at,
        depends=tuple(d if isinstance(d, Dependency) else Dependency(d) for d in depends),
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (not skip: CI makes skips errors) the stores a test says it is not for."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("stores")
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("store_url") if callspec is not None else None
        if marker is not None and name is not None and name not in marker.args:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    if request.param == "memory":
        return "memory://"
    raise AssertionError(f"no URL for store {request.param!r}")


@pytest.fixture
def unusable_url(store_url: str, tmp_path: Path) -> str:
    """A URL of the same kind whose database exists but cannot be used."""
    if store_url.startswith("sqlite:"):
        junk = tmp_path / "junk.db"
        junk.write_bytes(b"this is not an SQLite database, just some bytes\n" * 100)
        return f"sqlite:///{junk}"
    raise AssertionError(f"no unusable URL for {store_url!r}")


LEASE_S = 15.0
AGING_INTERVAL = 60.0


@pytest.fixture
def clock() -> ManualClock:
    """The stores' wall clock: time moves only when a test says so."""
    return ManualClock()


@pytest.fixture
def memory_database() -> MemoryDatabase:
    """The database every ``memory`` store of a test shares."""
    return MemoryDatabase()


@pytest.fixture
def open_new(
    store_url: str, clock: ManualClock, memory_database: MemoryDatabase
) -> Iterator[OpenStore]:
    """Open another store on the same database; every store opened is closed at the end.

    Every store runs on the ``clock`` fixture, with a lease of ``LEASE_S`` and
    an aging interval of ``AGING_INTERVAL`` seconds unless told otherwise.
    """
    opened: list[Store] = []

    def open_new(
        durability: Durability = "normal", aging_interval: float = AGING_INTERVAL
    ) -> Store:
        options = {"clock": clock.wall, "lease_s": LEASE_S, "aging_interval": aging_interval}
        if store_url.startswith("memory:"):
            store: Store = InMemoryStore(memory_database, **options)
        else:
            store = open_store(store_url, durability=durability, **options)
        opened.append(store)
        return store

    yield open_new
    for store in opened:
        store.close()


@pytest.fixture
def store(open_new: OpenStore) -> Store:
    return open_new()


@pytest.fixture
def make_job() -> MakeJob:
    return _make_job


@pytest.fixture
def damage(store_url: str, memory_database: MemoryDatabase) -> Damage:
    """``damage(job_id, text)``: overwrite the job's stored record with ``text``, as a
    disk fault, a bad restore or a hand edit would: behind the store's back."""

    def damage(job_id: int, text: str | bytes) -> None:
        if store_url.startswith("sqlite:"):
            conn = sqlite3.connect(store_url.removeprefix("sqlite:///"))
            with conn:
                changed = conn.execute("UPDATE jobs SET doc = ? WHERE id = ?", (text, job_id))
            conn.close()
            assert changed.rowcount == 1, f"no job {job_id} to damage"
            return
        if store_url.startswith("memory:"):
            memory_database.damage(job_id, text)
            return
        raise AssertionError(f"cannot damage a record of {store_url!r}")

    return damage
