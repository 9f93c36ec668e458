"""The README's five-minute tour, run as written: its code is read from README.md itself.

In an empty directory: ``myops.py`` as the README gives it (and lint-clean), the
embedded example, then the shell commands one by one (``.venv/bin/jobplane`` is
this environment's command; the daemon's port comes from ``JOBPLANE_PORT`` and
``JOBPLANE_URL``, so the commands stay as written). Every command must exit 0,
and every "quoted" text in a command's comment must be in what it printed, so
the README cannot promise output the commands do not give.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .http_server import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIMEOUT = 90.0


def blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def block(language: str, starting: str) -> str:
    (found,) = [b for b in blocks(language) if b.startswith(starting)]
    return found


def environment(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    env.pop("PYTHONPATH", None)
    env.update(JOBPLANE_PORT=str(port), JOBPLANE_URL=f"http://127.0.0.1:{port}", COLUMNS="200")
    return env


def as_here(command: str) -> str:
    """The command with the README's ``.venv/bin/`` pointing at this environment's."""
    return command.replace(".venv/bin/", f"{BIN}/")


def test_the_ops_module_of_the_tour_is_lint_clean(tmp_path: Path) -> None:
    (tmp_path / "myops.py").write_text(block("python", "# myops.py\n"))
    lint = subprocess.run(
        [BIN / "ruff", "check", "--isolated", "--select", "E,F,W,I", "myops.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout  # e.g. F401: an unused import


def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "myops.py").write_text(block("python", "# myops.py\n"))
    port = free_port()
    env = environment(port)

    embedded = block("python", "from jobplane.operations import Registry\n")
    ran = subprocess.run(
        [sys.executable, "-c", embedded],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert (ran.returncode, ran.stdout) == (0, "success\n"), ran.stderr

    daemon: subprocess.Popen[str] | None = None
    reader: threading.Thread | None = None
    outputs: dict[str, str] = {}
    try:
        for line in block("sh", "rm -f tour.db").splitlines():
            command, _, comment = line.partition(" #")
            command = as_here(command.strip())
            if command.endswith("&"):
                daemon, reader = start(command.removesuffix("&").strip(), tmp_path, env)
                continue
            if command == "kill %1":
                assert daemon is not None
                run_the_client_example(port, env, tmp_path)
                daemon.send_signal(signal.SIGTERM)
                assert daemon.wait(TIMEOUT) == 0
                continue
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
            printed = done.stdout + done.stderr
            assert done.returncode == 0, (command, printed)
            for promised in re.findall(r'"([^"]*)"', comment):
                assert promised in printed, (command, promised, printed)
            outputs[command.split("jobplane ", 1)[-1]] = printed
    finally:
        if daemon is not None:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait(TIMEOUT)
            assert daemon.stderr is not None and reader is not None
            reader.join(TIMEOUT)  # it read to the end: the daemon has exited
            daemon.stderr.close()
    assert daemon is not None and daemon.returncode == 0
    assert "node:n2" in outputs["locks"]
    listed = outputs["list"]
    assert "canceled" in listed and "success" in listed


def start(
    command: str, folder: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[str], threading.Thread]:
    """Start the daemon's command and wait (on its output, with a deadline) until it listens."""
    daemon = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=folder,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    listening = threading.Event()

    def read() -> None:
        assert daemon.stderr is not None
        for line in daemon.stderr:
            lines.append(line)
            if "listening on" in line:
                listening.set()
        listening.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert listening.wait(TIMEOUT) and daemon.poll() is None, "".join(lines)
    return daemon, reader


def run_the_client_example(port: int, env: dict[str, str], folder: Path) -> None:
    example = block("python", "from jobplane import Client\n\nwith Client(")
    assert "http://127.0.0.1:8470" in example
    ran = subprocess.run(
        [sys.executable, "-c", example.replace("127.0.0.1:8470", f"127.0.0.1:{port}")],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert (ran.returncode, ran.stdout) == (0, "success\n"), ran.stderr
