"""engine.state.CancelEvent behaves as threading.Event where an op's context uses it."""

from __future__ import annotations

import threading

from jobplane.engine.state import CancelEvent
from jobplane.operations import OpCanceled, OpContext

WAIT_S = 5.0


def test_starts_clear_and_a_wait_times_out_false() -> None:
    event = CancelEvent()
    assert not event.is_set()
    assert event.wait(0.001) is False


def test_set_wakes_a_waiter_on_another_thread() -> None:
    event = CancelEvent()
    waiting = threading.Event()
    woke: list[bool] = []

    def waiter() -> None:
        waiting.set()
        woke.append(event.wait(WAIT_S))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert waiting.wait(WAIT_S)
    event.set()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert woke == [True]
    assert event.is_set()
    assert event.wait(0) is True  # set: returns at once


def test_clear_makes_it_wait_again() -> None:
    event = CancelEvent()
    event.set()
    event.clear()
    assert not event.is_set()
    assert event.wait(0.001) is False


def test_an_op_context_sees_the_cancel() -> None:
    event = CancelEvent()
    ctx = OpContext(7, 0, 0, lambda message: None, event)
    ctx.check_cancel()  # not canceled: returns
    event.set()
    try:
        ctx.sleep(WAIT_S)  # returns at once with OpCanceled, not after WAIT_S
    except OpCanceled as exc:
        assert "job 7" in str(exc)
    else:
        raise AssertionError("sleep did not raise OpCanceled")
