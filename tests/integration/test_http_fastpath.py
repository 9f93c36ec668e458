"""``FastPaths`` answers ``POST /v1/jobs`` and ``GET /v1/jobs/{id}`` as FastAPI's routes do.

Two daemons, one with the fast paths and one without, get the same requests in
the same order; every answer must be the same (timestamps aside): status,
error code and message, and the headers a client acts on. The cases are the
ordinary ones and every kind of unusual one the daemon answers precisely:
bodies refused before parsing (413, 415, bad UTF-8, depth, digits), strict
values, priority spellings, ids that are not plain digits, HEAD, tokens, a
queue that refuses, a daemon that is stopping.
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

Headers = dict[str, str] | list[tuple[str, str]]
Body = bytes | list[bytes]
"""A list of byte strings is sent chunked (no Content-Length), one chunk each."""

JSON = {"content-type": "application/json"}
READER = "reader-secret-0123456789"
WRITER = "writer-secret-0123456789"
NOOP = b'{"ops": [{"op": "test.noop"}]}'
LIMIT = 1_048_576
"""The daemon's default body limit."""


def job(priority: str = "", params: str = "{}", op: str = "test.delay") -> bytes:
    """A one-op job body, written by hand: exactly these bytes are sent."""
    extra = f', "priority": {priority}' if priority else ""
    return f'{{"ops": [{{"op": "{op}", "params": {params}}}]{extra}}}'.encode()


