"""Shared test configuration.

When ``CI=true`` a skipped test is an error: the PostgreSQL and browser
tests must run in CI, never silently skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI (CI=true makes skips errors): {reason}"


@pytest.fixture
def bind_mount() -> Iterator[Callable[[Path, Path], None]]:
    """``bind_mount(source, target)``: mount ``source`` (a folder or a file) on ``target`` too.

    Needs root (and a kernel that lets this process mount); otherwise the test
    is skipped, and with ``CI=true`` it fails instead. Unmounted at the end.
    """
    mounted: list[Path] = []

    def bind(source: Path, target: Path) -> None:
        why = ""
        if os.geteuid() != 0:
            why = "a bind mount needs root"
        elif shutil.which("mount") is None:
            why = "no mount command"
        else:
            if source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                ["mount", "--bind", str(source), str(target)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if done.returncode == 0:
                mounted.append(target)
                return
            why = f"mount --bind failed: {done.stderr.strip()}"
        if IN_CI:
            pytest.fail(f"{why} (CI=true: the bind mount test must run)")
        pytest.skip(why)

    yield bind
    for target in reversed(mounted):  # lazily: a failed test may leave a file open there
        subprocess.run(["umount", "--lazy", str(target)], check=True, timeout=30)
