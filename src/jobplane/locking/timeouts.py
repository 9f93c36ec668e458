"""The timeouts of successive lock attempts: Ganeti's growing curve."""

from __future__ import annotations

import random
from collections.abc import Iterator


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
