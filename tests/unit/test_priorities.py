from __future__ import annotations

import pytest

from jobplane import priorities
from jobplane.errors import InvalidPriority


@pytest.mark.parametrize(
    ("given", "expected"),
    [("high", -10), ("normal", 0), ("LOW", 10), (-20, -20), (19, 19), ("7", 7)],
)
def test_parse_accepts_names_and_range(given: object, expected: int) -> None:
    assert priorities.parse(given) == expected


@pytest.mark.parametrize("given", [-21, 20, True, 1.5, None, "urgent", "", [0]])
def test_parse_refuses_everything_else(given: object) -> None:
    with pytest.raises(InvalidPriority, match="priority"):
        priorities.parse(given)


def test_escalate_stops_at_highest() -> None:
    assert priorities.escalate(-19, 3) == priorities.HIGHEST
    assert priorities.escalate(0) == -1
