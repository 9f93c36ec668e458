"""The examples of docs/client.md run against a real daemon, as written (the address aside)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .http_server import running_daemon

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"
EXAMPLES = [
    block
    for block in re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.MULTILINE | re.DOTALL)
    if "FastAPI" not in block  # an application to serve, not a script to run
]


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_the_example_runs(number: int, tmp_path: Path) -> None:
    example = EXAMPLES[number]
    with running_daemon(tmp_path) as (url, _queue):
        script = example.replace("http://127.0.0.1:8470", url)
        script = script.replace("Client() as", f'Client("{url}") as')
        assert url in script or "Client" not in script, example
        ran = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
    assert ran.returncode == 0, ran.stderr
    for promised in re.findall(r"print\(.*# (success|working)", example):
        assert promised in ran.stdout, (promised, ran.stdout)
