"""What the daemon did lately, kept in memory for the dashboard: op runs and queue depth.

Two bounded rings, both safe to use from any thread:

* :class:`RecentRuns` keeps the last ``capacity`` op runs (:class:`OpRun`:
  which worker ran which op of which job, at what priority, from when to
  when, and how it ended). The processor reports each run as it ends, on
  the worker thread, so ``add`` is one append under a lock.
* :class:`DepthHistory` keeps one :class:`DepthSample` (how many jobs wait,
  by priority, and how many run) per sampling interval over the last minutes.
  Whoever owns it calls :meth:`DepthHistory.sample` periodically; the HTTP
  app does every ``interval`` seconds.

Nothing here is persisted: after a restart the rings start empty. The
store stays the truth about jobs; these only say *who* ran them and *when*.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from .jobs import OpStatus


@dataclass(frozen=True, slots=True)
class OpRun:
    """One run of one op; times are wall-clock seconds."""

    worker: str
    job_id: int
    op_index: int
    op: str
    priority: int
    started_at: float
    ended_at: float
    status: OpStatus

    def to_dict(self) -> dict[str, object]:
        return {
            "worker": self.worker,
            "job": self.job_id,
            "op_index": self.op_index,
            "op": self.op,
            "priority": self.priority,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "status": str(self.status),
        }


class RecentRuns:
    """The last ``capacity`` op runs, oldest first; older ones fall out."""

    def __init__(self, capacity: int = 5000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._mutex = threading.Lock()
        self._runs: deque[OpRun] = deque(maxlen=capacity)

    def add(self, run: OpRun) -> None:
        with self._mutex:
            self._runs.append(run)

    def ended_since(self, since: float) -> list[OpRun]:
        """The kept runs that ended at or after ``since``, in the order they ended."""
        with self._mutex:
            runs = list(self._runs)
        return [run for run in runs if run.ended_at >= since]


@dataclass(frozen=True, slots=True)
class DepthSample:
    """The queue at one moment: jobs waiting to run (queued or waiting), by priority."""

    time: float
    waiting: Mapping[int, int]
    running: int

    def to_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "waiting": {str(p): n for p, n in sorted(self.waiting.items())},
            "running": self.running,
        }


WAITING_STATUSES = frozenset({OpStatus.QUEUED, OpStatus.WAITING})
RUNNING_STATUSES = frozenset({OpStatus.RUNNING, OpStatus.CANCELING})


def depth_sample(time: float, counts: Mapping[tuple[OpStatus, int], int]) -> DepthSample:
    """A sample from ``Store.counts()`` (unarchived jobs by status and priority)."""
    waiting: dict[int, int] = {}
    running = 0
    for (status, priority), count in counts.items():
        if status in WAITING_STATUSES:
            waiting[priority] = waiting.get(priority, 0) + count
        elif status in RUNNING_STATUSES:
            running += count
    return DepthSample(time, waiting, running)


class DepthHistory:
    """Queue depth samples over the last ``span`` seconds, one per ``interval``."""

    def __init__(self, interval: float = 1.0, span: float = 600.0) -> None:
        if interval <= 0 or span < interval:
            raise ValueError("need 0 < interval <= span")
        self.interval = interval
        self.span = span
        self._mutex = threading.Lock()
        self._samples: deque[DepthSample] = deque(maxlen=int(span / interval) + 1)

    def add(self, sample: DepthSample) -> None:
        with self._mutex:
            self._samples.append(sample)

    def samples(self) -> list[DepthSample]:
        """The kept samples, oldest first."""
        with self._mutex:
            return list(self._samples)
