from __future__ import annotations

import pytest

from jobplane import priorities
from jobplane.errors import InvalidPriority


@pytest.mark.parametrize(
    ("given", "expected"),
    [("high", -10), ("normal", 0), ("low", 10), (-20, -20), (19, 19)],
)
def test_parse_accepts_names_and_range(given: object, expected: int) -> None:
    assert priorities.parse(given) == expected


@pytest.mark.parametrize(
    "given", [-21, 20, True, 1.5, 5.0, None, "urgent", "", [0], "7", " -3 ", "HIGH ", "Low"]
)
def test_parse_refuses_everything_else(given: object) -> None:
    with pytest.raises(InvalidPriority, match="priority"):
        priorities.parse(given)


@pytest.mark.parametrize(("given", "expected"), [("7", 7), ("-20", -20), ("high", -10)])
def test_parse_text_reads_a_command_line_priority(given: str, expected: int) -> None:
    assert priorities.parse_text(given) == expected


@pytest.mark.parametrize("given", ["20", "-21", "1.0", " 3", "+3", "HIGH", "99999999999"])
def test_parse_text_refuses_what_parse_refuses(given: str) -> None:
    with pytest.raises(InvalidPriority, match="priority"):
        priorities.parse_text(given)


def test_escalate_stops_at_highest() -> None:
    assert priorities.escalate(-19, 3) == priorities.HIGHEST
    assert priorities.escalate(0) == -1
