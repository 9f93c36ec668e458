"""SharedLock, LockManager and lock_attempt_timeouts, one semantic per test.

No test sleeps to synchronise: threads are watched through the locks' own
statistics (polled with a deadline) and every join has a timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import pytest

from jobplane import errors
from jobplane.locking import (
    ALL,
    LockError,
    LockInfo,
    LockManager,
    SharedLock,
    lock_attempt_timeouts,
)

WAIT = 5.0  # the most any test waits for something that should happen at once


class Waiter:
    """Runs ``fn`` in a thread and keeps its result or exception."""

    def __init__(self, fn: Callable[[], Any], name: str = "waiter") -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as exc:
            self.error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> Any:
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "thread still blocked"
        if self.error is not None:
            raise self.error
        return self.result

    def still_blocked_after(self, seconds: float) -> bool:
        """True if the thread has not finished within ``seconds`` (a negative check)."""
        self._thread.join(seconds)
        return self._thread.is_alive()


def wait_until(predicate: Callable[[], bool], what: str = "condition") -> None:
    """Poll observable state until ``predicate`` holds; fail after WAIT seconds."""
    tick = threading.Event()
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        tick.wait(0.001)


def pending_owners(lock: SharedLock) -> list[Hashable]:
    return [owner for _, _, owner in lock.statistics().pending]


def queue(lock: SharedLock, owner: str, shared: bool = False, priority: int = 0) -> Waiter:
    """Start a blocking acquire and return once it shows in the lock's queue."""
    waiter = Waiter(lambda: lock.acquire(shared=shared, priority=priority, owner=owner), owner)
    wait_until(lambda: owner in pending_owners(lock), f"{owner} to queue")
    return waiter


# -- SharedLock: modes and ownership ------------------------------------------------------


def test_lock_error_is_the_one_from_errors() -> None:
    assert LockError is errors.LockError


def test_sharers_coexist() -> None:
    lock = SharedLock("node:n1")
    assert lock.acquire(shared=True, owner="a")
    assert lock.acquire(shared=True, owner="b", timeout=0)
    stats = lock.statistics()
    assert (stats.mode, stats.owners) == ("shared", ("a", "b"))


def test_exclusive_holder_excludes_everyone() -> None:
    lock = SharedLock("node:n1")
    assert lock.acquire(owner="a")
    assert not lock.acquire(shared=True, owner="b", timeout=0)
    assert not lock.acquire(owner="c", timeout=0)
    assert lock.statistics().owners == ("a",)


def test_sharers_exclude_an_exclusive_acquire() -> None:
    lock = SharedLock("node:n1")
    assert lock.acquire(shared=True, owner="a")
    assert not lock.acquire(owner="b", timeout=0)


@pytest.mark.parametrize("first_shared", [False, True])
@pytest.mark.parametrize("again_shared", [False, True])
def test_acquiring_a_lock_already_held_raises(first_shared: bool, again_shared: bool) -> None:
    lock = SharedLock("node:n1")
    assert lock.acquire(shared=first_shared, owner="a")
    with pytest.raises(LockError, match=r"'a' already holds lock node:n1"):
        lock.acquire(shared=again_shared, owner="a", timeout=0)


def test_acquiring_while_already_waiting_raises() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(owner="x")
    waiter = queue(lock, "a")
    with pytest.raises(LockError, match="already waiting"):
        lock.acquire(owner="a", timeout=0)
    lock.release(owner="x")
    assert waiter.join() is True


def test_releasing_a_lock_not_held_raises() -> None:
    lock = SharedLock("node:n1")
    with pytest.raises(LockError, match=r"'a' does not hold lock node:n1"):
        lock.release(owner="a")
    lock.acquire(owner="b")
    with pytest.raises(LockError, match="does not hold"):
        lock.release(owner="a")


def test_owner_defaults_to_the_calling_thread() -> None:
    lock = SharedLock("node:n1")
    assert lock.acquire()
    assert lock.statistics().owners == (threading.current_thread(),)
    other = Waiter(lambda: lock.release())
    with pytest.raises(LockError, match="does not hold"):
        other.join()
    lock.release()
    assert lock.statistics().mode is None


