"""Locking under real thread interleavings: the lock mutex, and the manager without a mutex.

Speed is measured in ``bench/locking.py``; these tests check that the fast
paths stay correct when threads really do run into each other.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

import pytest

from jobplane.locking import ALL, LockError, LockManager, LockRequest, _Mutex

WAIT = 5.0


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll observable state until ``predicate`` holds; fail after WAIT seconds."""
    tick = threading.Event()
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        tick.wait(0.001)


@contextmanager
def switching_often() -> Iterator[None]:
    """Make the GIL change hands often, so that threads interleave finely (not synchronisation)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(k)`` in ``count`` threads at once; re-raise the first failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(k: int) -> None:
        try:
            start.wait(WAIT)
            work(k)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 3 * WAIT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a thread is still blocked"
    if errors:
        raise errors[0]


# -- the lock mutex -----------------------------------------------------------------------


def test_a_waiter_parks_and_gets_the_mutex_once_it_is_released() -> None:
    mutex = _Mutex()
    assert mutex.acquire()
    got, leave = threading.Event(), threading.Event()

    def take() -> None:
        with mutex:
            got.set()
            leave.wait(WAIT)

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    wait_until(lambda: len(mutex.parked) == 1, "the waiter to park")
    assert not got.is_set()
    mutex.release()
    assert got.wait(WAIT)
    assert not mutex.parked
    assert not mutex.acquire(False)  # the woken waiter holds it
    leave.set()
    taker.join(WAIT)
    assert not taker.is_alive()
    assert mutex.acquire(False)


def test_a_release_just_before_the_waiter_parks_is_not_lost() -> None:
    mutex = _Mutex()
    assert mutex.acquire()

    class ReleasedWhileParking(deque[threading.Lock]):
        """The holder lets go after the waiter's failed try, before its gate is in place."""

        def append(self, gate: threading.Lock) -> None:
            if not released.is_set():
                released.set()
                mutex.release()  # finds no gate to open
            super().append(gate)

    released, got = threading.Event(), threading.Event()
    mutex.parked = ReleasedWhileParking()
    gates_left: list[int] = []

    def take() -> None:
        with mutex:
            gates_left.append(len(mutex.parked))
            got.set()

    threading.Thread(target=take, daemon=True).start()
    assert got.wait(WAIT), "the waiter slept through the release"
    assert released.is_set()
    assert gates_left == [0]  # it took its unopened gate back


def test_the_mutex_keeps_a_read_modify_write_whole_across_threads() -> None:
    mutex = _Mutex()
    count = [0]
    per_thread = 3000

    def work(k: int) -> None:
        for i in range(per_thread):
            with mutex:
                value = count[0]
                if i % 4 == 0:
                    os.sched_yield()  # others run meanwhile and find the mutex held
                count[0] = value + 1

    with switching_often():
        run_threads(4, work)
    assert count[0] == 4 * per_thread
    assert not mutex.parked
    assert mutex.acquire(False)


# -- the manager: one owner, one thread ---------------------------------------------------


def manager() -> LockManager:
    mgr = LockManager(["cluster", "node"])
    mgr.add("node", ["a", "b"])
    return mgr


def test_an_owner_acquiring_in_one_thread_cannot_acquire_in_another() -> None:
    mgr = manager()
    for owner in ("holder", "job"):
        mgr.acquire("cluster", ["cluster"], shared=True, owner=owner)
    mgr.acquire("node", ["a"], owner="holder")
    result: list[bool] = []
    blocked = threading.Thread(
        target=lambda: result.append(mgr.acquire("node", ["a"], owner="job")), daemon=True
    )
    blocked.start()
    wait_until(
        lambda: any(i.name == "a" and i.pending for i in mgr.info()), "the job to wait for a"
    )
    with pytest.raises(LockError, match="already acquiring locks in another thread"):
        mgr.acquire("node", ["b"], owner="job", timeout=0)
    mgr.release("node", owner="holder")
    blocked.join(WAIT)
    assert result == [True]
    assert mgr.owned("node", owner="job") == {"a"}


