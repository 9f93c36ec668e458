"""``jobplane.Client`` against a real daemon: the API from Python, with the queue's errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobplane import Client
from jobplane.errors import (
    AuthError,
    DaemonUnavailable,
    Forbidden,
    JobNotFound,
    OpNotFound,
    QueueDrained,
    ValidationError,
)
from jobplane.http import TokenStore

from .http_server import free_port, running_daemon

WAIT = 20.0


def test_client_mirrors_the_api(tmp_path: Path) -> None:
    with running_daemon(tmp_path, start=False) as (url, queue), Client(url) as c:
        slow = c.submit([{"op": "test.delay", "params": {"duration": 30}}], priority="low")
        ids = c.submit_many(
            [
                {"ops": [{"op": "test.noop"}]},
                {"ops": [{"op": "test.noop"}], "depends": [(-1, ["success"])]},
            ]
        )
        assert c.get(slow)["status"] == "queued"
        assert [j["id"] for j in c.list(status="queued")["jobs"]] == [slow, *ids]
        assert c.explain(slow)["reasons"]
        assert c.change_priority(slow, "high")[0] is True
        ok, message = c.cancel(slow)
        assert ok and message
        queue.pool.resume()
        assert c.wait_final(ids[1], timeout=WAIT)["status"] == "success"
        assert c.wait_final(slow, timeout=WAIT)["status"] == "canceled"
        assert c.status()["jobs_by_status"]["success"] == 2
        assert any(op["name"] == "test.noop" for op in c.ops())
        assert isinstance(c.locks(all=True), list)
        c.set_drained(True)
        with pytest.raises(QueueDrained):
            c.submit([{"op": "test.noop"}])


def test_client_raises_the_queues_error_classes(tmp_path: Path) -> None:
    with running_daemon(tmp_path) as (url, _queue), Client(url) as c:
        with pytest.raises(JobNotFound):
            c.get(999)
        with pytest.raises(OpNotFound, match="unknown op 'nope'"):
            c.submit([{"op": "nope"}])
        with pytest.raises(ValidationError, match="duration"):
            c.submit([{"op": "test.delay", "params": {"duration": -1}}])
    unreachable = pytest.raises(DaemonUnavailable, match="could not reach the jobplane daemon")
    with Client(f"http://127.0.0.1:{free_port()}", timeout=2) as nobody, unreachable:
        nobody.status()


def test_client_tokens(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("reader-secret-0123456789 read\nwriter-secret-0123456789 write\n")
    with running_daemon(tmp_path, tokens=TokenStore.from_file(tokens)) as (url, _queue):
        with Client(url) as anonymous, pytest.raises(AuthError):
            anonymous.status()
        with Client(url, token="wrong") as wrong, pytest.raises(AuthError):
            wrong.status()
        with Client(url, token="reader-secret-0123456789") as reader:
            assert reader.status()["drained"] is False
            with pytest.raises(Forbidden):
                reader.submit([{"op": "test.noop"}])
        with Client(url, token="writer-secret-0123456789") as writer:
            assert (
                writer.wait_final(writer.submit([{"op": "test.noop"}]), timeout=WAIT)["status"]
                == "success"
            )
