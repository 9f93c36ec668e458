"""``FastPaths`` answers ``POST /v1/jobs`` and ``GET /v1/jobs/{id}`` as FastAPI's routes do.

Two daemons, one with the fast paths and one without, get the same requests in
the same order; every answer must be the same (timestamps aside).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobplane.http import TokenStore

from .http_server import running_daemon

JSON = {"content-type": "application/json"}
READER = "reader-secret-0123456789"
WRITER = "writer-secret-0123456789"
NOOP = b'{"ops": [{"op": "test.noop"}]}'

REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("POST", "/v1/jobs", JSON, NOOP),
    ("POST", "/v1/jobs", {"content-type": "application/json; charset=utf-8"}, NOOP),
    ("POST", "/v1/jobs", {"content-type": "Application/JSON"}, NOOP),
    ("POST", "/v1/jobs", {}, NOOP),
    ("POST", "/v1/jobs", {"content-type": "text/plain"}, NOOP),
    ("POST", "/v1/jobs", JSON, b""),
    ("POST", "/v1/jobs", JSON, b"{"),
    ("POST", "/v1/jobs", JSON, b"[]"),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.delay", "params": {"duration": NaN}}]}'),
    (
        "POST",
        "/v1/jobs",
        JSON,
        b'{"ops": [{"op": "test.delay", "params": {"message": "\\ud800"}}]}',
    ),
    (
        "POST",
        "/v1/jobs",
        JSON,
        b'{"ops": [{"op": "test.noop", "params": {"n": 99999999999999999999}}]}',
    ),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "nope"}]}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.delay", "params": {"duration": -1}}]}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop"}], "priority": "urgent"}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop"}], "priority": "1"}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop"}], "extra": 1}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop"}], "depends": [{"job": 99}]}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop"}], "depends": [{"job": 1}]}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop"}]' + b" " * 2_000_000 + b"}"),
    ("POST", "/v1/jobs?x=1", JSON, NOOP),
    ("GET", "/v1/jobs/1", {}, b""),
    ("GET", "/v1/jobs/2", {"authorization": "Bearer nobody-knows-this-token"}, b""),
    ("GET", "/v1/jobs/999", {}, b""),
    ("GET", "/v1/jobs/0", {}, b""),
    ("GET", "/v1/jobs/007", {}, b""),
    ("GET", "/v1/jobs/-1", {}, b""),
    ("GET", "/v1/jobs/1x", {}, b""),
    ("GET", "/v1/jobs/9223372036854775807", {}, b""),
    ("GET", "/v1/jobs/9223372036854775808", {}, b""),
    ("GET", "/v1/jobs/%31", {}, b""),
    ("HEAD", "/v1/jobs/1", {}, b""),
    ("PUT", "/v1/jobs", JSON, NOOP),
]


@contextmanager
def daemons(tmp_path: Path, **options: Any) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with ExitStack() as stack:
        clients = []
        for fast in (True, False):
            folder = tmp_path / ("fast" if fast else "framework")
            folder.mkdir()
            url, _queue = stack.enter_context(
                running_daemon(folder, start=False, fast_paths=fast, **options)
            )
            clients.append(stack.enter_context(httpx.Client(base_url=url, timeout=20)))
        yield clients[0], clients[1]


def answer(
    client: httpx.Client, method: str, path: str, headers: dict[str, str], body: bytes
) -> Any:
    response = client.request(method, path, headers=headers, content=body)
    kept = {k: response.headers.get(k) for k in ("content-type", "www-authenticate", "allow")}
    return response.status_code, kept, _without_times(response.json()) if response.content else None


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: None if k.endswith("_at") else _without_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def test_fast_paths_answer_as_the_framework_does(tmp_path: Path) -> None:
    with daemons(tmp_path) as (fast, framework):
        for method, path, headers, body in REQUESTS:
            expected = answer(framework, method, path, headers, body)
            assert answer(fast, method, path, headers, body) == expected, (method, path, headers)


def test_fast_paths_answer_with_tokens_as_the_framework_does(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{READER} read\n{WRITER} write\n")
    store = TokenStore.from_file(tokens)
    cases = [
        ("POST", {**JSON, "authorization": f"Bearer {WRITER}"}),
        ("POST", {**JSON, "authorization": f"Bearer {READER}"}),
        ("POST", JSON),
        ("POST", {**JSON, "authorization": "Basic abc"}),
        ("GET", {"authorization": f"Bearer {READER}"}),
        ("GET", {"authorization": f"bearer {WRITER}"}),
        ("GET", {}),
    ]
    with daemons(tmp_path, tokens=store) as (fast, framework):
        for method, headers in cases:
            path, body = ("/v1/jobs", NOOP) if method == "POST" else ("/v1/jobs/1", b"")
            expected = answer(framework, method, path, headers, body)
            assert answer(fast, method, path, headers, body) == expected, (method, headers)


def test_the_queue_refusing_is_answered_alike(tmp_path: Path) -> None:
    with daemons(tmp_path, max_jobs=1) as (fast, framework):
        for client in (fast, framework):
            assert client.put("/v1/drain", json={"drained": True}).status_code == 200
        drained = [answer(c, "POST", "/v1/jobs", JSON, NOOP) for c in (fast, framework)]
        assert drained[0] == drained[1] and drained[0][0] == 503
        for client in (fast, framework):
            assert client.put("/v1/drain", json={"drained": False}).status_code == 200
        first = [answer(c, "POST", "/v1/jobs", JSON, NOOP) for c in (fast, framework)]
        full = [answer(c, "POST", "/v1/jobs", JSON, NOOP) for c in (fast, framework)]
        assert first[0] == first[1] and first[0][0] == 201
        assert full[0] == full[1] and full[0][2]["error"]["code"] == "queue_full"


def test_the_ordinary_requests_take_the_fast_path_and_commit_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    with running_daemon(tmp_path) as (url, queue), httpx.Client(base_url=url) as client:
        submit_many, get = queue.submit_many, queue.get

        def recording_submit(jobs: Any) -> list[int]:
            threads.append(threading.current_thread().name)
            return submit_many(jobs)

        def recording_get(job_id: int, **kwargs: Any) -> Any:
            threads.append(threading.current_thread().name)
            return get(job_id, **kwargs)

        monkeypatch.setattr(queue, "submit_many", recording_submit)
        monkeypatch.setattr(queue, "get", recording_get)
        job_id = client.post("/v1/jobs", content=NOOP, headers=JSON).json()["id"]
        assert client.get(f"/v1/jobs/{job_id}").json()["id"] == job_id
        client.post("/v1/jobs", content=NOOP)  # no content type: FastAPI's to refuse
    assert len(threads) == 2
    assert all(name.startswith("jobplane-http-") for name in threads), threads