NEW_CASES: list[tuple[str, str, Headers, Body]] = [
    # content types: 415 unless JSON; a +json type is JSON (FastAPI's to answer)
    ("POST", "/v1/jobs", {"content-type": "application/x-www-form-urlencoded"}, NOOP),
    ("POST", "/v1/jobs", {"content-type": "application/merge-patch+json"}, NOOP),
    ("POST", "/v1/jobs", {"content-type": "application/jsonx"}, NOOP),
    (
        "POST",
        "/v1/jobs",
        [("content-type", "text/plain"), ("content-type", "application/json")],
        NOOP,
    ),
    (
        "POST",
        "/v1/jobs",
        [("content-type", "application/json"), ("content-type", "text/plain")],
        NOOP,
    ),
    # sizes: streamed (chunked) over the limit, and within it
    ("POST", "/v1/jobs", JSON, [b'{"ops": [{"op": "test.noop"}]', b" " * LIMIT, b"}"]),
    ("POST", "/v1/jobs", JSON, [b'{"ops": [{"op": "test.noop"}]', b" " * 1000, b"}"]),
    ("POST", "/v1/jobs", JSON, NOOP + b" " * (LIMIT - len(NOOP))),
    ("POST", "/v1/jobs", JSON, NOOP + b" " * (LIMIT - len(NOOP) + 1)),
    # bodies the parser would choke on
    ("POST", "/v1/jobs", JSON, job(params='{"message": "caf\\u00e9 \\ud83d\\ude00"}')),
    ("POST", "/v1/jobs", JSON, job(params='{"message": "caf\xe9 \u2028"}')),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop", "params": {"s": "\xff"}}]}'),
    ("POST", "/v1/jobs", JSON, job(params='{"x": ' + "[" * 101 + "]" * 101 + "}")),
    ("POST", "/v1/jobs", JSON, job(params='{"x": ' + "[" * 99 + "]" * 99 + "}")),
    ("POST", "/v1/jobs", JSON, job(params='{"x": "' + "[" * 200 + '"}')),
    ("POST", "/v1/jobs", JSON, job(params='{"n": ' + "7" * 4301 + "}", op="test.noop")),
    ("POST", "/v1/jobs", JSON, job(params='{"n": ' + "7" * 4300 + "}", op="test.noop")),
    ("POST", "/v1/jobs", JSON, job(params='{"n": "' + "7" * 5000 + '"}', op="test.noop")),
    ("POST", "/v1/jobs", JSON, job(params='{"n": 123456789012345678901234}', op="test.noop")),
    ("POST", "/v1/jobs", JSON, b"\xef\xbb\xbf" + NOOP),
    ("POST", "/v1/jobs", JSON, NOOP.decode().encode("utf-16")),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "nope"}], "ops": [{"op": "test.noop"}]}'),
    (
        "POST",
        "/v1/jobs",
        JSON,
        b'{"ops": [{"op": "test.delay", "params": {"duration": Infinity}}]}',
    ),
    # strict values: no coercion of params or fields
    ("POST", "/v1/jobs", JSON, job(params='{"duration": "0.01"}')),
    ("POST", "/v1/jobs", JSON, job(params='{"duration": true}')),
    ("POST", "/v1/jobs", JSON, job(params='{"duration": 0}')),
    ("POST", "/v1/jobs", JSON, job(params='{"duration": 0, "extra": 1}')),
    ("POST", "/v1/jobs", JSON, job(params='{"duration": 1e400}')),
    ("POST", "/v1/jobs", JSON, job(params="[]")),
    ("POST", "/v1/jobs", JSON, b'{"ops": {"op": "test.noop"}}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": []}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop"}], "depends": [{"job": "1"}]}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop"}], "depends": [{"job": 0}]}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop"}], "depends": [{"job": -1}]}'),
    (
        "POST",
        "/v1/jobs",
        JSON,
        b'{"ops": [{"op": "test.noop"}], "depends": [{"job": 1, "statuses": ["running"]}]}',
    ),
    (
        "POST",
        "/v1/jobs",
        JSON,
        b'{"ops": [{"op": "test.noop"}], "depends": [{"job": 1, "statuses": []}]}',
    ),
    # priorities: the names as written, integers from -20 to 19, nothing else
    *[
        ("POST", "/v1/jobs", JSON, job(priority=p, params='{"duration": 0}'))
        for p in (
            '"high"',
            '"normal"',
            '"low"',
            '"HIGH"',
            '" high"',
            '"-5"',
            '"5"',
            '""',
            "-20",
            "19",
            "20",
            "-21",
            "1.0",
            "true",
            "null",
            "9223372036854775808",
        )
    ],
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop", "priority": "urgent"}]}'),
    ("POST", "/v1/jobs", JSON, b'{"ops": [{"op": "test.noop", "priority": "low"}], "priority": 3}'),
    # job ids that are not plain digits, quoted or otherwise
    ("GET", "/v1/jobs/%221%22", {}, b""),
    ("GET", "/v1/jobs/'1'", {}, b""),
    ("GET", "/v1/jobs/1.0", {}, b""),
    ("GET", "/v1/jobs/+1", {}, b""),
    ("GET", "/v1/jobs/%201", {}, b""),
    ("GET", "/v1/jobs/1%20", {}, b""),
    ("GET", "/v1/jobs/1e0", {}, b""),
    ("GET", "/v1/jobs/%D9%A1", {}, b""),
    ("GET", "/v1/jobs/01", {}, b""),
    ("GET", "/v1/jobs/00000000000000000000001", {}, b""),
    ("GET", "/v1/jobs/99999999999999999999", {}, b""),
    ("GET", "/v1/jobs/1/", {}, b""),
    ("GET", "/v1/jobs/1/x", {}, b""),
    ("GET", "/v1/jobs/batch", {}, b""),
    ("GET", "/v1/jobs/1?x=1", {}, b""),
    ("GET", "/v1/jobs/1?", {}, b""),
    ("HEAD", "/v1/jobs/999", {}, b""),
    ("HEAD", "/v1/jobs/x", {}, b""),
    ("POST", "/v1/jobs/1", JSON, NOOP),
    ("DELETE", "/v1/jobs", {}, b""),
    ("POST", "/v1/jobs/", JSON, NOOP),
    ("GET", "/v1/jobs/1", JSON, b'{"ignored": true}'),
    ("GET", "/v1/jobs/1", {"content-type": "text/plain"}, b"a body"),
]

