"""The dashboard's memory of recent activity: op runs, queue depth samples, the change feed."""

from __future__ import annotations

import asyncio
import threading

import pytest

from jobplane.activity import (
    DepthHistory,
    DepthSample,
    OpRun,
    RecentRuns,
    depth_sample,
)
from jobplane.http.dashboard_api import ChangeFeed
from jobplane.jobs import OpStatus

TIMEOUT = 10.0


def run(job: int, ended: float) -> OpRun:
    return OpRun("w1", job, 0, "op", 0, ended - 1, ended, OpStatus.SUCCESS)


def test_recent_runs_keep_the_last_ones_in_the_order_they_ended() -> None:
    runs = RecentRuns(capacity=3)
    for job in range(1, 6):
        runs.add(run(job, 100.0 + job))

    assert [r.job_id for r in runs.ended_since(0)] == [3, 4, 5]
    assert [r.job_id for r in runs.ended_since(104.0)] == [4, 5]
    assert runs.ended_since(200.0) == []


def test_depth_sample_counts_waiting_jobs_by_priority_and_running_ones() -> None:
    counts = {
        (OpStatus.QUEUED, -10): 2,
        (OpStatus.WAITING, -10): 1,
        (OpStatus.QUEUED, 10): 4,
        (OpStatus.RUNNING, 0): 3,
        (OpStatus.CANCELING, 5): 1,
        (OpStatus.SUCCESS, 0): 50,
        (OpStatus.ERROR, -10): 7,
    }
    sample = depth_sample(123.0, counts)
    assert sample == DepthSample(123.0, {-10: 3, 10: 4}, 4)
    assert sample.to_dict() == {"time": 123.0, "waiting": {"-10": 3, "10": 4}, "running": 4}


def test_depth_history_keeps_one_span_of_samples() -> None:
    history = DepthHistory(interval=2.0, span=10.0)
    for t in range(20):
        history.add(DepthSample(float(t), {}, 0))
    assert [s.time for s in history.samples()] == [14.0, 15.0, 16.0, 17.0, 18.0, 19.0]
    with pytest.raises(ValueError):
        DepthHistory(interval=0)


def test_change_feed_answers_at_once_when_the_serial_moved() -> None:
    feed = ChangeFeed()
    feed.changed(1)
    assert asyncio.run(feed.wait(since=0, timeout=TIMEOUT)) == 1


def test_change_feed_wakes_a_waiter_from_another_thread() -> None:
    feed = ChangeFeed()

    async def scenario() -> int:
        waiting = asyncio.ensure_future(feed.wait(since=0, timeout=TIMEOUT))
        while not feed._waiters:  # parked: now change a job from a store thread
            await asyncio.sleep(0)
        threading.Thread(target=feed.changed, args=(7,)).start()
        return await waiting

    assert asyncio.run(asyncio.wait_for(scenario(), TIMEOUT)) == 1
    assert not feed._waiters


def test_change_feed_times_out_unchanged_and_forgets_the_waiter() -> None:
    feed = ChangeFeed()
    assert asyncio.run(feed.wait(since=0, timeout=0.01)) == 0
    assert not feed._waiters


def test_change_feed_close_answers_every_waiter() -> None:
    feed = ChangeFeed()

    async def scenario() -> list[int]:
        waits = [asyncio.ensure_future(feed.wait(since=0, timeout=TIMEOUT)) for _ in range(3)]
        while len(feed._waiters) < 3:
            await asyncio.sleep(0)
        feed.close()
        return list(await asyncio.gather(*waits))

    assert asyncio.run(asyncio.wait_for(scenario(), TIMEOUT)) == [0, 0, 0]