def test_priority_must_be_an_int_and_timeout_not_negative() -> None:
    lock = SharedLock("node:n1")
    with pytest.raises(TypeError, match="priority must be an int"):
        lock.acquire(priority=True)
    with pytest.raises(TypeError, match="priority must be an int"):
        lock.acquire(priority=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        lock.acquire(timeout=-1)
    assert lock.statistics().mode is None


def test_since_is_when_the_current_mode_was_granted() -> None:
    now = [100.0]
    lock = SharedLock("node:n1", clock=lambda: now[0])
    assert lock.statistics().since is None
    lock.acquire(owner="a")
    now[0] = 105.0
    assert lock.statistics().since == 100.0
    lock.downgrade(owner="a")
    assert lock.statistics().since == 105.0
    now[0] = 110.0
    lock.acquire(shared=True, owner="b")  # joining sharers does not change the mode
    assert lock.statistics().since == 105.0
    lock.release(owner="a")
    lock.release(owner="b")
    assert lock.statistics().since is None


# -- SharedLock: grant order ---------------------------------------------------------------


def drain(lock: SharedLock) -> list[tuple[Hashable, ...]]:
    """Release every holder batch by batch; return the holders of each batch."""
    batches = []
    while owners := lock.statistics().owners:
        batches.append(owners)
        for owner in owners:
            lock.release(owner=owner)
    return batches


def test_grant_order_of_the_ganeti_design_example() -> None:
    # pending [(0,[E1,E2,S1,S2,S3]), (2,[S4,S5]), (10,[E3]), (33,[S6,E4,E5])]
    arrivals = [  # arriving out of priority order: the queue sorts them
        (33, True, "S6"),
        (10, False, "E3"),
        (0, False, "E1"),
        (2, True, "S4"),
        (0, False, "E2"),
        (33, False, "E4"),
        (0, True, "S1"),
        (2, True, "S5"),
        (0, True, "S2"),
        (33, False, "E5"),
        (0, True, "S3"),
    ]
    lock = SharedLock("node:n1")
    lock.acquire(owner="X")
    waiters = [queue(lock, owner, shared, priority) for priority, shared, owner in arrivals]

    order = ["E1", "E2", "S1", "S2", "S3", "S4", "S5", "E3", "S6", "E4", "E5"]
    assert pending_owners(lock) == order
    lock.release(owner="X")
    batches = drain(lock)
    assert [owner for batch in batches for owner in batch] == order
    # S1..S3 are granted together; S4, S5 right after them, since nothing conflicts.
    assert batches == [
        ("E1",),
        ("E2",),
        ("S1", "S2", "S3", "S4", "S5"),
        ("E3",),
        ("S6",),
        ("E4",),
        ("E5",),
    ]
    assert all(waiter.join() is True for waiter in waiters)


def test_later_sharer_joins_its_priority_group_ahead_of_exclusive_waiters() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(owner="X")
    waiters = [queue(lock, "S1", shared=True), queue(lock, "E1"), queue(lock, "S2", shared=True)]
    assert lock.statistics().pending == ((0, True, "S1"), (0, True, "S2"), (0, False, "E1"))
    lock.release(owner="X")
    assert drain(lock) == [("S1", "S2"), ("E1",)]
    assert all(waiter.join() for waiter in waiters)


def test_new_sharers_queue_behind_a_waiting_exclusive() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(shared=True, owner="S1")
    exclusive = queue(lock, "E")
    assert not lock.acquire(shared=True, owner="S2", timeout=0)
    late_sharer = queue(lock, "S3", shared=True)
    lock.release(owner="S1")
    assert drain(lock) == [("E",), ("S3",)]
    assert exclusive.join() and late_sharer.join()


def test_higher_priority_sharer_joins_sharers_ahead_of_a_lower_priority_exclusive() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(shared=True, owner="S1")
    exclusive = queue(lock, "E", priority=10)
    assert lock.acquire(shared=True, owner="S2", priority=0, timeout=0)
    assert lock.statistics().owners == ("S1", "S2")
    assert not lock.acquire(shared=True, owner="S3", priority=10, timeout=0)
    lock.release(owner="S1")
    lock.release(owner="S2")
    assert exclusive.join() is True


# -- SharedLock: timeouts ------------------------------------------------------------------


def test_timeout_zero_tries_once_and_leaves_nothing_pending() -> None:
    lock = SharedLock("node:n1")
    assert lock.acquire(owner="a", timeout=0)
    assert not lock.acquire(owner="b", timeout=0)
    assert lock.statistics().pending == ()


def test_timed_out_acquire_returns_false_and_leaves_nothing_pending() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(owner="a")
    assert lock.acquire(owner="b", timeout=0.05) is False
    assert lock.statistics().pending == ()
    lock.release(owner="a")
    assert lock.statistics().mode is None  # nothing was granted to the one who left


def test_timed_out_sharer_leaves_only_its_own_place_in_the_group() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(owner="X")
    stays = queue(lock, "S1", shared=True)
    assert lock.acquire(shared=True, owner="S2", timeout=0.05) is False
    assert lock.statistics().pending == ((0, True, "S1"),)
    lock.release(owner="X")
    assert stays.join() is True
    assert lock.statistics().owners == ("S1",)


def test_timed_out_exclusive_at_the_head_lets_sharers_behind_it_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # E may only give up once S queued behind it: its waits last until the gate opens.
    gate = threading.Event()
    real_wait = threading.Condition.wait

    def gated(self: threading.Condition, timeout: float | None = None) -> bool:
        if threading.current_thread().name != "E":
            return real_wait(self, timeout)
        deadline = time.monotonic() + WAIT
        while not gate.is_set() and time.monotonic() < deadline:
            real_wait(self, 0.001)  # releases the lock's mutex meanwhile
        return False

    monkeypatch.setattr(threading.Condition, "wait", gated)
    lock = SharedLock("node:n1")
    lock.acquire(shared=True, owner="H")
    exclusive = Waiter(lambda: lock.acquire(owner="E", timeout=0.01), "E")
    wait_until(lambda: pending_owners(lock) == ["E"])
    sharer = queue(lock, "S", shared=True)
    assert pending_owners(lock) == ["E", "S"]
    gate.set()
    assert exclusive.join() is False
    assert sharer.join() is True
    assert lock.statistics().owners == ("H", "S")


def test_spurious_wakeups_do_not_end_a_timed_acquire_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_wait = threading.Condition.wait

    def wakes_early(self: threading.Condition, timeout: float | None = None) -> bool:
        return real_wait(self, 0.001 if timeout is None else min(timeout, 0.001))

    monkeypatch.setattr(threading.Condition, "wait", wakes_early)
    lock = SharedLock("node:n1")
    lock.acquire(owner="a")
    start = time.monotonic()
    assert lock.acquire(owner="b", timeout=0.2) is False
    assert time.monotonic() - start >= 0.2


def test_a_waiter_granted_while_waiting_returns_true() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(owner="a")
    waiter = Waiter(lambda: lock.acquire(owner="b", timeout=WAIT))
    wait_until(lambda: pending_owners(lock) == ["b"])
    lock.release(owner="a")
    assert waiter.join() is True
    assert lock.statistics().owners == ("b",)


# -- SharedLock: downgrade and delete ------------------------------------------------------


def test_downgrade_lets_the_sharers_at_the_front_in_at_once() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(owner="a")
    sharers = [queue(lock, "S1", shared=True), queue(lock, "S2", shared=True, priority=1)]
    exclusive = queue(lock, "E", priority=2)
    lock.downgrade(owner="a")
    stats = lock.statistics()
    assert (stats.mode, stats.owners) == ("shared", ("a", "S1", "S2"))
    assert stats.pending == ((2, False, "E"),)
    assert all(sharer.join() for sharer in sharers)
    for owner in ("a", "S1", "S2"):
        lock.release(owner=owner)
    assert exclusive.join() is True


def test_downgrade_grants_the_top_priority_sharers_ahead_of_an_exclusive_waiter() -> None:
    """Ganeti's downgrade: the first priority's sharers move to its front and are let in.

    Waiting, by priority: 0: E1, S1 (S1 arrived after E1); 5: S2. A release would
    grant E1 first; a downgrade lets S1 share the lock at once, E1 keeps the head.
    """
    lock = SharedLock("node:n1")
    lock.acquire(owner="X")
    e1 = queue(lock, "E1")
    s1 = queue(lock, "S1", shared=True)
    s2 = queue(lock, "S2", shared=True, priority=5)
    assert pending_owners(lock) == ["E1", "S1", "S2"]
    lock.downgrade(owner="X")
    stats = lock.statistics()
    assert (stats.mode, stats.owners) == ("shared", ("X", "S1"))
    assert stats.pending == ((0, False, "E1"), (5, True, "S2"))
    assert s1.join() is True
    assert drain(lock) == [("X", "S1"), ("E1",), ("S2",)]
    assert e1.join() is True and s2.join() is True


def test_downgrade_needs_an_exclusive_hold() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(shared=True, owner="a")
    with pytest.raises(LockError, match="does not hold lock node:n1 exclusively"):
        lock.downgrade(owner="a")


def test_exclusive_holder_deletes_at_once_and_later_acquires_raise() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(owner="a")
    assert lock.delete(owner="a") is True
    assert lock.statistics().deleted
    with pytest.raises(LockError, match="lock node:n1 was deleted"):
        lock.acquire(owner="b", timeout=0)
    with pytest.raises(LockError, match="already deleted"):
        lock.delete(owner="b")


def test_delete_queues_like_an_exclusive_acquire_and_fails_the_waiters_behind_it() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(owner="H")
    ahead = queue(lock, "A", priority=0)
    deleter = Waiter(lambda: lock.delete(priority=1, owner="D"))
    wait_until(lambda: "D" in pending_owners(lock))
    behind = [queue(lock, "B1", priority=2), queue(lock, "B2", shared=True, priority=5)]
    lock.release(owner="H")
    assert ahead.join() is True  # A was ahead of the delete
    lock.release(owner="A")
    assert deleter.join() is True
    for waiter in behind:
        with pytest.raises(LockError, match="lock node:n1 was deleted"):
            waiter.join()
    assert lock.statistics().pending == ()


def test_delete_times_out_like_an_acquire() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(owner="a")
    assert lock.delete(timeout=0.02, owner="b") is False
    assert not lock.statistics().deleted
    assert lock.statistics().pending == ()


def test_a_sharer_cannot_delete() -> None:
    lock = SharedLock("node:n1")
    lock.acquire(shared=True, owner="a")
    with pytest.raises(LockError, match="holds lock node:n1 shared"):
        lock.delete(owner="a")


# -- LockManager: levels and the big lock --------------------------------------------------


@pytest.fixture
def mgr() -> LockManager:
    manager = LockManager(levels=["cluster", "node", "instance"])
    manager.add("node", ["n1", "n2", "n3"])
    manager.add("instance", ["i1", "i2"])
    return manager


def test_the_big_lock_is_created_and_named_after_the_outermost_level(mgr: LockManager) -> None:
    assert mgr.acquire("cluster", ["cluster"], shared=True, owner="j1")
    assert mgr.owned("cluster", owner="j1") == {"cluster"}
    with pytest.raises(LockError, match="no lock cluster:other"):
        mgr.acquire("cluster", ["other"], owner="j2")
    for change in (mgr.add, mgr.remove):
        with pytest.raises(LockError, match="only the big lock"):
            change("cluster", ["x"])


def test_inner_locks_require_the_big_lock(mgr: LockManager) -> None:
    with pytest.raises(LockError, match="must hold the big lock cluster"):
        mgr.acquire("node", ["n1"], owner="j1")
    assert mgr.acquire("cluster", ["cluster"], shared=True, owner="j1")
    assert mgr.acquire("node", ["n1"], owner="j1")


def test_levels_are_acquired_outermost_first(mgr: LockManager) -> None:
    mgr.acquire("cluster", ALL, shared=True, owner="j1")
    mgr.acquire("instance", ["i1"], owner="j1")  # skipping a level is fine
    with pytest.raises(LockError, match="levels must be acquired outermost first"):
        mgr.acquire("node", ["n1"], owner="j1")
    assert mgr.owned("node", owner="j1") == frozenset()


def test_a_second_acquire_at_a_held_level_raises(mgr: LockManager) -> None:
    mgr.acquire("cluster", ["cluster"], shared=True, owner="j1")
    mgr.acquire("node", ["n1"], owner="j1")
    with pytest.raises(LockError, match="already holds locks at level node"):
        mgr.acquire("node", ["n2"], owner="j1")
    mgr.acquire("cluster", ["cluster"], shared=True, owner="j2")
    with pytest.raises(LockError, match="already holds locks at level cluster"):
        mgr.acquire("cluster", ["cluster"], shared=True, owner="j2")


def test_the_big_lock_stays_while_inner_locks_are_held(mgr: LockManager) -> None:
    mgr.acquire("cluster", ["cluster"], shared=True, owner="j1")
    mgr.acquire("node", ["n1"], owner="j1")
    with pytest.raises(LockError, match="cannot release the big lock cluster"):
        mgr.release("cluster", owner="j1")
    mgr.release("node", owner="j1")
    mgr.release("cluster", owner="j1")
    assert mgr.owned("cluster", owner="j1") == frozenset()


def test_exclusive_big_lock_keeps_everyone_else_out(mgr: LockManager) -> None:
    assert mgr.acquire("cluster", ["cluster"], owner="admin")
    assert not mgr.acquire("cluster", ["cluster"], shared=True, timeout=0, owner="j1")
    mgr.release("cluster", owner="admin")
    assert mgr.acquire("cluster", ["cluster"], shared=True, timeout=0, owner="j1")


def test_unknown_level_and_name_raise(mgr: LockManager) -> None:
    with pytest.raises(LockError, match="no lock level 'rack'"):
        mgr.acquire("rack", ["r1"])
    mgr.acquire("cluster", ["cluster"], shared=True, owner="j1")
    with pytest.raises(LockError, match="no lock node:n9; add it first"):
        mgr.acquire("node", ["n1", "n9"], owner="j1")
    assert mgr.owned("node", owner="j1") == frozenset()


def test_a_single_string_is_not_a_list_of_names(mgr: LockManager) -> None:
    with pytest.raises(TypeError, match="not the string 'n1'"):
        mgr.acquire("node", "n1")


# -- LockManager: acquiring several names ------------------------------------------------


def holding(mgr: LockManager, owner: str, *levels_and_names: tuple[str, list[str]]) -> None:
    mgr.acquire("cluster", ["cluster"], shared=True, owner=owner)
    for level, names in levels_and_names:
        assert mgr.acquire(level, names, owner=owner)


def info_of(mgr: LockManager, level: str, name: str) -> LockInfo:
    return next(i for i in mgr.info() if (i.level, i.name) == (level, name))


def test_several_names_are_taken_in_sorted_order(mgr: LockManager) -> None:
    holding(mgr, "b", ("node", ["n2"]))
    mgr.acquire("cluster", ["cluster"], shared=True, owner="a")
    waiter = Waiter(lambda: mgr.acquire("node", ["n3", "n1", "n2"], owner="a"))
    wait_until(lambda: info_of(mgr, "node", "n2").pending == ((0, False, "a"),))
    assert info_of(mgr, "node", "n1").owners == ("a",)
    assert info_of(mgr, "node", "n3").owners == ()  # not taken before n2
    mgr.release("node", owner="b")
    assert waiter.join() is True
    assert mgr.owned("node", owner="a") == {"n1", "n2", "n3"}


def test_several_names_are_all_or_nothing_on_timeout(mgr: LockManager) -> None:
    holding(mgr, "b", ("node", ["n2"]))
    mgr.acquire("cluster", ["cluster"], shared=True, owner="a")
    assert mgr.acquire("node", ["n1", "n2", "n3"], timeout=0.05, owner="a") is False
    assert mgr.owned("node", owner="a") == frozenset()
    assert all(info.owners == () for info in mgr.info() if info.name in ("n1", "n3"))
    assert all(info.pending == () for info in mgr.info())
    # a is free to try again at the same level
    mgr.release("node", owner="b")
    assert mgr.acquire("node", ["n1", "n2", "n3"], timeout=0, owner="a")


def test_the_timeout_covers_all_names_together(
    mgr: LockManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    given: list[float | None] = []
    real_acquire = SharedLock.acquire

    def spy(self: SharedLock, *args: Any, **kwargs: Any) -> bool:
        if self.name.startswith("node:"):
            given.append(args[1] if len(args) > 1 else kwargs.get("timeout"))
        return real_acquire(self, *args, **kwargs)

    monkeypatch.setattr(SharedLock, "acquire", spy)
    holding(mgr, "b", ("node", ["n1"]))
    mgr.acquire("cluster", ["cluster"], shared=True, owner="a")
    waiter = Waiter(lambda: mgr.acquire("node", ["n1", "n2"], timeout=WAIT, owner="a"))
    wait_until(lambda: info_of(mgr, "node", "n1").pending != ())
    mgr.release("node", owner="b")
    assert waiter.join() is True
    first, second = given[-2:]
    assert first is not None and second is not None
    assert second < first <= WAIT


def test_release_of_a_lock_not_held_raises(mgr: LockManager) -> None:
    holding(mgr, "a", ("node", ["n1"]))
    with pytest.raises(LockError, match=r"'a' does not hold lock node:n2"):
        mgr.release("node", ["n2"], owner="a")
    mgr.release("node", ["n1"], owner="a")
    assert mgr.owned("node", owner="a") == frozenset()


def test_info_lists_every_lock_with_holders_waiters_and_since() -> None:
    mgr = LockManager(["cluster", "node"], clock=lambda: 42.0)
    mgr.add("node", ["n2", "n1"])
    holding(mgr, "j3", ("node", ["n1"]))
    mgr.acquire("cluster", ["cluster"], shared=True, owner="j7")
    waiter = Waiter(lambda: mgr.acquire("node", ["n1"], priority=-5, owner="j7"))
    wait_until(lambda: info_of(mgr, "node", "n1").pending != ())
    assert mgr.info() == [
        LockInfo("cluster", "cluster", "shared", ("j3", "j7"), (), 42.0),
        LockInfo("node", "n1", "exclusive", ("j3",), ((-5, False, "j7"),), 42.0),
        LockInfo("node", "n2", None, (), (), None),
    ]
    mgr.release("node", owner="j3")
    assert waiter.join() is True


# -- LockManager: ALL, add and remove ------------------------------------------------------


def test_all_takes_every_lock_of_the_level(mgr: LockManager) -> None:
    holding(mgr, "a")
    assert mgr.acquire("node", ALL, shared=True, owner="a")
    assert mgr.owned("node", owner="a") == {"n1", "n2", "n3"}
    mgr.acquire("cluster", ["cluster"], shared=True, owner="b")
    assert not mgr.acquire("node", ["n3"], timeout=0, owner="b")
    assert mgr.acquire("node", ALL, shared=True, timeout=0, owner="b")  # sharers coexist


def test_all_blocks_add_and_remove_until_released(mgr: LockManager) -> None:
    holding(mgr, "a")
    mgr.acquire("node", ALL, shared=True, owner="a")
    adder = Waiter(lambda: mgr.add("node", ["n4"], owner="admin"))
    assert adder.still_blocked_after(0.1)
    mgr.release("node", ["n1", "n2"], owner="a")
    assert adder.still_blocked_after(0.05)  # still holding part of ALL
    mgr.release("node", owner="a")
    adder.join()
    assert [i.name for i in mgr.info() if i.level == "node"] == ["n1", "n2", "n3", "n4"]
    mgr.acquire("node", ALL, owner="a")
    remover = Waiter(lambda: mgr.remove("node", ["n4"], owner="admin"))
    assert remover.still_blocked_after(0.1)
    mgr.release("node", owner="a")
    remover.join()
    assert [i.name for i in mgr.info() if i.level == "node"] == ["n1", "n2", "n3"]


def test_add_leaves_existing_names_alone(mgr: LockManager) -> None:
    holding(mgr, "a", ("node", ["n1"]))
    mgr.add("node", ["n1", "n4"], owner="admin")
    assert info_of(mgr, "node", "n1").owners == ("a",)
    assert info_of(mgr, "node", "n4").mode is None


def test_remove_waits_for_holders_then_the_name_is_gone(mgr: LockManager) -> None:
    holding(mgr, "a", ("node", ["n1"]))
    remover = Waiter(lambda: mgr.remove("node", ["n1"], owner="admin"))
    wait_until(lambda: info_of(mgr, "node", "n1").pending == ((0, False, "admin"),))
    mgr.acquire("cluster", ["cluster"], shared=True, owner="b")
    late = Waiter(lambda: mgr.acquire("node", ["n1"], owner="b"))
    wait_until(lambda: len(info_of(mgr, "node", "n1").pending) == 2)
    mgr.release("node", owner="a")
    remover.join()
    with pytest.raises(LockError, match="lock node:n1 was deleted"):
        late.join()
    assert mgr.owned("node", owner="b") == frozenset()
    assert "n1" not in {i.name for i in mgr.info()}
    with pytest.raises(LockError, match="no lock node:n1"):
        mgr.acquire("node", ["n1"], owner="a")


def test_remove_of_unknown_names_removes_nothing(mgr: LockManager) -> None:
    with pytest.raises(LockError, match="no lock node:n9 to remove"):
        mgr.remove("node", ["n1", "n9"])
    assert {i.name for i in mgr.info() if i.level == "node"} == {"n1", "n2", "n3"}


def test_prune_removes_only_locks_nobody_holds_or_waits_for(mgr: LockManager) -> None:
    holding(mgr, "a", ("node", ["n1"]))
    mgr.acquire("cluster", ["cluster"], shared=True, owner="b")
    waiter = Waiter(lambda: mgr.acquire("node", ["n1"], owner="b"))
    wait_until(lambda: len(info_of(mgr, "node", "n1").pending) == 1)
    holding(mgr, "c", ("node", ["n2"]))
    mgr.release("node", owner="c")  # n2 is free again; n3 was never used

    assert mgr.prune("node", older_than=0) == 2
    assert {i.name for i in mgr.info() if i.level == "node"} == {"n1"}
    with pytest.raises(LockError, match="no lock node:n2; add it first"):
        mgr.acquire("node", ["n2"], owner="c")
    mgr.add("node", ["n2"], owner="c")  # a pruned name can come back
    mgr.acquire("node", ["n2"], owner="c")
    mgr.release("node", owner="a")
    waiter.join()
    assert mgr.owned("node", owner="b") == frozenset({"n1"})
    with pytest.raises(LockError, match="holds only the big lock"):
        mgr.prune("cluster")
    with pytest.raises(TypeError, match="older_than must be seconds, not str"):
        mgr.prune("node", older_than="1")  # type: ignore[arg-type]


def test_a_lock_looked_up_before_it_was_pruned_refuses_with_lock_error(
    mgr: LockManager,
) -> None:
    stale = dict(mgr._levels["node"].locks)["n1"]  # as a concurrent acquirer may hold it
    assert mgr.prune("node", older_than=0) == 3
    with pytest.raises(LockError, match="lock node:n1 was deleted"):
        stale.acquire(owner="late")


def test_add_replaces_a_lock_deleted_but_not_yet_gone_from_the_level(mgr: LockManager) -> None:
    # prune() deletes idle locks first and drops them from the level after:
    # an add in between must not trust the deleted lock it still finds.
    doomed = mgr._levels["node"].locks["n1"]
    assert doomed._delete_if_idle(made_before=float("inf"))
    mgr.add("node", ["n1"], owner="a")
    assert mgr._levels["node"].locks["n1"] is not doomed
    holding(mgr, "a", ("node", ["n1"]))
    assert mgr.owned("node", owner="a") == frozenset({"n1"})


def test_prune_does_nothing_while_someone_acquires_all(mgr: LockManager) -> None:
    holding(mgr, "a", ("node", ["n2"]))
    mgr.acquire("cluster", ["cluster"], shared=True, owner="b")
    everything = Waiter(lambda: mgr.acquire("node", ALL, shared=True, owner="b"))
    wait_until(lambda: len(info_of(mgr, "node", "n2").pending) == 1)
    assert info_of(mgr, "node", "n3").mode is None  # idle, but b is about to take it
    assert mgr.prune("node", older_than=0) == 0
    mgr.release("node", owner="a")
    everything.join()
    assert mgr.owned("node", owner="b") == frozenset({"n1", "n2", "n3"})
    mgr.release("node", owner="b")
    assert mgr.prune("node", older_than=0) == 3


def test_add_and_remove_refused_while_holding_that_level_or_an_inner_one(
    mgr: LockManager,
) -> None:
    holding(mgr, "a", ("instance", ["i1"]))
    with pytest.raises(LockError, match="release them before adding or removing"):
        mgr.add("node", ["n9"], owner="a")
    with pytest.raises(LockError, match="release them before adding or removing"):
        mgr.remove("instance", ["i2"], owner="a")


# -- lock_attempt_timeouts ------------------------------------------------------------------


def curve(min_s: float, max_s: float, total_s: float) -> Iterator[float]:
    """The spec's recurrence, written out independently of the module."""
    t, running = min_s, 0.0
    while running < total_s:
        yield t
        running += t
        t = min(max(min_s * ((t / min_s) * 1.05) ** 1.25, min_s), max_s)


@pytest.mark.parametrize(("args", "count"), [((1, 5, 30), 12), ((1, 15, 1800), 130)])
def test_attempt_counts_match_ganeti(args: tuple[float, float, float], count: int) -> None:
    assert len(list(lock_attempt_timeouts(*args, seed=1))) == count


def test_short_sequence_values_with_jitter_within_five_percent() -> None:
    exact = [1, 1.0627, 1.1469, 1.2624, 1.4214, 1.6498, 1.9870, 2.5080, 3.3541, 4.8241, 5, 5]
    got = list(lock_attempt_timeouts(1, 5, 30, seed=7))
    assert len(got) == len(exact)
    for value, expected in zip(got, exact, strict=True):
        assert expected * 0.95 - 1e-3 <= value <= expected * 1.05 + 1e-3
    assert got != exact  # there is jitter
    assert sum(exact[:-1]) < 30 <= sum(exact)


def test_the_curve_grows_at_any_scale() -> None:
    exact = list(curve(0.05, 0.5, 3))
    got = list(lock_attempt_timeouts(0.05, 0.5, 3, seed=3))
    assert len(got) == len(exact) > 5
    assert exact == sorted(exact) and exact[0] == 0.05 and exact[-1] == 0.5
    for value, expected in zip(got, exact, strict=True):
        assert abs(value - expected) <= expected * 0.05 + 1e-12


def test_jitter_is_repeatable_per_seed() -> None:
    assert list(lock_attempt_timeouts(1, 5, 30, seed=1)) == list(
        lock_attempt_timeouts(1, 5, 30, seed=1)
    )
    assert list(lock_attempt_timeouts(1, 5, 30, seed=1)) != list(
        lock_attempt_timeouts(1, 5, 30, seed=2)
    )


@pytest.mark.parametrize("args", [(0, 5, 30), (2, 1, 30), (1, 5, 0)])
def test_attempt_timeouts_refuse_bad_bounds(args: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="min_s"):
        next(lock_attempt_timeouts(*args))
