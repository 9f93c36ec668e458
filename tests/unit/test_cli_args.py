"""The command line's own checks (``jobplane.cli.args``), case by case.

tests/integration/test_cli_checks.py runs each kind of check once through the
real ``jobplane`` command; these are the variants.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobplane.cli import args
from jobplane.errors import InvalidPriority, ValidationError
from jobplane.jobs import MAX_ID


@pytest.mark.parametrize(
    ("text", "value"), [("high", -10), ("normal", 0), ("low", 10), ("-20", -20), ("19", 19)]
)
def test_priority_accepts_the_names_and_integers_in_range(text: str, value: int) -> None:
    assert args.priority(text) == value


@pytest.mark.parametrize("text", ["urgent", "", "1.5", "0x1", "20", "-21", "9" * 5000])
def test_priority_refuses_anything_else(text: str) -> None:
    with pytest.raises(InvalidPriority, match="priority"):
        args.priority(text)


def test_statuses_are_checked_and_tidied() -> None:
    assert args.statuses(" queued, ,running ") == "queued,running"
    with pytest.raises(ValidationError, match="unknown status 'done'; statuses are queued,"):
        args.statuses("queued,done")


def test_dependency_ids_are_in_range_and_statuses_final() -> None:
    assert args.dependency("7", ["success", "error"], "d") == {
        "job": 7,
        "statuses": ["success", "error"],
    }
    assert args.dependency(str(MAX_ID), ["canceled"], "d")["job"] == MAX_ID
    for digits in ("0", str(MAX_ID + 1), "9" * 5000):
        with pytest.raises(ValidationError, match="d: job ids are from 1 to"):
            args.dependency(digits, ["success"], "d")
    with pytest.raises(ValidationError, match="'running' is not a final status"):
        args.dependency("7", ["running"], "d")


def test_param_values_are_json_when_they_parse_else_text() -> None:
    assert args.param_value("d", "1.5") == 1.5
    assert args.param_value("f", "true") is True
    assert args.param_value("m", "hello there") == "hello there"
    assert args.param_value("m", "NaN") == "NaN"  # not JSON: the text itself
    assert args.param_value("m", "Infinity") == "Infinity"
    for number in ("1e999", "-1e999", "[1, 1e400]"):
        with pytest.raises(ValidationError, match=r"parameter 'd': .* is out of range"):
            args.param_value("d", number)


@pytest.mark.parametrize("text", ['{"a": NaN}', "[Infinity]", "-Infinity", "1e999"])
def test_loads_refuses_what_json_cannot_carry(text: str) -> None:
    with pytest.raises(ValueError):
        args.loads(text)


@pytest.mark.parametrize(
    ("content", "count"),
    [
        ({"ops": [{"op": "test.noop"}]}, 1),
        ({"jobs": [{"ops": []}, {"ops": []}]}, 2),
        ([{"ops": []}, {"ops": []}, {"ops": []}], 3),
    ],
)
def test_job_file_takes_a_job_a_batch_or_a_list(
    tmp_path: Path, content: object, count: int
) -> None:
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(content))
    assert len(args.job_file(path)) == count


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", "must hold a job or a batch of jobs .* not int"),
        ('"ops"', "must hold a job or a batch of jobs .* not str"),
        ('{"jobs": {"ops": []}}', "'jobs' must be a list of jobs"),
        ('{"jobs": []}', "no jobs in"),
        ("[]", "no jobs in"),
        ('[{"ops": []}, 1]', "job 1 is not a JSON object"),
        ('{"ops": [{"op": "x", "params": {"a": NaN}}]}', "cannot read jobs from .*NaN"),
        ("{", "cannot read jobs from"),
        (b"\xff\xfe{", "cannot read jobs from"),
    ],
)
def test_job_file_refuses_other_shapes(tmp_path: Path, text: str | bytes, message: str) -> None:
    path = tmp_path / "jobs.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ValidationError, match=message):
        args.job_file(path)


def test_job_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read jobs from"):
        args.job_file(tmp_path / "missing.json")
    with pytest.raises(ValidationError, match="cannot read jobs from"):
        args.job_file(tmp_path)  # a directory


def test_ages() -> None:
    assert args.age("all") == 0
    assert args.age("90") == 90
    assert args.age("1.5d") == 1.5 * 86400
    assert args.age("2w") == 2 * 604800
    with pytest.raises(ValidationError, match="age 'soon' must be like 1d"):
        args.age("soon")
    with pytest.raises(ValidationError, match=r"age '9{40}\.\.\.' is too large"):
        args.age("9" * 400)


def test_urls() -> None:
    assert args.url("http://127.0.0.1:8470") == "http://127.0.0.1:8470"
    assert args.url("https://jobs.example.org/") == "https://jobs.example.org/"
    for bad in ("localhost:8470", "ftp://host", "http://", "127.0.0.1", "http://[::1"):
        with pytest.raises(ValidationError, match=r"--url .* must be http://HOST:PORT"):
            args.url(bad)


def test_tokens() -> None:
    assert args.token(None) is None
    assert args.token("") is None
    assert args.token("r" * 20) == "r" * 20
    for bad in ("caf\u00e9", "two words", "line\nbreak", "tab\t"):
        with pytest.raises(ValidationError, match="--token must be printable ASCII"):
            args.token(bad)
