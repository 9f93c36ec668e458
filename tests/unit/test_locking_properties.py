"""Property-based tests of the lock manager: random owners, lock sets, levels and priorities.

Three properties:

* a SharedLock grants exactly in the order of a small reference model of the
  queue (priority, FIFO, sharers grouped at their first member's place);
* with random timeouts mixed in, whoever is left is still granted in queue
  order, nobody who could hold the lock is left waiting, and those who timed
  out leave nothing behind;
* many threads acquiring random lock sets through a LockManager never hold
  conflicting locks, never break the level rules, and always finish (no deadlock).

The profile is fixed (derandomized, no example database, bounded examples) so
CI runs the same examples every time in a few seconds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from jobplane.locking import ALL, LockError, LockManager, SharedLock

WAIT = 10.0
PROFILE = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Threads that deadlock stay blocked, so the stress test does not shrink: it reports
# the first failing example as generated (the run is derandomized, so it reproduces).
STRESS_PROFILE = settings(PROFILE, max_examples=150, phases=(Phase.explicit, Phase.generate))


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    tick = threading.Event()
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        tick.wait(0.0005)


class Runner:
    """A daemon thread whose result or exception is kept for the test thread."""

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float = WAIT) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.thread.name} did not finish (deadlock?)"
        if self.error is not None:
            raise self.error
        return self.result


# -- 1. grant order against a reference model ---------------------------------------------


@dataclass
class _Entry:
    priority: int
    shared: bool
    owners: list[str]


@dataclass
class QueueModel:
    """The spec's queue, written as plainly as possible."""

    mode: str | None
    holders: list[str]
    queue: list[_Entry] = field(default_factory=list)
    open_groups: dict[int, _Entry] = field(default_factory=dict)

    def _fits(self, shared: bool) -> bool:
        return self.mode is None or (shared and self.mode == "shared")

    def arrive(self, priority: int, shared: bool, owner: str) -> None:
        if not self.queue and self._fits(shared):
            self._hold(shared, [owner])
            return
        group = self.open_groups.get(priority) if shared else None
        if group is not None:
            group.owners.append(owner)
        else:
            entry = _Entry(priority, shared, [owner])
            place = sum(1 for e in self.queue if e.priority <= priority)
            self.queue.insert(place, entry)
            if shared:
                self.open_groups[priority] = entry
        self._grant()

    def _hold(self, shared: bool, owners: list[str]) -> None:
        self.mode = "shared" if shared else "exclusive"
        self.holders.extend(owners)

    def _grant(self) -> None:
        while self.queue and self._fits(self.queue[0].shared):
            head = self.queue.pop(0)
            if self.open_groups.get(head.priority) is head:
                del self.open_groups[head.priority]
            self._hold(head.shared, head.owners)

    def release_all(self) -> None:
        self.mode, self.holders = None, []
        self._grant()

    def pending(self) -> list[tuple[int, bool, str]]:
        return [(e.priority, e.shared, o) for e in self.queue for o in e.owners]


waiters_strategy = st.lists(st.tuples(st.integers(-2, 3), st.booleans()), min_size=1, max_size=10)


def _present(lock: SharedLock, owner: str) -> bool:
    stats = lock.statistics()
    return owner in stats.owners or any(o == owner for _, _, o in stats.pending)


def _present_or_done(lock: SharedLock, owner: str, runner: Runner) -> bool:
    return _present(lock, owner) or not runner.thread.is_alive()


def _drain(lock: SharedLock) -> list[tuple[Hashable, ...]]:
    batches = []
    while owners := lock.statistics().owners:
        batches.append(owners)
        for owner in owners:
            lock.release(owner=owner)
    return batches


