"""The HTTP API against a real uvicorn server: every endpoint, every error status, auth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobplane.errors import ValidationError
from jobplane.http import TokenStore, check_bind

from .http_server import running_daemon

WRITE = "w" * 20
READ = "r" * 20


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    with running_daemon(tmp_path) as (url, _queue), httpx.Client(base_url=url, timeout=20) as c:
        yield c


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def wait_final(api: httpx.Client, job_id: int) -> dict[str, Any]:
    status = None
    for _ in range(100):
        answer = api.get(
            f"/v1/jobs/{job_id}/wait",
            params={"timeout": 5, **({"status": status} if status else {})},
        ).json()
        job = answer.get("job") or api.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("success", "error", "canceled"):
            return job
        status = job["status"]
    raise AssertionError("job did not finish")


def test_submit_get_list_and_wait(api: httpx.Client) -> None:
    created = api.post(
        "/v1/jobs",
        json={
            "ops": [{"op": "test.delay", "params": {"duration": 0, "message": "hi"}}],
            "priority": "high",
        },
    )
    assert created.status_code == 201
    job_id = created.json()["id"]
    job = wait_final(api, job_id)
    assert job["status"] == "success" and job["priority"] == 0
    assert job["ops"][0]["priority"] == -10
    assert job["ops"][0]["log"][0]["message"] == "hi"
    assert job["ops"][0]["result"] == {"slept": 0.0}
    listed = api.get("/v1/jobs", params={"status": "success", "limit": 1}).json()
    assert listed["jobs"][0]["id"] == job_id and listed["next"] == job_id
    assert api.get("/v1/jobs", params={"status": "queued,waiting"}).json() == {
        "jobs": [],
        "next": None,
    }
    assert api.get(
        f"/v1/jobs/{job_id}/wait", params={"since_serial": 1, "timeout": 0.1, "status": "success"}
    ).json() == {"changed": False}


def test_batch_with_relative_dependency(api: httpx.Client) -> None:
    answer = api.post(
        "/v1/jobs/batch",
        json={
            "jobs": [
                {"ops": [{"op": "test.noop"}]},
                {"ops": [{"op": "test.noop"}], "depends": [{"job": -1}]},
            ]
        },
    )
    assert answer.status_code == 201
    first, second = answer.json()["ids"]
    assert wait_final(api, second)["depends"] == [{"job": first, "statuses": ["success"]}]


def test_cancel_priority_explain_archive_drain(api: httpx.Client) -> None:
    job_id = api.post(
        "/v1/jobs", json={"ops": [{"op": "test.delay", "params": {"duration": 30}}]}
    ).json()["id"]
    explained = api.get(f"/v1/jobs/{job_id}/explain").json()
    assert explained["job"] == job_id and explained["reasons"]
    ok = api.put(f"/v1/jobs/{job_id}/priority", json={"priority": "low"}).json()
    assert set(ok) == {"ok", "message"}
    assert api.post(f"/v1/jobs/{job_id}/cancel").json()["ok"] is True
    assert wait_final(api, job_id)["status"] == "canceled"
    assert api.post(f"/v1/jobs/{job_id}/archive").json() == {"ok": True}
    assert api.get(f"/v1/jobs/{job_id}").json()["archived"] is True
    assert api.post("/v1/archive", json={"older_than": 0}).json() == {"archived": []}
    assert api.put("/v1/drain", json={"drained": True}).json() == {"drained": True}
    assert api.get("/v1/status").json()["drained"] is True
    message = error(api.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]}), 503, "queue_drained")
    assert "drained" in message
    api.put("/v1/drain", json={"drained": False})


def test_introspection_endpoints(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ops = {op["name"]: op for op in api.get("/v1/ops").json()}
    assert "duration" in ops["test.delay"]["params_schema"]["properties"]
    status = api.get("/v1/status").json()
    assert status["workers"] == 2 and "queued" in status["jobs_by_status"]
    assert isinstance(api.get("/v1/locks").json(), list)
    assert any(
        lock["name"] == "cluster" for lock in api.get("/v1/locks", params={"all": "true"}).json()
    )
    metrics = api.get("/metrics").text
    assert "jobplane_jobs" in metrics and "jobplane_oldest_queued_age_seconds" in metrics
    assert "openapi" in api.get("/openapi.json").json()


def test_every_error_status(api: httpx.Client) -> None:
    error(api.get("/v1/jobs/999"), 404, "job_not_found")
    error(api.get("/v1/nope"), 404, "not_found")
    error(api.get("/v1/jobs/abc"), 422, "invalid_request")
    error(api.get("/v1/jobs/0"), 422, "invalid_request")
    error(api.delete("/v1/jobs"), 405, "method_not_allowed")
    error(
        api.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "bad_json",
    )
    message = error(api.post("/v1/jobs", json={"ops": []}), 422, "invalid_request")
    assert "ops" in message
    error(api.post("/v1/jobs", json={"ops": [{"op": "nope"}]}), 422, "op_not_found")
    error(
        api.post("/v1/jobs", json={"ops": [{"op": "test.delay", "params": {"duration": -1}}]}),
        422,
        "invalid_request",
    )
    error(
        api.post("/v1/jobs", json={"ops": [{"op": "test.noop"}], "priority": 50}),
        422,
        "invalid_priority",
    )
    error(
        api.post("/v1/jobs", json={"ops": [{"op": "test.noop"}], "depends": [{"job": 77}]}),
        422,
        "invalid_dependency",
    )
    error(api.get("/v1/jobs", params={"status": "bogus"}), 422, "invalid_request")
    error(api.get("/v1/jobs", params={"limit": 0}), 422, "invalid_request")
    job_id = api.post(
        "/v1/jobs", json={"ops": [{"op": "test.delay", "params": {"duration": 30}}]}
    ).json()["id"]
    error(api.post(f"/v1/jobs/{job_id}/archive"), 409, "job_state")
    api.post(f"/v1/jobs/{job_id}/cancel")
    error(
        api.post(
            "/v1/jobs", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
        ),
        413,
        "payload_too_large",
    )


def test_queue_full_is_503(tmp_path: Path) -> None:
    with (
        running_daemon(tmp_path, max_jobs=1, start=False) as (url, _),
        httpx.Client(base_url=url) as c,
    ):
        assert c.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]}).status_code == 201
        error(c.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]}), 503, "queue_full")


def test_tokens_read_and_write(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# who may do what\n{WRITE} write\n{READ} read\n")
    with running_daemon(tmp_path, tokens=TokenStore.from_file(path)) as (url, _):
        with httpx.Client(base_url=url) as anon:
            assert anon.get("/healthz").status_code == 200
            response = anon.get("/v1/status")
            error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
            error(
                anon.get("/v1/status", headers={"Authorization": "Bearer wrong-token-wrong"}),
                401,
                "unauthorized",
            )
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {READ}"}) as reader:
            assert reader.get("/v1/status").status_code == 200
            error(reader.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]}), 403, "forbidden")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {WRITE}"}) as writer:
            assert writer.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]}).status_code == 201


def test_tokens_file_errors_and_bind_rule(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{WRITE} admin\n")
    with pytest.raises(ValidationError, match="line 1"):
        TokenStore.from_file(path)
    with pytest.raises(ValidationError, match="cannot read"):
        TokenStore.from_file(tmp_path / "missing")
    with pytest.raises(ValidationError, match=r"refusing to listen on 0\.0\.0\.0"):
        check_bind("0.0.0.0", None)
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    path.write_text(f"{WRITE} write\n")
    check_bind("0.0.0.0", TokenStore.from_file(path))


# Found by tests/integration/test_openapi_fuzz.py ------------------------------------------


def test_ids_beyond_the_store_range_are_422_not_500(api: httpx.Client) -> None:
    big = 2**63
    error(api.get(f"/v1/jobs/{big - 1}"), 404, "job_not_found")
    error(api.get(f"/v1/jobs/{big}"), 422, "invalid_request")
    error(api.get(f"/v1/jobs/{big}/explain"), 422, "invalid_request")
    error(api.post(f"/v1/jobs/{big}/cancel"), 422, "invalid_request")
    error(api.get("/v1/jobs", params={"after": big}), 422, "invalid_request")
    job_id = api.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]}).json()["id"]
    message = error(
        api.get(f"/v1/jobs/{job_id}/wait", params={"since_serial": big, "timeout": 0}),
        422,
        "invalid_request",
    )
    assert "since_serial" in message
    message = error(
        api.post("/v1/jobs", json={"ops": [{"op": "test.noop"}], "depends": [{"job": big}]}),
        422,
        "invalid_request",
    )
    assert "depends" in message


def test_lone_surrogates_are_refused_before_they_are_stored(api: httpx.Client) -> None:
    json_type = {"content-type": "application/json"}
    for body in (
        b'{"ops": [{"op": "test.delay", "params": {"message": "\\ud800"}}]}',
        b'{"ops": [{"op": "test.delay", "params": {"\\udc00": 1}}]}',
    ):
        message = error(
            api.post("/v1/jobs", content=body, headers=json_type), 422, "invalid_request"
        )
        assert "surrogate" in message
    batch = b'{"jobs": [{"ops": [{"op": "test.noop"}]}, {"ops": [{"op": "\\ud800"}]}]}'
    message = error(
        api.post("/v1/jobs/batch", content=batch, headers=json_type), 422, "invalid_request"
    )
    assert "surrogate" in message  # checked once for the whole body, nested jobs included
    assert api.get("/v1/jobs").json() == {"jobs": [], "next": None}


def test_nan_and_infinity_are_refused_not_stored(api: httpx.Client) -> None:
    # Python's JSON parser accepts these literals; a response could never carry them.
    json_type = {"content-type": "application/json"}
    for body in (
        b'{"ops": [{"op": "test.delay", "params": {"duration": NaN}}]}',
        b'{"ops": [{"op": "test.noop"}], "priority": Infinity}',
        b'{"older_than": -Infinity}',
    ):
        path = "/v1/archive" if b"older_than" in body else "/v1/jobs"
        message = error(api.post(path, content=body, headers=json_type), 422, "invalid_request")
        assert "numbers must be finite" in message
    assert api.get("/v1/jobs").json() == {"jobs": [], "next": None}


def test_405_names_every_method_of_the_path(api: httpx.Client) -> None:
    response = api.delete("/v1/jobs")
    error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert api.request("TRACE", "/healthz").headers["allow"] == "GET, HEAD"


def test_bodies_are_not_coerced(api: httpx.Client) -> None:
    error(api.put("/v1/drain", json={"drained": "true"}), 422, "invalid_request")
    error(api.post("/v1/archive", json={"older_than": "5"}), 422, "invalid_request")
    error(api.put("/v1/jobs/1/priority", json={"priority": True}), 422, "invalid_request")
    assert api.get("/v1/status").json()["drained"] is False


def test_status_lists_accept_spaces_and_empty_items_only(api: httpx.Client) -> None:
    listed = api.get("/v1/jobs", params={"status": " queued , ,waiting,"})
    assert listed.status_code == 200, listed.text
    message = error(
        api.get("/v1/jobs", params={"status": "queued,\twaiting"}), 422, "invalid_request"
    )
    assert "unknown status" in message


def test_openapi_documents_errors_ops_and_statuses(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    responses = document["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]
    assert set(responses) == {"200", "401", "403", "404", "422", "503"}
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    assert responses["422"]["content"]["application/json"]["schema"] == error_body
    assert "HTTPValidationError" not in document["components"]["schemas"]
    op = document["components"]["schemas"]["OpSpec"]["properties"]["op"]
    assert set(op["enum"]) == {"test.delay", "test.noop"}
    assert "canceling" in document["components"]["schemas"]["OpStatus"]["enum"]
    listing = document["paths"]["/v1/jobs"]["get"]["parameters"]
    status = next(p for p in listing if p["name"] == "status")
    assert "canceling" in str(status["schema"])


# Found when the daemon was probed (issue 9) -------------------------------------------------

JSON_TYPE = {"content-type": "application/json"}


def test_a_chunked_body_over_the_limit_is_413(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"ops": ['
        for _ in range(20):
            yield b" " * 100_000

    response = api.post("/v1/jobs", content=chunks(), headers=JSON_TYPE)
    message = error(response, 413, "payload_too_large")
    assert "1048576 bytes" in message
    declared = api.post("/v1/jobs", content=b" " * 1_048_577, headers=JSON_TYPE)
    error(declared, 413, "payload_too_large")


def test_bodies_json_cannot_hold_say_what_is_wrong(api: httpx.Client) -> None:
    def post(body: bytes) -> httpx.Response:
        return api.post("/v1/jobs", content=body, headers=JSON_TYPE)

    deep = b'{"ops": [{"op": "test.delay", "params": {"message": ' + b"[" * 1000
    message = error(post(deep + b"]" * 1000 + b"}}]}"), 400, "bad_json")
    assert "nested deeper than 100 levels" in message
    message = error(post(b'{"x": ' + b"[" * 120 + b"]" * 120 + b"}"), 400, "bad_json")
    assert "nested deeper than 100 levels" in message
    just_deep_enough = b'{"ops": [{"op": "test.delay", "params": {"message": ' + b"[" * 96
    message = error(post(just_deep_enough + b"]" * 96 + b"}}]}"), 422, "invalid_request")
    assert "message" in message  # parsed, then refused by the op's schema
    quoted = b'{"ops": [{"op": "test.delay", "params": {"message": "' + b"[" * 200 + b'"}}]}'
    assert post(quoted).status_code == 201  # brackets in a string are not nesting
    escaped = b'{"ops": [{"op": "test.delay", "params": {"message": "\\\\\\"' + b"{" * 200
    assert post(escaped + b'"}}]}').status_code == 201  # nor after escaped quotes
    digits = b'{"ops": [{"op": "test.noop"}], "priority": ' + b"1" * 4301 + b"}"
    message = error(post(digits), 400, "bad_json")
    assert "more than 4300 digits" in message
    message = error(post(b'{"ops": [{"op": "test.noop\xff"}]}'), 400, "bad_json")
    assert "not valid UTF-8" in message and "position 26" in message
    message = error(post(b'{"ops": [}'), 400, "bad_json")
    assert "line 1 column 10" in message
    assert [job["id"] for job in api.get("/v1/jobs").json()["jobs"]] == [1, 2]


def test_a_body_that_is_not_json_says_so(api: httpx.Client) -> None:
    form = api.post("/v1/jobs", data={"ops": "test.noop"})
    message = error(form, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in message
    assert "application/x-www-form-urlencoded" in message
    untyped = api.post("/v1/jobs", content=b'{"ops": [{"op": "test.noop"}]}')
    assert "Content-Type: application/json" in error(untyped, 415, "unsupported_media_type")
    typed = api.post(
        "/v1/jobs",
        content=b'{"ops": [{"op": "test.noop"}]}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert typed.status_code == 201, typed.text


def test_op_params_are_not_coerced(api: httpx.Client) -> None:
    def submit(params: dict[str, Any]) -> httpx.Response:
        return api.post("/v1/jobs", json={"ops": [{"op": "test.delay", "params": params}]})

    for params, field in (
        ({"duration": True}, "duration"),
        ({"fail": "yes"}, "fail"),
        ({"fail": 1}, "fail"),
        ({"duration": "1"}, "duration"),
        ({"message": 5}, "message"),
    ):
        message = error(submit(params), 422, "invalid_request")
        assert field in message, message
    assert api.get("/v1/jobs").json()["jobs"] == []
    assert submit({"duration": 0, "fail": False}).status_code == 201  # an integer is a number


def test_priorities_are_the_documented_names_or_integers(api: httpx.Client) -> None:
    for priority in ("5", " -3 ", "HIGH ", "High", "", 5.0, True, -21, 20):
        response = api.post("/v1/jobs", json={"ops": [{"op": "test.noop"}], "priority": priority})
        assert response.status_code == 422, (priority, response.text)
        assert response.json()["error"]["code"] in ("invalid_priority", "invalid_request")
        op_level = {"ops": [{"op": "test.noop", "priority": priority}]}
        assert api.post("/v1/jobs", json=op_level).status_code == 422, priority
    assert api.get("/v1/jobs").json()["jobs"] == []
    for priority in ("high", "normal", "low", -20, 19):
        response = api.post("/v1/jobs", json={"ops": [{"op": "test.noop"}], "priority": priority})
        assert response.status_code == 201, (priority, response.text)
    error(api.put("/v1/jobs/1/priority", json={"priority": "LOW"}), 422, "invalid_priority")
    document = api.get("/openapi.json").json()
    schema = document["components"]["schemas"]["PriorityBody"]["properties"]["priority"]
    assert schema["anyOf"] == [
        {"type": "integer", "minimum": -20, "maximum": 19},
        {"type": "string", "enum": ["high", "normal", "low"]},
    ]


def test_ids_and_numbers_in_paths_and_queries_are_integers(api: httpx.Client) -> None:
    job_id = api.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]}).json()["id"]
    assert job_id == 1
    for path in ("/v1/jobs/1.0", "/v1/jobs/1e0", "/v1/jobs/+1", "/v1/jobs/%201", "/v1/jobs/1_0"):
        message = error(api.get(path), 422, "invalid_request")
        assert "job_id" in message, message
    error(api.post("/v1/jobs/1.0/cancel"), 422, "invalid_request")
    error(api.get("/v1/jobs", params={"after": "0.0"}), 422, "invalid_request")
    error(api.get("/v1/jobs", params={"limit": "1.0"}), 422, "invalid_request")
    error(api.get("/v1/jobs", params={"archived": "yes"}), 422, "invalid_request")
    error(api.get("/v1/jobs/1/wait", params={"since_serial": "0.0"}), 422, "invalid_request")
    assert api.get("/v1/jobs/1").json()["id"] == 1
    assert api.get("/v1/jobs", params={"limit": "1", "archived": "false"}).status_code == 200


def test_echoes_of_input_in_error_messages_are_cut(api: httpx.Client) -> None:
    name = "x" * 100_000
    message = error(api.post("/v1/jobs", json={"ops": [{"op": name}]}), 422, "op_not_found")
    assert len(message) < 600 and "100000 characters" in message
    key = "k" * 100_000
    body = {"ops": [{"op": "test.delay", "params": {key: 1}}]}
    message = error(api.post("/v1/jobs", json=body), 422, "invalid_request")
    assert len(message) < 600, message[:300]
    body = {"ops": [{"op": "test.noop"}], "priority": "p" * 100_000}
    assert len(error(api.post("/v1/jobs", json=body), 422, "invalid_priority")) < 600
    long_status = api.get("/v1/jobs", params={"status": "s" * 50_000})
    assert len(error(long_status, 422, "invalid_request")) < 600


def test_with_tokens_the_api_document_and_its_pages_need_a_read_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{WRITE} write\n{READ} read\n")
    with (
        running_daemon(tmp_path, tokens=TokenStore.from_file(path)) as (url, _),
        httpx.Client(base_url=url) as anon,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {READ}"}) as reader,
    ):
        for page in ("/openapi.json", "/docs", "/redoc"):
            error(anon.get(page), 401, "unauthorized")
            assert reader.get(page).status_code == 200, page
        assert "test.delay" in reader.get("/openapi.json").text
        assert anon.get("/healthz").status_code == 200
        assert anon.head("/healthz").status_code == 200


METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")


def test_every_route_answers_a_wrong_method_with_405_and_allow(api: httpx.Client) -> None:
    job_id = api.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]}).json()["id"]
    wait_final(api, job_id)
    document = api.get("/openapi.json").json()
    routes = {path: {m.upper() for m in ops} for path, ops in document["paths"].items()}
    routes.update({"/openapi.json": {"GET"}, "/docs": {"GET"}, "/redoc": {"GET"}})
    for template, methods in routes.items():
        path = template.replace("{job_id}", str(job_id))
        allowed = methods | {"HEAD"} if "GET" in methods else methods
        for method in METHODS:
            if method in allowed:
                continue
            response = api.request(method, path)
            assert response.status_code == 405, (method, path, response.text)
            if method != "HEAD":  # an answer to HEAD has no body
                assert response.json()["error"]["code"] == "method_not_allowed"
            assert set(response.headers["allow"].split(", ")) == allowed, (method, path)
    response = api.get("/v1/jobs/batch")
    error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_head_works_wherever_get_does(api: httpx.Client) -> None:
    job_id = api.post("/v1/jobs", json={"ops": [{"op": "test.noop"}]}).json()["id"]
    wait_final(api, job_id)
    document = api.get("/openapi.json").json()
    paths = [path for path, ops in document["paths"].items() if "get" in ops]
    paths += ["/openapi.json", "/docs", "/redoc"]
    for template in paths:
        path = template.replace("{job_id}", str(job_id))
        params = {"timeout": 0} if path.endswith("/wait") else {}
        got = api.get(path, params=params)
        head = api.head(path, params=params)
        assert head.status_code == got.status_code == 200, (path, head.status_code)
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
