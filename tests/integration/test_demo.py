"""``make demo`` end to end: a real daemon, the workload over HTTP, nothing left running."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import httpx
import pytest


def test_demo_runs_the_workload_through_a_daemon_and_stops_it() -> None:
    env = {**os.environ, "JOBPLANE_DEMO_SPEED": "0.5", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "jobplane.demo"],
        stdin=subprocess.DEVNULL,  # not a terminal: the demo ends after its summary
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
    assert "dashboard" not in out and "press Enter" not in out
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"the demo left its daemon (pid {pid}) running")


def test_demo_on_a_terminal_keeps_the_dashboard_up_until_enter() -> None:
    env = {**os.environ, "JOBPLANE_DEMO_SPEED": "0.1", "COLUMNS": "200", "TERM": "xterm"}
    terminal, child_end = pty.openpty()
    fcntl.ioctl(child_end, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    demo = subprocess.Popen(
        [sys.executable, "-m", "jobplane.demo"],
        stdin=child_end,
        stdout=child_end,
        stderr=child_end,
        env=env,
        start_new_session=True,
    )
    os.close(child_end)
    seen = ""
    try:
        seen = _read_until(terminal, "press Enter or Ctrl+C to stop the daemon", seen)
        url = re.search(r"dashboard: open (http://127\.0\.0\.1:\d+)/ in a browser", seen)
        assert url is not None, seen
        page = httpx.get(f"{url.group(1)}/", timeout=10)  # still serving after the workload
        assert page.status_code == 200 and "jobplane" in page.text
        pid = int(re.search(r"daemon \(pid (\d+)\)", seen).group(1))  # type: ignore[union-attr]
        os.write(terminal, b"\n")
        seen = _read_until(terminal, "nothing left running", seen)
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:  # failed: stop the demo and its daemon (its own session)
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)
        os.close(terminal)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _read_until(fd: int, text: str, seen: str, timeout: float = 120.0) -> str:
    """Read the terminal until ``text`` shows (escape sequences removed); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while text not in ANSI.sub("", seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{text!r} never showed:\n{ANSI.sub('', seen)[-3000:]}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                seen += os.read(fd, 65536).decode(errors="replace")
            except OSError:  # the demo closed the terminal
                break
    return ANSI.sub("", seen)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