@PROFILE
@given(holder_shared=st.booleans(), waiters=waiters_strategy)
def test_grants_follow_the_reference_queue(
    holder_shared: bool, waiters: list[tuple[int, bool]]
) -> None:
    lock = SharedLock("node:n1")
    lock.acquire(shared=holder_shared, owner="H")
    model = QueueModel("shared" if holder_shared else "exclusive", ["H"])
    runners = []
    for index, (priority, shared) in enumerate(waiters):
        owner = f"w{index}"
        runners.append(Runner(partial(lock.acquire, shared, None, priority, owner), owner))
        wait_until(partial(_present, lock, owner), f"{owner} to queue")
        model.arrive(priority, shared, owner)
        stats = lock.statistics()
        assert list(stats.pending) == model.pending()
        assert list(stats.owners) == model.holders

    expected = []
    while model.holders:
        expected.append(tuple(model.holders))
        model.release_all()
    assert _drain(lock) == expected
    assert all(runner.join() is True for runner in runners)


# -- 2. timeouts: who stays is granted in queue order, who leaves leaves nothing -----------


@PROFILE
@given(
    holder_shared=st.booleans(),
    waiters=st.lists(
        st.tuples(st.integers(-2, 3), st.booleans(), st.sampled_from([None, 0, 0.002, 0.02, 0.02])),
        min_size=1,
        max_size=10,
    ),
)
@example(holder_shared=True, waiters=[(0, False, 0.02), (0, True, None)])  # E leaves, S enters
def test_timeouts_leave_a_consistent_queue(
    holder_shared: bool, waiters: list[tuple[int, bool, float | None]]
) -> None:
    lock = SharedLock("node:n1")
    lock.acquire(shared=holder_shared, owner="H")
    runners: dict[str, Runner] = {}
    for index, (priority, shared, timeout) in enumerate(waiters):
        owner = f"w{index}"
        runner = runners[owner] = Runner(
            partial(lock.acquire, shared, timeout, priority, owner), owner
        )
        wait_until(partial(_present_or_done, lock, owner, runner), f"{owner} to queue or give up")
    timed = {o for o, (_, _, t) in zip(runners, waiters, strict=True) if t is not None}
    results = {owner: runners[owner].join() for owner in timed}

    stats = lock.statistics()
    pending = [o for _, _, o in stats.pending]
    for owner in timed:
        assert (owner in stats.owners) is results[owner]
        assert owner not in pending
    assert set(pending) | set(stats.owners) == set(runners) - {
        o for o in timed if not results[o]
    } | {"H"}
    # nobody waits who could hold the lock
    if stats.pending:
        head_shared = stats.pending[0][1]
        assert stats.mode == "exclusive" or (stats.mode == "shared" and not head_shared)
    priorities = [p for p, _, _ in stats.pending]
    assert priorities == sorted(priorities)

    batches = _drain(lock)
    granted = [o for batch in batches for o in batch]
    assert granted == list(stats.owners) + pending
    for owner in set(runners) - timed:
        assert runners[owner].join() is True


# -- 3. many owners through a LockManager ------------------------------------------------

LEVELS = ("cluster", "node", "instance")
NAMES = {"node": ("n0", "n1", "n2", "n3"), "instance": ("i0", "i1", "i2", "i3")}


def _names(level: str) -> st.SearchStrategy[Any]:
    return st.just(ALL) | st.lists(st.sampled_from(NAMES[level]), min_size=1, max_size=3)


step_strategy = st.fixed_dictionaries(
    {
        "big_shared": st.sampled_from([True, True, True, False]),
        "node": st.none() | st.tuples(_names("node"), st.booleans()),
        "instance": st.none() | st.tuples(_names("instance"), st.booleans()),
        "priority": st.integers(-2, 2),
        "timeout": st.sampled_from([None, None, 0, 0.002, 0.02]),
        "misuse": st.sampled_from([None, None, "skip_big", "go_outward", "drop_big_first"]),
    }
)


