"""Schemathesis over the daemon's OpenAPI document, against a real uvicorn server.

Every operation gets a bounded, derandomized budget of generated requests
(explicit schema examples, boundary and wrong-type cases from the coverage
phase, then ``MAX_EXAMPLES`` fuzzed ones). Schemathesis knows a write token for
the document's bearer scheme: it sends it, so that write endpoints run instead
of answering 401, and leaves it out of the cases it makes to see that a request
without one is refused. Each answer must be no 5xx and must match the document:
status code, content type, headers and body.

The document is built at import time (schemathesis makes one test per
operation while collecting); ``test_fuzzed_document_is_the_served_one``
checks that it is the one the daemon serves at /openapi.json. (Loading it from
the daemon inside a fixture, ``schemathesis.pytest.from_fixture``, fails on
pytest 9.2 with schemathesis 4.32.5: it reads ``Function._nodeid``, which pytest
9.2 no longer has.)
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from jobplane.http import TokenStore, create_app
from jobplane.queue import JobQueue

from .http_server import running_daemon

WRITE = "w" * 20
MAX_EXAMPLES = 40
WAIT_TIMEOUT = 0.05
"""Long polls in the run wait this long at most (the paused queue never changes a job)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
]
"""Not checked: positive_data_acceptance. Some schema-valid requests are refused
with 422 by design: dependencies on jobs that do not exist (invalid_dependency),
params that do not fit the op, and 1.0 for an integer (bodies are strict, while
JSON Schema counts 1.0 as an integer)."""


def _openapi_document() -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        JobQueue.open(f"sqlite:///{tmp}/schema.db", workers=1, start=False) as queue,
    ):
        return create_app(queue).openapi()


CONFIG = schemathesis.Config.from_dict(
    {
        # Any 4xx is a refusal; the defaults leave out 413, which a batch of over 1000
        # jobs gets for being over 1 MiB. A 5xx is for not_a_server_error to report.
        "checks": {"negative_data_rejection": {"expected-statuses": ["4xx", "5xx"]}},
        # The document's bearer scheme: schemathesis sends the token, and leaves it
        # out of the cases it makes to see a request without one refused.
        "auth": {"openapi": {"bearerToken": {"bearer": WRITE}}},
    }
)
"""Explicit, so that no schemathesis.toml found on disk changes the run."""

schema = schemathesis.openapi.from_dict(_openapi_document(), config=CONFIG)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, JobQueue]]:
    """A daemon with jobs 1-5 in five states and 6-300 queued; then its pool is paused.

    So many of the generated ids name real jobs. Paused, the pool runs none of
    the fuzzed jobs, so a generated test.delay cannot slow the run.
    """
    tmp = tmp_path_factory.mktemp("fuzz")
    tokens = tmp / "tokens"
    tokens.write_text(f"{WRITE} write\n")
    with running_daemon(tmp, tokens=TokenStore.from_file(tokens)) as (url, queue):
        done = queue.submit([{"op": "test.noop"}])
        failed = queue.submit([{"op": "test.delay", "params": {"fail": True}}])
        archived = queue.submit([{"op": "test.noop"}])
        for job_id in (done, failed, archived):
            queue.wait(job_id, timeout=10)
        queue.archive(archived)
        queue.pool.pause()
        queued = queue.submit([{"op": "test.delay", "params": {"duration": 1}}])
        queue.submit([{"op": "test.noop"}], depends=[(queued, ["success"])])
        queue.submit_many([{"ops": [{"op": "test.noop"}]}] * 295)
        yield url, queue


def _short_wait(case: schemathesis.Case) -> None:
    """Bound the long polls: any valid timeout (default 10 s) becomes WAIT_TIMEOUT."""
    if not (case.path.endswith("/wait") or case.path == "/v1/changes"):
        return
    query = dict(case.query or {})
    timeout = query.get("timeout")
    if timeout is not None:
        try:
            seconds = float(timeout)
        except (TypeError, ValueError):
            return
        if isinstance(timeout, bool) or not (math.isfinite(seconds) and 0 < seconds <= 3600):
            return
    query["timeout"] = WAIT_TIMEOUT
    case.query = query


ANSWERS: dict[str, set[int]] = {}
"""The statuses each operation answered in the run, for the test after it."""


@hypothesis.settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None)
@schema.parametrize()
def test_api_answers_by_its_document(case: schemathesis.Case, daemon: tuple[str, JobQueue]) -> None:
    url, queue = daemon
    _short_wait(case)
    try:
        response = case.call_and_validate(base_url=url, checks=CHECKS, timeout=10)
        ANSWERS.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
    finally:
        if case.path == "/v1/drain":
            queue.set_drained(False)  # drained, every later submission would answer 503


def test_fuzzed_document_is_the_served_one(daemon: tuple[str, JobQueue]) -> None:
    served = httpx.get(
        f"{daemon[0]}/openapi.json", headers={"Authorization": f"Bearer {WRITE}"}, timeout=10
    ).json()
    assert served == schema.raw_schema


def test_fuzzed_requests_were_let_in_and_turned_away(daemon: tuple[str, JobQueue]) -> None:
    """The run sent the token (so every operation got past it at least once) and,
    where a token is needed, also left it out (and was answered 401)."""
    if not ANSWERS:
        pytest.skip("runs after test_api_answers_by_its_document, which did not run")
    documented = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
    }
    for operation, statuses in ANSWERS.items():
        if operation not in documented:
            continue  # a method the path does not have (unsupported_method): 405
        assert statuses - {401}, operation
        if operation != "GET /healthz":
            assert 401 in statuses, operation
