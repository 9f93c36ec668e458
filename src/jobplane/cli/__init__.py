"""The ``jobplane`` command line."""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``jobplane`` command."""
    raise SystemExit("jobplane: the command line is not built yet")
