"""LockManager.request: the non-blocking form the job processor uses."""

from __future__ import annotations

import threading

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
