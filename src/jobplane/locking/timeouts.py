"""The timeouts of successive lock attempts: Ganeti's growing curve, and its settings.

``lock_attempt_timeouts`` is the curve; ``LockTimeouts`` holds the three
numbers a daemon is configured with and makes the curve for one sequence of
attempts (the engine's lock waits, ``engine.lockwait``, use it).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


def lock_attempt_timeouts(
    min_s: float, max_s: float, total_s: float, *, seed: int | None = None
) -> Iterator[float]:
    """Yield growing timeouts for successive lock attempts, Ganeti's curve.

    In units of ``min_s``: t0 = 1, t(i+1) = clamp((t(i) * 1.05) ** 1.25, 1, max_s / min_s).
    Values are yielded while the sum of those already yielded is below ``total_s``
    (so the sum reaches ``total_s`` with the last one). Each yielded value carries
    +-5% jitter from ``random.Random(seed)``; the recurrence runs on the exact values.
    ``(1, 15, 1800)`` gives Ganeti's 130 attempts, ``(1, 5, 30)`` gives 12.
    """
    if not 0 < min_s <= max_s or total_s <= 0:
        raise ValueError(
            f"need 0 < min_s <= max_s and total_s > 0, not {min_s!r}, {max_s!r}, {total_s!r}"
        )
    rng = random.Random(seed)
    timeout, total = min_s, 0.0
    while total < total_s:
        yield timeout * (1 + rng.uniform(-0.05, 0.05))
        total += timeout
        timeout = min(max(min_s * ((timeout / min_s) * 1.05) ** 1.25, min_s), max_s)


@dataclass(frozen=True, slots=True)
class LockTimeouts:
    """The lock-attempt timeout curve: first attempt, longest attempt, total per step."""

    min_s: float = 1.0
    max_s: float = 5.0
    step_total_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.max_s <= self.step_total_s:
            raise ValueError(
                "lock timeouts need 0 < min <= max <= step total, "
                f"got {self.min_s}, {self.max_s}, {self.step_total_s}"
            )

    def attempts(self) -> Iterator[float]:
        """The timeouts of one sequence of attempts (one priority step)."""
        return lock_attempt_timeouts(self.min_s, self.max_s, self.step_total_s)


DEFAULT_LOCK_TIMEOUTS = LockTimeouts()
