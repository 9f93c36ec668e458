"""``Client`` and ``AsyncClient`` against a real daemon: the API from Python, with the
queue's method names, typed answers and the queue's errors."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from jobplane import AsyncClient, Client, models
from jobplane.errors import (
    AuthError,
    DaemonUnavailable,
    Forbidden,
    JobNotFound,
    JobStateError,
    OpNotFound,
    QueueDrained,
    ValidationError,
    WaitTimeout,
)
from jobplane.http import TokenStore
from jobplane.jobs import OpStatus

from .http_server import free_port, running_daemon

WAIT = 20.0
HOLD = [{"op": "test.delay", "params": {"duration": 30}}]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_client_mirrors_the_queue(tmp_path: Path) -> None:
    with running_daemon(tmp_path, start=False) as (url, queue), Client(url) as c:
        slow = c.submit(HOLD, priority="low")
        ids = c.submit_many(
            [
                {"ops": [{"op": "test.noop"}]},
                {"ops": [{"op": "test.noop"}], "depends": [(-1, ["success"])]},
            ]
        )
        job = c.get(slow)
        assert isinstance(job, models.JobInfo)
        assert (job.id, job.status, job.priority, job.is_final) == (slow, "queued", 10, False)
        assert (job.ops[0].op, job.ops[0].params["duration"]) == ("test.delay", 30)
        assert [j.id for j in c.list(status="queued")] == [slow, *ids]
        assert [j.id for j in c.list(status=[OpStatus.QUEUED], limit=2)] == [slow, ids[0]]
        page = c.list_page(status="queued", limit=2)
        assert page.next == ids[0]
        assert [j.id for j in c.list(status="queued", after=page.next)] == [ids[1]]
        assert any("queued" in reason for reason in c.explain(slow).reasons)
        assert c.change_priority(slow, "high")[0] is True
        assert c.get(slow).priority == -10
        ok, message = c.cancel(slow)
        assert ok and message
        with pytest.raises(JobStateError, match="only finished jobs"):
            c.archive(ids[0])
        queue.pool.resume()
        done = c.wait(ids[1], timeout=WAIT)
        assert (done.status, done.is_final) == (OpStatus.SUCCESS, True)
        assert c.wait(slow, timeout=WAIT).status == "canceled"
        status = c.status()
        assert status.jobs_by_status["success"] == 2 and status.drained is False
        assert status.workers == 2 and status.version
        c.archive(ids[0])
        assert c.get(ids[0]).archived is True
        assert sorted(c.auto_archive(0)) == [slow, ids[1]]
        assert any(op.name == "test.noop" and op.retry_on_crash for op in c.ops())
        assert c.lock_info(busy_only=True) == []
        assert {(lock.level, lock.name) for lock in c.lock_info()} >= {("cluster", "cluster")}
        c.set_drained(True)
        assert c.status().drained is True
        with pytest.raises(QueueDrained):
            c.submit([{"op": "test.noop"}])


def test_wait_for_change_returns_the_change_or_none(tmp_path: Path) -> None:
    with running_daemon(tmp_path, start=False) as (url, queue), Client(url) as c:
        job_id = c.submit([{"op": "test.delay", "params": {"duration": 0, "message": "hi"}}])
        assert c.wait_for_change(job_id, timeout=0) is None  # queued, and it stays so
        queue.pool.resume()
        update = c.wait_for_change(job_id, timeout=WAIT, since_status="queued")
        assert update is not None and update.job.id == job_id
        final = c.wait(job_id, timeout=WAIT)
        assert final.log and final.last_serial == final.log[-1].serial
        assert c.wait_for_change(job_id, final.last_serial, WAIT, since_status=final.status) is None


def test_a_wait_that_times_out_raises_wait_timeout_like_the_queue(tmp_path: Path) -> None:
    with running_daemon(tmp_path, start=False) as (url, queue), Client(url) as c:
        job_id = c.submit(HOLD)
        with pytest.raises(WaitTimeout, match=f"job {job_id} did not finish within 0.2 s"):
            c.wait(job_id, timeout=0.2)
        with pytest.raises(WaitTimeout, match=f"job {job_id} did not finish within 0.2 s"):
            queue.wait(job_id, timeout=0.2)
        with pytest.raises(TimeoutError):  # WaitTimeout is also the built-in timeout error
            c.wait(job_id, timeout=0)


def test_client_raises_the_queues_error_classes(tmp_path: Path) -> None:
    with running_daemon(tmp_path) as (url, queue), Client(url) as c:
        for call in (lambda target: target.get(999), lambda target: target.explain(999)):
            with pytest.raises(JobNotFound) as remote:
                call(c)
            with pytest.raises(JobNotFound) as embedded:
                call(queue)
            assert str(remote.value) == str(embedded.value)
        with pytest.raises(OpNotFound, match="unknown op 'nope'"):
            c.submit([{"op": "nope"}])
        with pytest.raises(ValidationError, match="duration"):
            c.submit([{"op": "test.delay", "params": {"duration": -1}}])
    unreachable = pytest.raises(DaemonUnavailable, match="could not reach the jobplane daemon")
    with Client(f"http://127.0.0.1:{free_port()}", timeout=2, retries=0) as nobody, unreachable:
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
            assert reader.status().drained is False
            with pytest.raises(Forbidden):
                reader.submit([{"op": "test.noop"}])
        with Client(url, token="writer-secret-0123456789") as writer:
            job_id = writer.submit([{"op": "test.noop"}])
            assert writer.wait(job_id, timeout=WAIT).status == "success"


def test_the_daemon_documents_its_answers_with_the_clients_models(tmp_path: Path) -> None:
    import httpx

    with running_daemon(tmp_path) as (url, _queue):
        document = httpx.get(f"{url}/openapi.json").json()
    expected = {
        ("post", "/v1/jobs", "201"): "Submitted",
        ("post", "/v1/jobs/batch", "201"): "SubmittedBatch",
        ("get", "/v1/jobs", "200"): "JobPage",
        ("get", "/v1/jobs/{job_id}", "200"): "JobInfo",
        ("get", "/v1/jobs/{job_id}/wait", "200"): "WaitAnswer",
        ("get", "/v1/jobs/{job_id}/explain", "200"): "Explanation",
        ("get", "/v1/status", "200"): "DaemonStatus",
    }
    for (method, path, status), model in expected.items():
        schema = document["paths"][path][method]["responses"][status]["content"][
            "application/json"
        ]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, (method, path)
        assert model in models.__all__


# -- connection errors and retries -----------------------------------------------------------


class Proxy:
    """A TCP proxy in front of the daemon that drops the first ``drop`` connections unanswered."""

    def __init__(self, target_port: int, drop: int) -> None:
        self.target_port = target_port
        self.drop = drop
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = [self._listener]

    def __enter__(self) -> Proxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self._sockets:  # shutdown wakes the threads blocked on them; close does not
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(WAIT)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections <= self.drop:
                conn.recv(65536)  # the request arrived; the answer never comes
                conn.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [conn, upstream]
            self._spawn(_pump, conn, upstream)
            self._spawn(_pump, upstream, conn)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@contextmanager
def proxied(tmp_path: Path, drop: int) -> Iterator[Proxy]:
    with running_daemon(tmp_path) as (url, _queue), Proxy(int(url.rsplit(":", 1)[1]), drop) as p:
        yield p


def test_a_read_is_repeated_after_its_connection_broke(tmp_path: Path) -> None:
    with proxied(tmp_path, drop=1) as proxy, Client(proxy.url, backoff=0.01) as c:
        assert c.status().drained is False
        assert proxy.connections == 2


def test_a_submit_is_not_repeated_once_it_may_have_reached_the_daemon(tmp_path: Path) -> None:
    with proxied(tmp_path, drop=1) as proxy, Client(proxy.url, backoff=0.01) as c:
        with pytest.raises(DaemonUnavailable, match="could not reach"):
            c.submit([{"op": "test.noop"}])
        assert proxy.connections == 1


def test_connection_refused_is_retried_with_back_off_then_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="jobplane.client")
    nobody = f"http://127.0.0.1:{free_port()}"
    with Client(nobody, retries=2, backoff=0.01) as c, pytest.raises(DaemonUnavailable):
        c.submit([{"op": "test.noop"}])  # it never reached the daemon: safe to repeat
    retries = [r.getMessage() for r in caplog.records if r.name == "jobplane.client"]
    assert len(retries) == 2, retries
    assert all("POST /v1/jobs" in message and "ConnectError" in message for message in retries)


# -- AsyncClient -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_client_has_the_same_methods_and_answers(tmp_path: Path) -> None:
    sync_methods = {name for name in dir(Client) if not name.startswith("_")} - {"close"}
    async_methods = {name for name in dir(AsyncClient) if not name.startswith("_")} - {"aclose"}
    assert sync_methods == async_methods
    with running_daemon(tmp_path, start=False) as (url, queue):
        async with AsyncClient(url) as c:
            slow = await c.submit(HOLD, priority="low")
            ids = await c.submit_many(
                [
                    {"ops": [{"op": "test.noop"}]},
                    {"ops": [{"op": "test.noop"}], "depends": [(-1, ["success"])]},
                ]
            )
            job = await c.get(slow)
            assert (job.id, job.status) == (slow, "queued")
            assert [j.id for j in await c.list(status="queued")] == [slow, *ids]
            assert (await c.list_page(limit=1)).next == slow
            assert [j.id for j in await c.list(newest_first=True)] == [*ids[::-1], slow]
            assert [j.id for j in await c.list(newest_first=True, before=ids[1])] == [ids[0], slow]
            assert (await c.list_page(newest_first=True, limit=1)).next == ids[1]
            assert [j.id for j in await c.list(priority="low")] == [slow]
            assert [j.id for j in await c.list(priority=("high", "normal"))] == ids
            assert [j.id for j in await c.list(priority=(-20, 0), op="NOOP")] == ids
            assert await c.quarantined(scan=True) == []
            with pytest.raises(JobStateError):
                await c.remove_quarantined(slow)
            assert (await c.explain(slow)).reasons
            assert (await c.change_priority(slow, "high"))[0] is True
            with pytest.raises(WaitTimeout):
                await c.wait(slow, timeout=0.1)
            assert (await c.cancel(slow))[0] is True
            queue.pool.resume()
            assert (await c.wait(ids[1], timeout=WAIT)).status == "success"
            assert await c.wait_for_change(ids[1], 0, 0.1, since_status="success") is None
            assert (await c.status()).jobs_by_status["success"] == 2
            await c.archive(ids[1])
            assert sorted(await c.auto_archive(0)) == [slow, ids[0]]
            assert any(op.name == "test.noop" for op in await c.ops())
            assert await c.lock_info(busy_only=True) == []
            await c.set_drained(True)
            with pytest.raises(QueueDrained):
                await c.submit([{"op": "test.noop"}])
            with pytest.raises(JobNotFound):
                await c.get(999)


@pytest.mark.anyio
async def test_async_client_retries_reads_but_not_submits(tmp_path: Path) -> None:
    with proxied(tmp_path, drop=2) as proxy:
        async with AsyncClient(proxy.url, backoff=0.01) as c:
            with pytest.raises(DaemonUnavailable):
                await c.submit([{"op": "test.noop"}])
            assert proxy.connections == 1
            assert (await c.status()).drained is False
            assert proxy.connections == 3  # the dropped second, then the daemon
