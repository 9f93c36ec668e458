"""The OpenAPI document a real daemon serves: every operation described and tagged,
the bearer-token scheme declared and applied where a token is checked, and the
job body's examples valid and accepted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from jobplane.http import TokenStore

from .http_server import running_daemon

WRITE = "w" * 20
READ = "r" * 20
METHODS = ("get", "put", "post", "delete", "patch")
BEARER = [{"bearerToken": []}]
UNGUARDED = {("/healthz", "get")}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A daemon with a tokens file whose pool runs nothing, and the document it serves."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{WRITE} write\n{READ} read\n")
    with running_daemon(tmp_path, tokens=TokenStore.from_file(tokens), start=False) as (url, _):
        served = httpx.get(
            f"{url}/openapi.json", headers={"Authorization": f"Bearer {READ}"}, timeout=10
        )
        assert served.status_code == 200, served.text
        yield url, served.json()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_every_operation_has_a_summary_a_description_and_one_declared_tag(
    daemon: tuple[str, dict[str, Any]],
) -> None:
    _, document = daemon
    declared = [tag["name"] for tag in document["tags"]]
    assert set(declared) == {"jobs", "control", "locks", "system", "dashboard", "quarantine"}
    assert all(tag["description"] for tag in document["tags"])
    used = set()
    operations = list(_operations(document))
    assert len(operations) >= 20
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        assert operation.get("summary", "").strip(), where
        assert len(operation.get("description", "").strip()) >= 20, where
        assert len(operation.get("tags", [])) == 1 and operation["tags"][0] in declared, where
        used.add(operation["tags"][0])
    assert used == set(declared)


def test_the_bearer_scheme_is_declared_and_guards_every_operation_but_healthz(
    daemon: tuple[str, dict[str, Any]],
) -> None:
    url, document = daemon
    scheme = document["components"]["securitySchemes"]["bearerToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "tokens file" in scheme["description"]
    assert list(document["components"]["securitySchemes"]) == ["bearerToken"]
    assert "security" not in document  # no global rule: /healthz needs no token
    with httpx.Client(base_url=url, timeout=10) as anon:
        for path, method, operation in _operations(document):
            where = f"{method.upper()} {path}"
            concrete = path.replace("{job_id}", "1")
            body = {"json": {}} if method in ("post", "put") else {}
            answer = anon.request(method, concrete, **body)
            if (path, method) in UNGUARDED:
                assert "security" not in operation, where
                assert answer.status_code == 200, where
                continue
            assert operation.get("security") == BEARER, where
            assert "401" in operation["responses"], where
            assert answer.status_code == 401, (where, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer", where


def test_job_body_examples_match_their_schemas_and_are_accepted(
    daemon: tuple[str, dict[str, Any]],
) -> None:
    url, document = daemon
    submitted = []
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {WRITE}"}, timeout=10
    ) as writer:
        for path, body_schema, least in (
            ("/v1/jobs", "JobBody", 3),
            ("/v1/jobs/batch", "BatchSpec", 1),
        ):
            content = document["paths"][path]["post"]["requestBody"]["content"]
            media = content["application/json"]
            assert media["schema"] == {"$ref": f"#/components/schemas/{body_schema}"}
            examples = media["examples"]
            assert len(examples) >= least, path
            validator = jsonschema_rs.Draft202012Validator(
                {"$ref": media["schema"]["$ref"], "components": document["components"]}
            )
            for name, example in examples.items():
                assert example["summary"], name
                validator.validate(example["value"])
                answer = writer.post(path, json=example["value"])
                assert answer.status_code == 201, (name, answer.text)
                submitted.append(answer.json())
    assert submitted[0] == {"id": 1}  # so the example that depends on job 1 names a real job
    assert submitted[-1] == {"ids": [4, 5]}


def test_a_wrong_example_fails_the_schema_check(daemon: tuple[str, dict[str, Any]]) -> None:
    """The check above can fail: an op the daemon does not know, or a bad field."""
    _, document = daemon
    validator = jsonschema_rs.Draft202012Validator(
        {"$ref": "#/components/schemas/JobBody", "components": document["components"]}
    )
    for wrong in (
        {"ops": [{"op": "no.such.op"}]},
        {"ops": []},
        {"ops": [{"op": "test.noop"}], "colour": "red"},
    ):
        with pytest.raises(jsonschema_rs.ValidationError):
            validator.validate(wrong)


def test_error_answers_are_documented_as_json_everywhere(
    daemon: tuple[str, dict[str, Any]],
) -> None:
    """Even on /metrics, whose 200 is text: its 401 is JSON, as every error is."""
    url, document = daemon
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert response["content"] == {"application/json": {"schema": error_body}}, (
                    f"{method.upper()} {path} {status}"
                )
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    answer = httpx.get(f"{url}/metrics", timeout=10)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/json"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {READ}"}) as reader:
        assert reader.get("/metrics").headers["content-type"].startswith("text/plain;")
