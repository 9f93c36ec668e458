"""jobplane.testing.ManualClock: time that moves only when a test moves it."""

from __future__ import annotations

import pytest

from jobplane.testing import ManualClock


def test_time_stands_still_until_advanced() -> None:
    clock = ManualClock(0.0, wall_start=1000.0)
    assert (clock.monotonic(), clock.wall(), clock()) == (0.0, 1000.0, 0.0)
    clock.advance(2.5)
    assert (clock.monotonic(), clock.wall()) == (2.5, 1002.5)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_timers_fire_in_deadline_order_when_their_time_comes() -> None:
    clock = ManualClock(0.0)
    fired: list[tuple[str, float]] = []
    clock.call_at(3.0, lambda: fired.append(("c", clock.monotonic())))
    clock.call_later(1.0, lambda: fired.append(("a", clock.monotonic())))
    clock.call_at(2.0, lambda: fired.append(("b", clock.monotonic())))

    assert clock.advance(0.5) == 0
    assert clock.advance(2.0) == 2
    assert fired == [("a", 1.0), ("b", 2.0)]
    assert clock.monotonic() == 2.5
    clock.advance(10)
    assert fired[-1] == ("c", 3.0)


def test_a_canceled_timer_never_fires() -> None:
    clock = ManualClock(0.0)
    fired: list[int] = []
    handle = clock.call_later(1.0, lambda: fired.append(1))
    handle.cancel()
    assert clock.pending() == []
    clock.advance(5)
    assert fired == []


def test_a_timer_set_by_a_timer_fires_in_the_same_advance_if_due() -> None:
    clock = ManualClock(0.0)
    fired: list[float] = []

    def again() -> None:
        fired.append(clock.monotonic())
        if len(fired) < 3:
            clock.call_later(1.0, again)

    clock.call_later(1.0, again)
    clock.advance(2.5)
    assert fired == [1.0, 2.0]
    clock.advance(0.5)
    assert fired == [1.0, 2.0, 3.0]


def test_stop_drops_pending_timers() -> None:
    clock = ManualClock(0.0)
    fired: list[int] = []
    clock.call_later(1.0, lambda: fired.append(1))
    clock.stop()
    clock.advance(5)
    assert fired == []