class Checker:
    """Records what each owner holds, as seen from outside the manager.

    A grant is recorded after the manager granted it and a release before the
    manager releases, so what is recorded is always held for real: a conflict
    seen here is a conflict in the manager.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self.holders: dict[tuple[str, str], dict[str, bool]] = {}
        self.levels_of: dict[str, set[int]] = {}

    def granted(self, owner: str, level: str, names: frozenset[str], shared: bool) -> None:
        index = LEVELS.index(level)
        with self._mutex:
            held_levels = self.levels_of.setdefault(owner, set())
            assert all(i < index for i in held_levels), f"{owner} broke level order at {level}"
            assert index == 0 or 0 in held_levels, f"{owner} holds {level} without the big lock"
            for name in names:
                others = self.holders.setdefault((level, name), {})
                for other, other_shared in others.items():
                    assert shared and other_shared, (
                        f"{owner} and {other} both hold {level}:{name}, not both shared"
                    )
                others[owner] = shared
            held_levels.add(index)

    def releasing(self, owner: str, level: str, names: frozenset[str]) -> None:
        with self._mutex:
            for name in names:
                del self.holders[(level, name)][owner]
            self.levels_of[owner].discard(LEVELS.index(level))


def _expect_lock_error(fn: Callable[[], object]) -> None:
    try:
        fn()
    except LockError:
        return
    raise AssertionError("expected LockError")


def _check_own_view(mgr: LockManager, owner: str, held: list[str]) -> None:
    """The work done while holding: the manager's view of this owner's locks."""
    mine = {(i.level, i.name): i for i in mgr.info() if owner in i.owners}
    for level in held:
        for name in mgr.owned(level, owner):
            assert (level, name) in mine, f"info() does not show {owner} holding {level}:{name}"
    assert {level for level, _ in mine} == set(held)


def _level_names(mgr: LockManager, level: str) -> frozenset[str]:
    return frozenset(info.name for info in mgr.info() if info.level == level)


def _run_step(mgr: LockManager, checker: Checker, owner: str, step: dict[str, Any]) -> None:
    prio, timeout, misuse = step["priority"], step["timeout"], step["misuse"]
    if misuse == "skip_big":
        _expect_lock_error(lambda: mgr.acquire("node", ["n0"], owner=owner))
    held: list[str] = []
    if mgr.acquire("cluster", ALL, step["big_shared"], timeout, prio, owner):
        checker.granted(owner, "cluster", mgr.owned("cluster", owner), step["big_shared"])
        held.append("cluster")
        for level in ("node", "instance"):
            if step[level] is None:
                continue
            names, shared = step[level]
            if not mgr.acquire(level, names, shared, timeout, prio, owner):
                assert mgr.owned(level, owner) == frozenset()
                assert not any(owner in i.owners for i in mgr.info() if i.level == level)
                break
            owned = mgr.owned(level, owner)
            if names is ALL:  # every lock of the level, and the level cannot change meanwhile
                assert owned == _level_names(mgr, level)
            else:
                assert owned == set(names)
            checker.granted(owner, level, owned, shared)
            held.append(level)
    _check_own_view(mgr, owner, held)
    if misuse == "go_outward" and len(held) > 1:
        _expect_lock_error(lambda: mgr.acquire("cluster", ALL, owner=owner, timeout=0))
        if held[-1] == "instance":
            _expect_lock_error(lambda: mgr.acquire("node", ["n0"], owner=owner, timeout=0))
    if misuse == "drop_big_first" and len(held) > 1:
        _expect_lock_error(lambda: mgr.release("cluster", owner=owner))
    for level in reversed(held):
        owned = mgr.owned(level, owner)
        if level != "cluster" and step[level][0] is ALL:
            assert owned == _level_names(mgr, level), f"level {level} changed under ALL"
        checker.releasing(owner, level, owned)
        mgr.release(level, owner=owner)
    assert all(mgr.owned(level, owner) == frozenset() for level in LEVELS)


def _run_owner(
    mgr: LockManager,
    checker: Checker,
    start: threading.Barrier,
    owner: str,
    steps: list[dict[str, Any]],
) -> None:
    start.wait(WAIT)
    for step in steps:
        try:
            _run_step(mgr, checker, owner, step)
        except BaseException:
            for level in reversed(LEVELS):  # let the others finish: the failure is reported
                mgr.release(level, owner=owner)
            raise


def _run_admin(mgr: LockManager, start: threading.Barrier) -> None:
    """Adds and removes a lock no plan names, racing with ALL holders."""
    start.wait(WAIT)
    for level in ("node", "instance"):
        mgr.add(level, ["x"], owner="admin")
        mgr.remove(level, ["x"], owner="admin")


@contextmanager
def _more_interleavings(yield_while_holding: bool) -> Iterator[None]:
    """Switch threads often; optionally offer the CPU right after every single-lock grant.

    Not synchronisation: it only makes the threads' steps interleave more finely,
    so that races (and deadlocks, were the level rules broken) actually happen.
    Yielding is costly on a loaded machine, so only some examples do it.
    """
    real_acquire = SharedLock.acquire

    def acquire(self: SharedLock, *args: Any, **kwargs: Any) -> bool:
        granted = real_acquire(self, *args, **kwargs)
        os.sched_yield()
        return granted

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        if yield_while_holding:
            with mock.patch.object(SharedLock, "acquire", acquire):
                yield
        else:
            yield
    finally:
        sys.setswitchinterval(old)


def _exclusive_step(nodes: list[str], instances: list[str], priority: int) -> dict[str, Any]:
    return {
        "big_shared": True,
        "node": (nodes, False),
        "instance": (instances, False),
        "priority": priority,
        "timeout": None,
        "misuse": None,
    }


# Owners naming the same locks in opposite orders, never timing out: this deadlocks
# at once if names were not taken in sorted order.
OPPOSITE_ORDERS = [
    [
        _exclusive_step(["n0", "n1", "n2"], ["i2", "i1", "i0"], 0),
        _exclusive_step(["n2", "n1", "n0"], ["i0", "i1", "i2"], 1),
        _exclusive_step(["n1", "n0", "n2"], ["i2", "i0", "i1"], 0),
    ],
    [
        _exclusive_step(["n2", "n1", "n0"], ["i0", "i1", "i2"], 1),
        _exclusive_step(["n0", "n2", "n1"], ["i2", "i1", "i0"], 0),
        _exclusive_step(["n2", "n0", "n1"], ["i1", "i2", "i0"], 1),
    ],
    [
        _exclusive_step(["n1", "n2", "n0"], ["i2", "i1", "i0"], 0),
        _exclusive_step(["n2", "n1", "n0"], ["i0", "i2", "i1"], 1),
        _exclusive_step(["n0", "n1", "n2"], ["i1", "i0", "i2"], 0),
    ],
]


@STRESS_PROFILE
@example(plans=OPPOSITE_ORDERS, admin=False, yield_while_holding=True)
@given(
    plans=st.lists(st.lists(step_strategy, min_size=1, max_size=3), min_size=2, max_size=6),
    admin=st.booleans(),
    yield_while_holding=st.sampled_from([False, False, False, True]),
)
def test_random_owners_never_conflict_and_always_finish(
    plans: list[list[dict[str, Any]]], admin: bool, yield_while_holding: bool
) -> None:
    mgr = LockManager(LEVELS)
    for level, names in NAMES.items():
        mgr.add(level, names)
    checker = Checker()
    start = threading.Barrier(len(plans) + admin)
    with _more_interleavings(yield_while_holding):
        runners = [
            Runner(partial(_run_owner, mgr, checker, start, f"job{i}", steps), f"job{i}")
            for i, steps in enumerate(plans)
        ]
        if admin:
            runners.append(Runner(lambda: _run_admin(mgr, start), "admin"))
        deadline = time.monotonic() + WAIT
        for runner in runners:
            runner.join(max(0.0, deadline - time.monotonic()))
    assert all(info.mode is None and info.pending == () for info in mgr.info()), (
        "locks left held or waited for"
    )
    assert {(i.level, i.name) for i in mgr.info()} == {("cluster", "cluster")} | {
        (level, name) for level, names in NAMES.items() for name in names
    }
