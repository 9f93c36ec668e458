"""An empty list of accepted statuses: go on after the dependency whatever its end.

jobplane keeps ``[]`` as "any final status, canceled included" (Ganeti cancels
the dependent when the dependency was canceled): the one way to say "run
after X whatever happens", e.g. a cleanup job. The same through the Python
API, the HTTP API and the CLI (``--depends ID:any``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from jobplane.client import Client
from jobplane.jobs import OpStatus

from .conftest import Recorder, mark, wait_final
from .http_server import running_daemon
from .test_cli import JOBPLANE


def test_an_empty_status_list_goes_on_after_a_canceled_dependency(
    make_queue: Any, recorder: Recorder
) -> None:
    q = make_queue(start=False)
    first = q.submit([mark("first")])
    cleanup = q.submit([mark("cleanup")], depends=[(first, [])])
    as_mapping = q.submit([mark("cleanup-2")], depends=[{"job": first, "statuses": []}])
    strict = q.submit([mark("strict")], depends=[(first, ["success"])])
    by_default = q.submit([mark("by-default")], depends=[{"job": first}])
    assert q.cancel(first)[0]
    q.pool.resume()
    assert wait_final(q, cleanup).status is OpStatus.SUCCESS
    assert wait_final(q, as_mapping).status is OpStatus.SUCCESS
    assert wait_final(q, strict).status is OpStatus.CANCELED
    assert wait_final(q, by_default).status is OpStatus.CANCELED
    assert q.get(by_default).depends[0].statuses == (OpStatus.SUCCESS,)
    assert sorted(recorder.order) == ["cleanup", "cleanup-2"]
    explained = q.explain(cleanup)
    assert explained.status == "success"


def test_an_empty_status_list_through_http_and_the_cli(tmp_path: Path) -> None:
    with running_daemon(tmp_path, start=False) as (url, queue), Client(url) as c:
        first = c.submit([{"op": "test.noop"}])
        assert c.cancel(first)[0]
        cleanup = c.submit([{"op": "test.noop"}], depends=[{"job": first, "statuses": []}])
        assert c.get(cleanup)["depends"] == [{"job": first, "statuses": []}]
        default = c.submit([{"op": "test.noop"}], depends=[{"job": first}])
        assert c.get(default)["depends"] == [{"job": first, "statuses": ["success"]}]
        env = {**os.environ, "JOBPLANE_URL": url, "COLUMNS": "200"}
        env.pop("JOBPLANE_TOKEN", None)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [JOBPLANE, *args], capture_output=True, text=True, env=env, timeout=60
            )

        submitted = cli("submit", "test.noop", "--depends", f"{first}:any")
        assert submitted.returncode == 0, submitted.stderr
        by_cli = int(submitted.stdout.split("submitted job ")[1].split()[0])
        assert c.get(by_cli)["depends"] == [{"job": first, "statuses": []}]
        shown = cli("info", str(by_cli))
        assert f"depends on job {first} (any final status)" in shown.stdout
        assert json.loads(cli("info", str(by_cli), "--json").stdout)["depends"][0] == {
            "job": first,
            "statuses": [],
        }
        bad = cli("submit", "test.noop", "--depends", f"{first}:")
        assert bad.returncode == 2 and "ID:any" in bad.stderr

        queue.pool.resume()
        for job_id in (cleanup, by_cli):
            assert c.wait_final(job_id, timeout=30)["status"] == "success"
        assert c.wait_final(default, timeout=30)["status"] == "canceled"
