"""LockManager.request: the non-blocking form the job processor uses."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from jobplane.locking import ALL, LockError, LockManager, LockRequest, SharedLock

WAIT = 5.0


class Granted:
    """Collects grant callbacks and lets a test wait for them."""

    def __init__(self) -> None:
        self.requests: list[LockRequest] = []
        self._cond = threading.Condition()

    def __call__(self, request: LockRequest) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def told_within(self, seconds: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self.requests), seconds)

    def wait_for(self, count: int) -> list[LockRequest]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.requests) >= count, WAIT)
            return list(self.requests)


def manager() -> LockManager:
    mgr = LockManager(["cluster", "node"])
    mgr.add("node", ["a", "b", "c"])
    return mgr


def test_free_locks_are_granted_at_once_without_callback() -> None:
    mgr, granted = manager(), Granted()
    mgr.acquire("cluster", ["cluster"], shared=True, owner=1)
    req = mgr.request("node", ["b", "a"], owner=1, on_grant=granted)
    assert req.granted and req.error is None
    assert mgr.owned("node", owner=1) == {"a", "b"}
    assert granted.requests == []
    assert req.cancel() is False


def test_queued_request_is_granted_by_a_release_through_the_callback() -> None:
    mgr, granted = manager(), Granted()
    for owner in (1, 2):
        mgr.acquire("cluster", ["cluster"], shared=True, owner=owner)
    mgr.acquire("node", ["b"], owner=1)
    req = mgr.request("node", ["a", "b"], owner=2, on_grant=granted)
    assert not req.granted
    assert mgr.owned("node", owner=2) == frozenset()  # holds "a" for the request, not yet owned
    mgr.release("node", owner=1)
    assert granted.wait_for(1) == [req]
    assert req.granted
    assert mgr.owned("node", owner=2) == {"a", "b"}


def test_async_and_blocking_waiters_share_one_priority_order() -> None:
    lock = SharedLock("x")
    lock.acquire(owner="holder")
    order: list[str] = []
    done = threading.Event()

    def note(name: str) -> None:
        order.append(name)
        lock.release(owner=name)
        if len(order) == 3:
            done.set()

    assert not lock.acquire_async(False, 5, "low", lambda err: note("low"))
    assert not lock.acquire_async(False, -5, "high", lambda err: note("high"))
    blocking = threading.Thread(
        target=lambda: (lock.acquire(priority=0, owner="mid"), note("mid")), daemon=True
    )
    blocking.start()
    while len(lock.statistics().pending) < 3:
        done.wait(0.001)
    assert [p[2] for p in lock.statistics().pending] == ["high", "mid", "low"]
    lock.release(owner="holder")
    assert done.wait(WAIT)
    blocking.join(WAIT)
    assert order == ["high", "mid", "low"]


def test_cancel_withdraws_and_releases_what_the_request_took() -> None:
    mgr, granted = manager(), Granted()
    for owner in (1, 2):
        mgr.acquire("cluster", ["cluster"], shared=True, owner=owner)
    mgr.acquire("node", ["b"], owner=1)
    req = mgr.request("node", ["a", "b", "c"], owner=2, on_grant=granted)
    info = {i.name: i for i in mgr.info()}
    assert info["a"].owners == (2,) and info["b"].pending == ((0, False, 2),)
    assert req.cancel() is True
    info = {i.name: i for i in mgr.info()}
    assert info["a"].owners == () and info["b"].pending == ()
    mgr.release("node", owner=1)
    # owner 2 may acquire again: nothing of the canceled request is left
    assert mgr.acquire("node", ["a"], owner=2, timeout=0)
    assert granted.requests == []


def test_deleting_a_lock_fails_its_async_waiters() -> None:
    lock = SharedLock("x")
    lock.acquire(owner="holder")
    told: list[object] = []
    event = threading.Event()
    assert not lock.acquire_async(False, 0, "waiter", lambda err: (told.append(err), event.set()))
    assert lock.delete(owner="holder")
    assert event.wait(WAIT)
    assert isinstance(told[0], LockError) and "deleted" in str(told[0])
    assert lock.cancel_async("waiter") is True  # nothing queued, nothing held


def test_request_all_and_level_rules() -> None:
    mgr, granted = manager(), Granted()
    with pytest.raises(LockError, match="big lock"):
        mgr.request("node", ["a"], owner=9, on_grant=granted)
    mgr.acquire("cluster", ["cluster"], shared=True, owner=9)
    req = mgr.request("node", ALL, shared=True, owner=9, on_grant=granted)
    assert req.granted
    assert mgr.owned("node", owner=9) == {"a", "b", "c"}
    with pytest.raises(LockError):
        mgr.request("cluster", ["cluster"], owner=9, on_grant=granted)


# -- making names on demand (create=True) ------------------------------------------------


def test_making_a_name_while_all_is_held_parks_the_request_in_priority_order() -> None:
    """Adding a lock never blocks: the request waits for the level's names, like any waiter."""
    mgr, granted = LockManager(["cluster", "node"]), Granted()
    for owner in (1, 2, 3):
        mgr.acquire("cluster", ["cluster"], shared=True, owner=owner)
    mgr.acquire("node", ALL, owner=1)
    low = mgr.request("node", ["new-b"], owner=2, on_grant=granted, create=True)
    high = mgr.request("node", ["new-c"], priority=-20, owner=3, on_grant=granted, create=True)
    assert not low.granted and not high.granted
    waiting = high.waiting_on()
    assert waiting is not None and waiting.name == "node:ALL" and waiting.owners == (1,)
    assert waiting.pending == ((-20, False, 3), (0, False, 2))
    assert [info.name for info in mgr.info()] == ["cluster"]  # nothing made yet
    mgr.release("node", owner=1)
    assert granted.wait_for(2) == [high, low]
    assert mgr.owned("node", owner=2) == {"new-b"}
    assert mgr.owned("node", owner=3) == {"new-c"}
    assert high.waiting_on() is None


