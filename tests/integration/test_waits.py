"""Long polls against a real daemon process: open waits hold no thread (issue 9, defect 2)."""

from __future__ import annotations

import asyncio
import resource
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from .http_server import free_port
from .test_daemon import start

OPEN_WAITS = 1000
TIMEOUT = 30.0


def _enough_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _status(client: httpx.AsyncClient) -> dict[str, Any]:
    answer: dict[str, Any] = (await client.get("/v1/status")).json()
    return answer


async def _until_open_waits(client: httpx.AsyncClient, count: int) -> None:
    """Poll the daemon (another process) until it holds ``count`` open waits."""
    deadline = time.monotonic() + TIMEOUT
    while (await _status(client))["open_waits"] != count:
        assert time.monotonic() < deadline, f"the daemon never held {count} open waits"
        await asyncio.sleep(0.02)


async def _until_running(client: httpx.AsyncClient, job_id: int) -> None:
    job = (await client.get(f"/v1/jobs/{job_id}")).json()
    while job["status"] != "running":
        assert job["status"] in ("queued", "waiting"), job
        answer = (
            await client.get(
                f"/v1/jobs/{job_id}/wait", params={"status": job["status"], "timeout": TIMEOUT}
            )
        ).json()
        assert answer["changed"], f"job {job_id} never started"
        job = answer["job"]


async def _submit(client: httpx.AsyncClient, op: dict[str, Any]) -> int:
    response = await client.post("/v1/jobs", json={"ops": [op]})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _timed_wait(
    client: httpx.AsyncClient, job_id: int, timeout: float
) -> tuple[float, httpx.Response]:
    began = time.monotonic()
    response = await client.get(
        f"/v1/jobs/{job_id}/wait", params={"status": "running", "timeout": timeout}
    )
    return time.monotonic() - began, response


async def _thousand_waits(url: str) -> None:
    limits = httpx.Limits(max_connections=OPEN_WAITS + 50, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        idle = await _submit(client, {"op": "test.delay", "params": {"duration": 120}})
        await _until_running(client, idle)
        waits = [
            asyncio.create_task(
                client.get(f"/v1/jobs/{idle}/wait", params={"status": "running", "timeout": 30})
            )
            for _ in range(OPEN_WAITS)
        ]
        await _until_open_waits(client, OPEN_WAITS)

        # Another client is served at once.
        async with httpx.AsyncClient(base_url=url, timeout=60) as other:
            began = time.monotonic()
            submitted = await other.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]})
            took = time.monotonic() - began
        assert submitted.status_code == 201 and took < 5.0, (submitted.text, took)

        # A new wait on a job that ends answers within 100 ms of its end. (From a
        # client of its own: httpx's pool of a thousand busy connections costs
        # the first client some milliseconds a request.)
        finishing = await _submit(client, {"op": "test.delay", "params": {"duration": 0.5}})
        async with httpx.AsyncClient(base_url=url, timeout=60) as other:
            await _until_running(other, finishing)
            sent = time.time()
            answer = (
                await other.get(
                    f"/v1/jobs/{finishing}/wait", params={"status": "running", "timeout": 30}
                )
            ).json()
            received = time.time()
        assert answer["changed"] and answer["job"]["status"] == "success", answer
        late = received - max(answer["job"]["ended_at"], sent)
        assert late < 0.1, f"the wait answered {late * 1000:.0f} ms after the job ended"

        # Every wait answers within its own timeout; one beyond the limit is refused.
        short = asyncio.create_task(_timed_wait(client, idle, 3.0))
        await _until_open_waits(client, OPEN_WAITS + 1)
        over = await client.get(f"/v1/jobs/{idle}/wait", params={"timeout": 30})
        assert over.status_code == 503, over.text
        assert over.json()["error"]["code"] == "too_many_waits"
        took, response = await short
        assert response.json() == {"changed": False} and 3.0 <= took < 4.5, took

        assert not any(wait.done() for wait in waits)  # none answered before its time
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        await _until_open_waits(client, 0)  # gone clients free their places at once
        assert (await client.post(f"/v1/jobs/{idle}/cancel")).json()["ok"]


def test_a_thousand_open_waits_hold_no_thread(tmp_path: Path) -> None:
    _enough_files(3 * OPEN_WAITS + 1000)
    port = free_port()
    proc, lines, reader = start(
        tmp_path / "d.db", port, "--workers", "2", "--max-waits", str(OPEN_WAITS + 1)
    )
    try:
        asyncio.run(_thousand_waits(f"http://127.0.0.1:{port}"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()
