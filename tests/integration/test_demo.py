"""``make demo`` end to end: a real daemon, the workload over HTTP, nothing left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_runs_the_workload_through_a_daemon_and_stops_it() -> None:
    env = {**os.environ, "JOBPLANE_DEMO_SPEED": "0.5", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "jobplane.demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    pid = int(re.search(r"daemon \(pid (\d+)\) serving http://127\.0\.0\.1:\d+", out).group(1))  # type: ignore[union-attr]
    assert "submitted 30 routine jobs in one batch" in out
    assert "submitted 2 urgent (high) jobs" in out
    assert re.search(r"waits\s+migrate web1 n1->n2 for node:n1, held by evacuate n1", out)
    assert re.search(r"escalated migrate web1 n1->n2: priority raised from 0 to -1", out)
    overtaken = int(re.search(r"overtaking (\d+) routine jobs", out).group(1))  # type: ignore[union-attr]
    assert overtaken >= 1
    assert "32 jobs: 32 success" in out
    assert "nothing left running" in out
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"the demo left its daemon (pid {pid}) running")