def test_a_queued_request_counts_as_acquiring() -> None:
    mgr = manager()
    for owner in ("holder", "job"):
        mgr.acquire("cluster", ["cluster"], shared=True, owner=owner)
    mgr.acquire("node", ["b"], owner="holder")
    req = mgr.request("node", ["a", "b"], owner="job", on_grant=lambda request: None)
    assert not req.granted
    with pytest.raises(LockError, match="already acquiring locks in another thread"):
        mgr.request("node", ["a"], owner="job", on_grant=lambda request: None)
    assert req.cancel() is True
    assert mgr.request("node", ["a"], owner="job", on_grant=lambda request: None).granted


def test_a_request_granted_at_once_cannot_be_canceled() -> None:
    mgr = manager()
    req = mgr.request("cluster", ["cluster"], shared=True, owner=1, on_grant=lambda r: None)
    assert req.granted
    assert req.cancel() is False
    assert mgr.owned("cluster", owner=1) == {"cluster"}


# -- the manager: many owners, many threads -----------------------------------------------


class Holders:
    """What is held, as seen from outside: a grant is noted after it, a release before it."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._by_lock: dict[tuple[str, str], dict[Hashable, bool]] = {}

    def granted(self, owner: Hashable, level: str, names: frozenset[str], shared: bool) -> None:
        with self._mutex:
            for name in names:
                others = self._by_lock.setdefault((level, name), {})
                assert all(shared and other_shared for other_shared in others.values()), (
                    f"{owner} got {level}:{name} {'shared' if shared else 'exclusive'} "
                    f"while {list(others)} held it"
                )
                others[owner] = shared

    def releasing(self, owner: Hashable, level: str, names: frozenset[str]) -> None:
        with self._mutex:
            for name in names:
                del self._by_lock[(level, name)][owner]


def take(
    mgr: LockManager, level: str, names: list[str] | None, shared: bool, owner: Hashable
) -> None:
    """``request`` and wait for the grant, like the job processor (which requeues instead)."""
    granted = threading.Event()

    def on_grant(request: LockRequest) -> None:
        granted.set()

    req = mgr.request(
        level, ALL if names is None else names, shared=shared, owner=owner, on_grant=on_grant
    )
    if not req.granted:
        assert granted.wait(WAIT), f"{owner} was never granted {level}:{names}"
    assert req.granted and req.error is None


def test_requests_from_many_threads_never_conflict_and_all_finish() -> None:
    mgr = LockManager(["cluster", "node"])
    nodes = [f"n{i}" for i in range(4)]
    mgr.add("node", nodes)
    holders = Holders()

    def owner_steps(k: int) -> None:
        rng = random.Random(k)
        for i in range(300):
            owner = (k, i)
            big_shared = rng.random() < 0.97
            take(mgr, "cluster", ["cluster"], big_shared, owner)
            holders.granted(owner, "cluster", frozenset(["cluster"]), big_shared)
            names = None if rng.random() < 0.1 else rng.sample(nodes, rng.randint(1, 2))
            shared = rng.random() < 0.6
            take(mgr, "node", names, shared, owner)
            held = mgr.owned("node", owner)
            if names is None:  # every lock of the level, which cannot change meanwhile
                assert held == {info.name for info in mgr.info() if info.level == "node"}
            else:
                assert held == set(names)
            holders.granted(owner, "node", held, shared)
            holders.releasing(owner, "node", held)
            mgr.release("node", owner=owner)
            holders.releasing(owner, "cluster", frozenset(["cluster"]))
            mgr.release("cluster", owner=owner)

    def work(k: int) -> None:
        if k < 4:
            owner_steps(k)
            return
        for _ in range(30):  # racing with the ALL requests above
            mgr.add("node", ["x"], owner="admin")
            mgr.remove("node", ["x"], owner="admin")

    with switching_often():
        run_threads(5, work)
    assert all(info.mode is None and info.pending == () for info in mgr.info())
    assert [(info.level, info.name) for info in mgr.info()] == [("cluster", "cluster")] + [
        ("node", name) for name in nodes
    ]