REQUESTS: list[tuple[str, str, Headers, Body]] = [
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
    *NEW_CASES,
    ("GET", "/v1/jobs/1", {}, b""),  # after all that, the same jobs exist in both
    ("GET", "/v1/jobs/60", {}, b""),
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


KEPT = ("content-type", "www-authenticate", "allow", "connection")


def answer(client: httpx.Client, method: str, path: str, headers: Headers, body: Body) -> Any:
    content = iter(body) if isinstance(body, list) else body
    response = client.request(method, path, headers=headers, content=content)
    kept = {k: response.headers.get(k) for k in KEPT}
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
            got = answer(fast, method, path, headers, body)
            assert got == expected, (method, path, headers, body[:200])


def test_the_cases_reach_every_kind_of_answer(tmp_path: Path) -> None:
    """The cases above are worth comparing: each kind of answer comes up."""
    with daemons(tmp_path) as (_fast, framework):
        seen = set()
        for method, path, headers, body in REQUESTS:
            status, _headers, content = answer(framework, method, path, headers, body)
            error = content.get("error") if isinstance(content, dict) else None
            seen.add((status, error["code"] if error else None))
    assert {
        (201, None),
        (200, None),
        (400, "bad_json"),
        (413, "payload_too_large"),
        (415, "unsupported_media_type"),
        (422, "invalid_request"),
        (422, "invalid_priority"),
        (422, "op_not_found"),
        (404, "job_not_found"),
        (404, "not_found"),
        (405, "method_not_allowed"),
    } <= seen, seen


def test_a_stopping_daemon_is_answered_alike(tmp_path: Path) -> None:
    """After the daemon's signal (``queue.stop()``, as ``daemon.serve`` does): 503
    shutting_down for a submit, the job for a read."""
    with ExitStack() as stack:
        answers: dict[bool, list[Any]] = {}
        for fast in (True, False):
            folder = tmp_path / ("fast" if fast else "framework")
            folder.mkdir()
            url, queue = stack.enter_context(running_daemon(folder, start=False, fast_paths=fast))
            client = stack.enter_context(httpx.Client(base_url=url, timeout=20))
            job_id = client.post("/v1/jobs", content=NOOP, headers=JSON).json()["id"]
            queue.stop()
            answers[fast] = [
                answer(client, "POST", "/v1/jobs", JSON, NOOP),
                answer(client, "GET", f"/v1/jobs/{job_id}", {}, b""),
                answer(client, "HEAD", f"/v1/jobs/{job_id}", {}, b""),
            ]
    assert answers[True] == answers[False]
    assert answers[True][0][0] == 503
    assert answers[True][0][2]["error"]["code"] == "shutting_down"


def test_fast_paths_answer_with_tokens_as_the_framework_does(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{READER} read\n{WRITER} write\n")
    store = TokenStore.from_file(tokens)
    cases: list[tuple[str, Headers]] = [
        ("POST", {**JSON, "authorization": f"Bearer {WRITER}"}),
        ("POST", {**JSON, "authorization": f"Bearer {READER}"}),
        ("POST", JSON),
        ("POST", {**JSON, "authorization": "Basic abc"}),
        ("GET", {"authorization": f"Bearer {READER}"}),
        ("GET", {"authorization": f"bearer {WRITER}"}),
        ("GET", {}),
        ("GET", [("authorization", f"Bearer {READER}"), ("authorization", "Bearer wrong")]),
        ("GET", [("authorization", "Bearer wrong"), ("authorization", f"Bearer {READER}")]),
        ("POST", [("content-type", "application/json"), ("authorization", f"Bearer  {WRITER}")]),
    ]
    with daemons(tmp_path, tokens=store) as (fast, framework):
        for method, headers in cases:
            path, body = ("/v1/jobs", NOOP) if method == "POST" else ("/v1/jobs/1", b"")
            if isinstance(headers, dict):
                headers = {**JSON, **headers} if method == "POST" else headers
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
        submit_each, get = queue.submit_each, queue.get

        def recording_submit(jobs: Any) -> list[Any]:
            threads.append(threading.current_thread().name)
            return submit_each(jobs)

        def recording_get(job_id: int, **kwargs: Any) -> Any:
            threads.append(threading.current_thread().name)
            return get(job_id, **kwargs)

        monkeypatch.setattr(queue, "submit_each", recording_submit)
        monkeypatch.setattr(queue, "get", recording_get)
        job_id = client.post("/v1/jobs", content=NOOP, headers=JSON).json()["id"]
        assert client.get(f"/v1/jobs/{job_id}").json()["id"] == job_id
        client.post("/v1/jobs", content=NOOP)  # no content type: FastAPI's to refuse
    assert len(threads) == 2
    assert all(name.startswith("jobplane-http-") for name in threads), threads
