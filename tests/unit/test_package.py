"""The package top: what it exports, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

import jobplane


def test_top_level_names_are_the_documented_classes() -> None:
    from jobplane.client import Client
    from jobplane.errors import JobplaneError
    from jobplane.queue import JobQueue

    assert jobplane.Client is Client
    assert jobplane.JobQueue is JobQueue
    assert jobplane.JobplaneError is JobplaneError
    assert sorted(jobplane.__all__) == ["Client", "JobQueue", "JobplaneError", "__version__"]


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        jobplane.Nope  # noqa: B018


def test_the_command_line_does_not_import_the_job_queue() -> None:
    """The CLI is a client: importing the engine would cost every command ~0.5 s of CPU."""
    code = "import sys, jobplane.cli; print('jobplane.queue' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"
