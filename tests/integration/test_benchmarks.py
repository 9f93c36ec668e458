"""Every benchmark in bench/ runs once in its ``--quick`` smoke mode and prints its JSON.

No figures are checked: the point is that a benchmark that cannot run (an
import that broke, an API it still calls the old way) never lands again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))
TIMEOUT = 120


def test_the_benchmarks_are_found() -> None:
    assert len(SCRIPTS) >= 4, SCRIPTS


def test_no_benchmark_shadows_a_standard_library_module() -> None:
    # Python puts bench/ first on sys.path when it runs a script there: a bench/http.py
    # made every benchmark import it instead of the standard library's http package.
    assert not [p.name for p in SCRIPTS if p.stem in sys.stdlib_module_names]


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.stem for script in SCRIPTS])
def test_benchmark_runs_quick_and_prints_json(script: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    done = subprocess.run(
        [sys.executable, str(script), "--quick"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert isinstance(result, dict) and result, done.stdout[-3000:]
