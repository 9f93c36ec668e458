"""``jobplane serve --ops MODULE`` imports from the current directory, as uvicorn and celery do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from .http_server import free_port

JOBPLANE = str(Path(sys.executable).parent / "jobplane")
OPS = """
from jobplane.operations import OpContext, Registry


def register(registry: Registry) -> None:
    @registry.op("here.hello")
    def hello(ctx: OpContext) -> str:
        return "hello"
"""


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
    env.pop("PYTHONPATH", None)
    return env


def test_ops_module_in_the_current_directory_is_found(tmp_path: Path) -> None:
    (tmp_path / "myops.py").write_text(OPS)
    port = free_port()
    command = [JOBPLANE, "serve", "--db", "sqlite:///./jobs.db", "--ops", "myops"]
    daemon = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stderr is not None
        for line in daemon.stderr:  # until it listens, or exits
            if "listening on" in line or "jobplane:" in line:
                break
        assert "listening on" in line, line
        ops = httpx.get(f"http://127.0.0.1:{port}/v1/ops", timeout=10).json()
        assert "here.hello" in [op["name"] for op in ops]
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        assert daemon.stderr is not None
        daemon.stderr.close()


def test_a_missing_ops_module_says_where_it_was_looked_for(tmp_path: Path) -> None:
    command = [JOBPLANE, "serve", "--db", "sqlite:///./jobs.db", "--ops", "nosuchops"]
    refused = subprocess.run(
        [*command, "--port", str(free_port())],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "cannot import ops module 'nosuchops': no nosuchops.py or package nosuchops" in (
        refused.stderr
    )
    assert f"in {tmp_path} (the current directory)" in refused.stderr
    assert "site-packages" in refused.stderr  # and the rest of Python's path


def test_an_import_error_inside_the_ops_module_is_reported_as_such(tmp_path: Path) -> None:
    (tmp_path / "brokenops.py").write_text("import no_such_dependency\n")
    command = [JOBPLANE, "serve", "--db", "sqlite:///./jobs.db", "--ops", "brokenops"]
    refused = subprocess.run(
        [*command, "--port", str(free_port())],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert (
        f"cannot import ops module 'brokenops' ({tmp_path / 'brokenops.py'}): "
        "No module named 'no_such_dependency'"
    ) in refused.stderr
