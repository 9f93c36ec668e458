"""The priority scale, stated once.

A **lower number runs first**. Priorities are integers from ``HIGHEST``
(-20) to ``LOWEST`` (19); ``high``, ``normal`` and ``low`` are names for
-10, 0 and 10. Equal priorities run in the order they were submitted.
Escalation and aging only ever move a priority *down* the number line,
toward ``HIGHEST``.
"""

from __future__ import annotations

from typing import Final

HIGHEST: Final = -20
LOWEST: Final = 19
HIGH: Final = -10
NORMAL: Final = 0
LOW: Final = 10
DEFAULT: Final = NORMAL

NAMES: Final[dict[str, int]] = {"high": HIGH, "normal": NORMAL, "low": LOW}

Priority = int | str


def check_int(value: object, what: str = "priority") -> int:
    """Return ``value`` if it is a plain int (bool is refused), else raise TypeError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value


def parse(value: object) -> int:
    """Turn a priority given through the API (an int in range or a name) into an int.

    Exactly the documented forms: an int (not a bool, not a float, not a
    numeric string) from HIGHEST to LOWEST, or one of the names, spelt as
    they are (``"high"``, not ``"High"`` or ``" high"``).

    Raises:
        InvalidPriority: anything else, with the accepted forms in the message.
    """
    from .errors import InvalidPriority, shown

    if isinstance(value, str) and value in NAMES:
        return NAMES[value]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPriority(
            f"invalid priority {shown(value)}: use an integer from {HIGHEST} to {LOWEST} "
            f"or one of {', '.join(NAMES)}"
        )
    if not HIGHEST <= value <= LOWEST:
        raise InvalidPriority(
            f"priority {shown(value)} is out of range: use an integer from {HIGHEST} (highest) "
            f"to {LOWEST} (lowest)"
        )
    return value


def parse_text(text: str) -> int:
    """A priority typed on a command line: a name, or an integer written in digits."""
    digits = text[1:] if text.startswith("-") else text
    if digits.isascii() and digits.isdigit() and len(digits) <= 3:
        return parse(int(text))
    return parse(text)


def name_of(priority: int) -> str:
    """A readable label: ``high (-10)`` or just ``-3``."""
    for name, number in NAMES.items():
        if number == priority:
            return f"{name} ({number})"
    return str(priority)


def escalate(priority: int, steps: int = 1) -> int:
    """Move ``steps`` toward HIGHEST, never past it."""
    return max(HIGHEST, priority - steps)
