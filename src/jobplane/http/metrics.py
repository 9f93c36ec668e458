"""``/metrics``: Prometheus text, from a registry of the app's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..jobs import OpStatus
from ..queue import JobQueue


class _QueueCollector(Collector):
    """Reads the queue's state at scrape time."""

    def __init__(self, queue: JobQueue, open_waits: Callable[[], int]) -> None:
        self._queue = queue
        self._open_waits = open_waits

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self._queue.status()
        jobs = GaugeMetricFamily("jobplane_jobs", "Unarchived jobs by status", labels=["status"])
        for name, count in status.jobs_by_status.items():
            jobs.add_metric([name], count)
        yield jobs
        pending = GaugeMetricFamily(
            "jobplane_pending_jobs", "Unfinished jobs by priority", labels=["priority"]
        )
        for priority, count in status.jobs_by_priority.items():
            pending.add_metric([str(priority)], count)
        yield pending
        age = self._queue.oldest_queued_age()
        yield GaugeMetricFamily(
            "jobplane_oldest_queued_age_seconds",
            "How long the oldest job waiting for a worker has waited",
            value=age or 0.0,
        )
        yield GaugeMetricFamily(
            "jobplane_drained", "1 while the queue is drained", value=status.drained
        )
        yield GaugeMetricFamily(
            "jobplane_open_waits", "Long polls (/wait) open now", value=self._open_waits()
        )


class Metrics:
    """The app's metrics; also the queue observer that feeds the histograms."""

    def __init__(self, queue: JobQueue, open_waits: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_QueueCollector(queue, open_waits))
        self._durations = Histogram(
            "jobplane_op_duration_seconds",
            "How long ops ran",
            ["op", "status"],
            registry=self.registry,
        )
        self._lock_wait = Histogram(
            "jobplane_lock_wait_seconds",
            "How long ops waited for their locks",
            registry=self.registry,
        )
        self._escalations = Counter(
            "jobplane_escalations",
            "Priority steps gained by waiting for locks",
            registry=self.registry,
        )
        queue.add_observer(self)

    def op_finished(self, op: str, status: OpStatus, seconds: float) -> None:
        self._durations.labels(op, str(status)).observe(seconds)

    def lock_waited(self, seconds: float) -> None:
        self._lock_wait.observe(seconds)

    def escalated(self) -> None:
        self._escalations.inc()
