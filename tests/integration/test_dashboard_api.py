"""The dashboard's API against a real uvicorn server: newest-first lists and their
filters, who am I, workers, recent op runs, queue depth history, the change feed,
and the page and files served at / and /static/."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobplane.client import Client
from jobplane.http import TokenStore
from jobplane.queue import JobQueue

from .conftest import Recorder, gate, mark
from .http_server import running_daemon

WRITE = "w" * 20
READ = "r" * 20
TIMEOUT = 15.0


@pytest.fixture
def daemon(tmp_path: Path, recorder: Recorder) -> Iterator[tuple[httpx.Client, JobQueue]]:
    with (
        running_daemon(tmp_path, registry=recorder.registry) as (url, queue),
        httpx.Client(base_url=url, timeout=20) as api,
    ):
        yield api, queue
    for event in recorder.gates.values():
        event.set()


def submit(api: httpx.Client, *ops: dict[str, Any], priority: Any = 0) -> int:
    answer = api.post("/v1/jobs", json={"ops": list(ops), "priority": priority})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def ids(answer: httpx.Response) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [job["id"] for job in answer.json()["jobs"]]


# -- GET /v1/jobs: newest first, priority and op filters --------------------------------


def test_list_newest_first_pages_with_before(daemon: tuple[httpx.Client, JobQueue]) -> None:
    api, queue = daemon
    queue.pool.pause()
    made = [submit(api, mark(f"t{n}")) for n in range(5)]

    first = api.get("/v1/jobs", params={"order": "desc", "limit": 2}).json()
    assert [job["id"] for job in first["jobs"]] == made[:-3:-1]
    assert first["next"] == made[-2]
    second = api.get("/v1/jobs", params={"order": "desc", "limit": 2, "before": first["next"]})
    assert ids(second) == [made[2], made[1]]
    last = api.get("/v1/jobs", params={"order": "desc", "limit": 2, "before": made[1]}).json()
    assert last == {"jobs": [last["jobs"][0]], "next": None}
    assert ids(api.get("/v1/jobs", params={"limit": 2})) == made[:2]  # asc stays the default
    with Client(str(api.base_url)) as client:
        page = client.list_page(newest_first=True, before=made[3], limit=2, op="rec.", priority="0")
        assert [job.id for job in page.jobs] == [made[2], made[1]]
        assert page.next == made[1]


def test_list_filters_by_priority_and_op_name(daemon: tuple[httpx.Client, JobQueue]) -> None:
    api, queue = daemon
    queue.pool.pause()
    high = submit(api, mark("a"), priority="high")
    normal = submit(api, mark("b"))
    low = submit(api, {"op": "rec.fail", "params": {"tag": "c"}}, priority=15)

    def listed(**params: Any) -> list[int]:
        return ids(api.get("/v1/jobs", params=params))

    assert listed(priority="high") == [high]
    assert listed(priority="-10") == [high]
    assert listed(priority="-20..0") == [high, normal]
    assert listed(priority="normal..19", order="desc") == [low, normal]
    assert listed(op="fail") == [low]
    assert listed(op="REC.", priority="-20..-1") == [high]
    assert listed(op="nothing") == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"priority": "urgent"}, "invalid_request"),
        ({"priority": "5..-5"}, "invalid_priority"),
        ({"priority": "-30"}, "invalid_priority"),
        ({"order": "newest"}, "invalid_request"),
        ({"before": "0"}, "invalid_request"),
        ({"op": ""}, "invalid_request"),
        ({"op": "x" * 201}, "invalid_request"),
    ],
)
def test_list_refuses_bad_filters_with_422(
    daemon: tuple[httpx.Client, JobQueue], params: dict[str, str], code: str
) -> None:
    answer = daemon[0].get("/v1/jobs", params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code


def test_summaries_carry_op_priorities_escalations_and_start(
    daemon: tuple[httpx.Client, JobQueue],
) -> None:
    api, queue = daemon
    job = submit(api, mark("a"), {"op": "rec.mark", "params": {"tag": "b"}, "priority": 5})
    queue.wait(job, timeout=TIMEOUT)
    [summary] = api.get("/v1/jobs").json()["jobs"]
    assert summary["op_priorities"] == [0, 5]
    assert summary["escalations"] == 0
    assert summary["started_at"] is not None
    assert summary["started_at"] <= summary["ended_at"]


# -- who am I ----------------------------------------------------------------------------


def test_whoami_names_the_role_of_the_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{WRITE} write\n{READ} read\n")
    with running_daemon(tmp_path, tokens=TokenStore.from_file(tokens)) as (url, _queue):

        def whoami(token: str | None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.get(f"{url}/v1/whoami", headers=headers, timeout=10)

        assert whoami(WRITE).json() == {"role": "write", "auth": "token"}
        assert whoami(READ).json() == {"role": "read", "auth": "token"}
        assert whoami(None).status_code == 401
        assert whoami("x" * 20).status_code == 401


def test_whoami_without_tokens_file_is_write_on_loopback(
    daemon: tuple[httpx.Client, JobQueue],
) -> None:
    assert daemon[0].get("/v1/whoami").json() == {"role": "write", "auth": "loopback"}


# -- workers and recent runs ----------------------------------------------------------------


def test_workers_name_the_job_and_op_each_runs(
    daemon: tuple[httpx.Client, JobQueue], recorder: Recorder
) -> None:
    api, _queue = daemon
    held = recorder.gate("w")
    job = submit(api, mark("first"), gate("w"), priority=-3)
    assert recorder.entered.setdefault("w", threading.Event()).wait(TIMEOUT)

    answer = api.get("/v1/workers").json()
    busy = [w for w in answer["workers"] if w["busy"]]
    assert len(answer["workers"]) == 2
    assert busy == [
        {
            "name": busy[0]["name"],
            "busy": True,
            "job": job,
            "op_index": 1,
            "op": "rec.gate",
            "status": "running",
            "priority": -3,
            "started_at": busy[0]["started_at"],
        }
    ]
    assert busy[0]["name"].startswith("jobplane-jobs-")
    assert busy[0]["started_at"] <= answer["now"]
    held.set()


def test_runs_record_who_ran_which_op_when(daemon: tuple[httpx.Client, JobQueue]) -> None:
    api, queue = daemon
    job = submit(api, mark("a"), {"op": "rec.fail", "params": {"tag": "b"}}, priority="low")
    queue.wait(job, timeout=TIMEOUT)

    answer = api.get("/v1/runs").json()
    runs = [run for run in answer["runs"] if run["job"] == job]
    assert [(r["op_index"], r["op"], r["priority"], r["status"]) for r in runs] == [
        (0, "rec.mark", 10, "success"),
        (1, "rec.fail", 10, "error"),
    ]
    stored = api.get(f"/v1/jobs/{job}").json()["ops"]
    for run, op in zip(runs, stored, strict=True):
        assert run["worker"].startswith("jobplane-jobs-")
        assert run["started_at"] == op["started_at"]
        assert op["started_at"] <= run["ended_at"] <= answer["now"]
    assert api.get("/v1/runs", params={"since": answer["now"] + 1}).json()["runs"] == []


# -- queue depth history ------------------------------------------------------------------


def test_status_history_counts_waiting_jobs_by_priority(
    daemon: tuple[httpx.Client, JobQueue],
) -> None:
    api, queue = daemon
    queue.pool.pause()
    for priority in ("high", "high", "low"):
        submit(api, mark("x"), priority=priority)

    answer = api.get("/v1/status/history").json()
    assert answer["current"]["waiting"] == {"-10": 2, "10": 1}
    assert answer["current"]["running"] == 0
    assert answer["interval"] == 1.0 and answer["span"] == 600.0
    assert len(answer["samples"]) >= 1  # one is taken as the server starts
    assert all(s["time"] <= answer["current"]["time"] for s in answer["samples"])


# -- the change feed ----------------------------------------------------------------------


def test_changes_answers_when_a_job_changes(daemon: tuple[httpx.Client, JobQueue]) -> None:
    api, queue = daemon
    queue.pool.pause()
    serial = api.get("/v1/changes").json()["serial"]

    assert api.get("/v1/changes", params={"since": serial, "timeout": 0.05}).json() == {
        "serial": serial,
        "changed": False,
    }
    submit(api, mark("x"))
    answer = api.get("/v1/changes", params={"since": serial, "timeout": TIMEOUT}).json()
    assert answer["changed"] is True and answer["serial"] > serial
    restarted = api.get("/v1/changes", params={"since": answer["serial"] + 100}).json()
    assert restarted["changed"] is True  # a serial from an earlier daemon: answer at once


def test_waiting_on_changes_holds_no_thread(daemon: tuple[httpx.Client, JobQueue]) -> None:
    api, queue = daemon
    queue.pool.pause()
    url = str(api.base_url)
    serial = api.get("/v1/changes").json()["serial"]
    threads_before = threading.active_count()
    watchers = 150  # more than the server's thread pool (40): threads could not serve them

    async def watch() -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=watchers + 10)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            polls = [
                asyncio.ensure_future(
                    client.get("/v1/changes", params={"since": serial, "timeout": 25})
                )
                for _ in range(watchers)
            ]
            await _until(lambda: len(_parked(queue)) >= watchers)
            status = await client.get("/v1/status")  # others are still served
            assert status.status_code == 200
            assert threading.active_count() - threads_before < 10
            assert not any(poll.done() for poll in polls)
            await asyncio.to_thread(submit, api, mark("wake"))
            return [(await poll).json() for poll in polls]

    answers = asyncio.run(asyncio.wait_for(watch(), TIMEOUT))
    assert all(a["changed"] and a["serial"] > serial for a in answers)


def _parked(queue: JobQueue) -> list[Any]:
    """The change-feed waiters of the app serving ``queue`` (found through its listener)."""
    for listener in queue.store._listeners:
        feed = getattr(listener, "__self__", None)
        if feed is not None and hasattr(feed, "_waiters"):
            return list(feed._waiters)
    raise AssertionError("no change feed listens to the store")


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)  # polling another thread's state, bounded by wait_for


# -- the page and its files ----------------------------------------------------------------


def test_the_page_is_served_at_root_with_a_strict_policy(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{READ} read\n")
    with running_daemon(tmp_path, tokens=TokenStore.from_file(tokens)) as (url, _queue):
        page = httpx.get(f"{url}/", timeout=10)  # no token: the page holds no data
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        policy = page.headers["content-security-policy"]
        [import_map] = re.findall(r'<script type="importmap">(.*?)</script>', page.text, re.S)
        digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
        assert f"script-src 'self' 'sha256-{digest}';" in policy
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        script = httpx.get(f"{url}/static/js/main.js", timeout=10)
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert script.headers["cache-control"] == "no-cache"
        missing = httpx.get(f"{url}/static/js/nothing.js", timeout=10)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert httpx.get(f"{url}/v1/whoami", timeout=10).status_code == 401
        paths = httpx.get(
            f"{url}/openapi.json", headers={"Authorization": f"Bearer {READ}"}, timeout=10
        ).json()["paths"]
        assert {"/v1/whoami", "/v1/workers", "/v1/runs", "/v1/status/history"} <= set(paths)
        assert "/" not in paths and "/static" not in paths
