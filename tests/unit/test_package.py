"""The package top: what it exports, and what importing it costs."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import jobplane


def test_top_level_names_are_the_documented_classes() -> None:
    from jobplane.client import AsyncClient, Client
    from jobplane.errors import JobplaneError
    from jobplane.queue import JobQueue

    assert jobplane.Client is Client
    assert jobplane.AsyncClient is AsyncClient
    assert jobplane.JobQueue is JobQueue
    assert jobplane.JobplaneError is JobplaneError
    assert sorted(jobplane.__all__) == [
        "AsyncClient",
        "Client",
        "JobQueue",
        "JobplaneError",
        "__version__",
    ]


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


def test_every_jobplane_error_lives_in_the_one_drawn_error_tree() -> None:
    """Each error class anywhere in the package is defined in errors.py and drawn there."""
    import importlib
    import pkgutil

    from jobplane import errors

    for module in pkgutil.walk_packages(jobplane.__path__, "jobplane."):
        if module.name != "jobplane.__main__":
            importlib.import_module(module.name)
    pending: list[type[errors.JobplaneError]] = list(errors.JobplaneError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        assert cls.__module__ == "jobplane.errors", f"{cls.__qualname__} is in {cls.__module__}"
        drawn = re.search(rf"── {cls.__name__}\b", errors.__doc__ or "")
        assert drawn, f"{cls.__name__} is not drawn in the errors module docstring"
    from jobplane.operations import OpCanceled

    assert OpCanceled is errors.OpCanceled