def test_making_names_that_exist_takes_them_like_any_request() -> None:
    mgr, granted = manager(), Granted()
    mgr.acquire("cluster", ["cluster"], shared=True, owner=1)
    req = mgr.request("node", ["a", "z"], owner=1, on_grant=granted, create=True)
    assert req.granted
    assert mgr.owned("node", owner=1) == {"a", "z"}
    with pytest.raises(LockError, match="needs names"):
        mgr.request("node", ALL, owner=2, on_grant=granted, create=True)


def test_a_made_name_pruned_before_it_is_taken_is_made_again_a_few_times() -> None:
    mgr, granted = LockManager(["cluster", "node"]), Granted()
    mgr.acquire("cluster", ["cluster"], shared=True, owner=1)
    make = mgr._make_missing_unlocked
    prunes = [2]

    def make_then_prune(req: LockRequest, may_queue: bool) -> bool:
        made = make(req, may_queue)
        if made and prunes[0] > 0:  # maintenance prunes it before the request takes it
            prunes[0] -= 1
            assert mgr.prune("node", older_than=-1) == 1
        return made

    mgr._make_missing_unlocked = make_then_prune  # type: ignore[method-assign]
    req = mgr.request("node", ["n1"], owner=1, on_grant=granted, create=True)
    assert req.granted and prunes == [0]
    assert mgr.owned("node", owner=1) == {"n1"}
    mgr.release("node", owner=1)
    assert mgr.prune("node", older_than=-1) == 1

    prunes[0] = 1000  # pruned every time: it gives up cleanly, holding nothing at the level
    with pytest.raises(LockError, match="pruned or removed 6 times"):
        mgr.request("node", ["n2"], owner=1, on_grant=granted, create=True)
    assert mgr.owned("node", owner=1) == frozenset()
    assert granted.requests == []


# -- the grant dispatcher: one per manager, stopped by close() ------------------------------


def wait_in_queue_then_grant(mgr: LockManager, on_grant: Callable[[LockRequest], None]) -> None:
    """Make owner 2 queue for node:a behind owner 1, then release it: a grant is told."""
    for owner in (1, 2):
        mgr.acquire("cluster", ["cluster"], shared=True, owner=owner)
    mgr.acquire("node", ["a"], owner=1)
    assert not mgr.request("node", ["a"], owner=2, on_grant=on_grant).granted
    mgr.release("node", owner=1)


def test_a_slow_grant_callback_does_not_hold_up_another_managers_grants() -> None:
    first, second = manager(), manager()
    in_slow, let_slow_go = threading.Event(), threading.Event()

    def slow(request: LockRequest) -> None:
        in_slow.set()
        let_slow_go.wait(WAIT)

    try:
        wait_in_queue_then_grant(first, slow)
        assert in_slow.wait(WAIT)
        granted = Granted()
        wait_in_queue_then_grant(second, granted)
        assert granted.told_within(1.0), "the second manager's grant waited for the first's"
    finally:
        let_slow_go.set()
        first.close()
        second.close()


def test_close_runs_the_grants_already_made_then_stops_the_managers_thread() -> None:
    mgr, granted = manager(), Granted()
    before = set(threading.enumerate())
    wait_in_queue_then_grant(mgr, granted)
    granted.wait_for(1)
    (grants_thread,) = [t for t in set(threading.enumerate()) - before if "lock-grants" in t.name]
    mgr.close()
    grants_thread.join(WAIT)
    assert not grants_thread.is_alive()
    mgr.close()  # closing twice is harmless


def test_a_fresh_owner_takes_the_free_big_lock_at_once_and_gives_it_back() -> None:
    mgr, granted = manager(), Granted()
    req = mgr.request("cluster", ALL, shared=True, owner=1, on_grant=granted)
    assert req.granted and req.error is None and granted.requests == []
    assert mgr.owned("cluster", owner=1) == {"cluster"}
    inner = mgr.request("node", ["a"], owner=1, on_grant=granted)  # levels go on as usual
    assert inner.granted
    with pytest.raises(LockError):
        mgr.release("cluster", owner=1)  # not while it holds an inner level
    mgr.release("node", owner=1)
    mgr.release("cluster", owner=1)
    assert mgr.owned("cluster", owner=1) == frozenset()
    exclusive = mgr.request("cluster", ["cluster"], owner=2, on_grant=granted)
    assert exclusive.granted  # nothing of owner 1 is left behind


def test_a_fresh_owner_queues_behind_a_waiting_exclusive_request_for_the_big_lock() -> None:
    mgr, granted = manager(), Granted()
    assert mgr.request("cluster", ALL, shared=True, owner=1, on_grant=granted).granted
    writer = mgr.request("cluster", ALL, owner=2, on_grant=granted)
    assert not writer.granted  # waits for owner 1's shared hold
    reader = mgr.request("cluster", ALL, shared=True, owner=3, on_grant=granted)
    assert not reader.granted  # shared, but behind the waiting exclusive request
    mgr.release("cluster", owner=1)
    assert granted.wait_for(1)[0] is writer
    mgr.release("cluster", owner=2)
    assert granted.wait_for(2)[1] is reader
