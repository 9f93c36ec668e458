"""The worker pool under load: every task runs exactly once, in an order its priorities allow.

Two tests:

* A model test (hypothesis): one worker, everything queued while paused,
  tasks that defer and re-prioritise other tasks while they run. The order
  is then fully determined, and must equal what a ten-line reference model
  of the rules computes.
* A randomized stress test: producers on several threads add tasks
  (``submit`` and ``add_task``), change priorities and resize the pool while
  two or three workers run tasks that defer (some with a delay). Every event
  goes into one log in real-time order; afterwards a checker looks for a task
  that was taken while another one was *certainly* queued, eligible and ahead
  of it. "Certainly" makes the check sound whatever the thread timing: each
  ``pop`` is only known to lie between events we recorded (see ``Run``).
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobplane.workerpool import DeferTask, NoSuchTask, WorkerPool, current_priority

TIMEOUT = 30.0
INF = float("inf")

# -- the model test ------------------------------------------------------------------------

PRIORITIES = st.integers(min_value=-3, max_value=3)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=1, max_value=25))
    tasks = []
    for _ in range(count):
        tasks.append(
            {
                "priority": draw(PRIORITIES),
                # each run but the last defers: to this priority, or None to stay put
                "defers": draw(st.lists(st.one_of(st.none(), PRIORITIES), max_size=2)),
                # while it runs (first run only) it moves these tasks
                "moves": draw(
                    st.lists(
                        st.tuples(st.integers(0, count - 1), PRIORITIES),
                        max_size=2,
                    )
                ),
            }
        )
    before = draw(st.lists(st.tuples(st.integers(0, count - 1), PRIORITIES), max_size=10))
    return {"tasks": tasks, "before": before}


def model(scenario: dict[str, Any]) -> list[tuple[int, int]]:
    """The rules, written as plainly as possible: (task, priority) for each run."""
    tasks = scenario["tasks"]
    seq = iter(range(10**9))
    queue = {i: [task["priority"], next(seq)] for i, task in enumerate(tasks)}
    for i, priority in scenario["before"]:
        queue[i][0] = priority
    runs_left = {i: list(task["defers"]) for i, task in enumerate(tasks)}
    order = []
    while queue:
        i = min(queue, key=lambda k: tuple(queue[k]))
        priority = queue.pop(i)[0]
        order.append((i, priority))
        if len(runs_left[i]) == len(tasks[i]["defers"]):  # first run
            for j, new in tasks[i]["moves"]:
                if j in queue:
                    queue[j][0] = new
        if runs_left[i]:
            target = runs_left[i].pop(0)
            queue[i] = [priority if target is None else target, next(seq)]
    return order


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_single_worker_order_matches_the_model(scenario: dict[str, Any]) -> None:
    tasks = scenario["tasks"]
    order: list[tuple[int, int | None]] = []
    runs = [0] * len(tasks)

    with WorkerPool(1, name="model") as pool:

        def body(i: int) -> None:
            runs[i] += 1
            order.append((i, current_priority()))
            if runs[i] == 1:
                for j, new in tasks[i]["moves"]:
                    with contextlib.suppress(NoSuchTask):
                        pool.change_priority(j, new)
            defers = tasks[i]["defers"]
            if runs[i] <= len(defers):
                raise DeferTask(priority=defers[runs[i] - 1])

        pool.pause()
        for i, task in enumerate(tasks):
            pool.add_task(body, i, priority=task["priority"], task_id=i)
        for i, priority in scenario["before"]:
            pool.change_priority(i, priority)
        pool.resume()
        assert pool.wait_idle(TIMEOUT)
        stats = pool.statistics()

    assert order == model(scenario)
    assert stats.completed == len(tasks)
    assert stats.deferred == sum(len(task["defers"]) for task in tasks)


# -- the randomized stress test ------------------------------------------------------------


@dataclass
class Run:
    """One run of one task, and the bounds the log gives on when it was popped.

    The pool pops a run's entry after it was queued (``queued_from``, the event
    just before ``add_task``/``submit`` or the task's defer) and after the
    previous run on the same worker thread ended (a worker pops its next task
    only then), and before the run starts. So the pop lies strictly inside
    ``(pop_after, started)``. The entry was certainly in the queue from
    ``queued_by`` (the event after ``add_task`` returned; for a deferral, the
    deferring worker's next start) until ``pop_after``.
    """

    task: int
    number: int
    priority: int | None = None  # current_priority() at the start
    delayed: bool = False  # queued with a delay: not always eligible
    queued_from: int = -1
    queued_at: int = 0  # the priority it was queued at
    queued_by: float = INF
    started: int = -1
    ended: int = -1  # the event recorded last in the task's body
    worker: str = ""
    pop_after: int = -1


@dataclass
class Change:
    task: int
    priority: int
    begun: int
    ended: int = -1
    ok: bool = False


@dataclass
class Log:
    events: int = 0
    runs: dict[tuple[int, int], Run] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> int:
        """A new event number; call with ``lock`` held."""
        self.events += 1
        return self.events


def certain_priorities(run: Run, changes: list[Change]) -> Iterator[tuple[float, float, int]]:
    """Intervals ``(after, before, priority)`` in which ``run`` was queued at ``priority``."""
    mine = sorted(
        (c for c in changes if c.ok and c.task == run.task and c.ended > run.queued_from),
        key=lambda c: c.begun,
    )
    if any(c.begun < run.queued_by for c in mine):
        return  # a change may have hit this entry or the previous one: nothing is certain
    start, priority = run.queued_by, run.queued_at
    for i, change in enumerate(mine):
        yield start, min(change.begun, run.pop_after), priority
        overlapping = [c for c in mine[i + 1 :] if c.begun < change.ended]
        if overlapping:
            return  # two changes at once: which one won is unknown
        start, priority = change.ended, change.priority
    yield start, run.pop_after, priority


def ordering_violations(log: Log) -> list[str]:
    """Runs popped while another entry was certainly queued, eligible and ahead of them."""
    runs = list(log.runs.values())
    certain = [
        (y, after, before, priority)
        for y in runs
        if not y.delayed
        for after, before, priority in certain_priorities(y, log.changes)
        if after < before
    ]
    problems = []
    for x in runs:
        for y, after, before, priority in certain:
            if y.task == x.task or not (after < x.pop_after and x.started < before):
                continue
            assert x.priority is not None
            ahead = priority < x.priority or (
                priority == x.priority and y.queued_by < x.queued_from  # older seq
            )
            if ahead:
                problems.append(
                    f"task {x.task} run {x.number} (priority {x.priority}) was taken while "
                    f"task {y.task} run {y.number} was queued at priority {priority}"
                )
    return problems


def run_stress(seed: int) -> tuple[Log, dict[int, int], Any, list[Any]]:
    rng = random.Random(seed)
    producers, per_producer = 3, 60
    total = producers * per_producer
    plans: dict[int, list[tuple[int | None, float | None]]] = {}
    for task in range(total):
        plans[task] = [
            (rng.choice([None, *range(-2, 3)]), rng.choice([None, None, None, 0.002]))
            for _ in range(rng.choice([0, 0, 1, 2]))
        ]
    log = Log()
    finished: dict[int, int] = {}
    runs_so_far: dict[int, int] = {}
    futures: list[Any] = []

    def body(task: int) -> int:
        me = threading.current_thread().name
        with log.lock:
            number = runs_so_far[task] = runs_so_far.get(task, -1) + 1
            run = log.runs[(task, number)]
            run.started, run.priority, run.worker = log.tick(), current_priority(), me
        for _ in range(task % 7 * 40):  # a little work
            pass
        plan = plans[task]
        with log.lock:
            run.ended = log.tick()
            if number < len(plan):
                target, delay = plan[number]
                log.runs[(task, number + 1)] = Run(
                    task,
                    number + 1,
                    delayed=bool(delay),
                    queued_from=run.ended,
                    queued_at=run.priority if target is None else target,
                )
                raise DeferTask(priority=target, delay=delay)
            finished[task] = finished.get(task, 0) + 1
        return task

    with WorkerPool(2, name="stress") as pool:
        start = threading.Barrier(producers + 1, timeout=TIMEOUT)

        def produce(index: int) -> None:
            local = random.Random(seed * 100 + index)
            start.wait()
            for k in range(per_producer):
                task = index * per_producer + k
                priority = local.randint(-2, 2)
                with log.lock:
                    run = Run(task, 0, queued_from=log.tick(), queued_at=priority)
                    log.runs[(task, 0)] = run
                if local.random() < 0.5:
                    futures.append(pool.submit(body, task, priority=priority, task_id=task))
                else:
                    pool.add_task(body, task, priority=priority, task_id=task)
                with log.lock:
                    run.queued_by = log.tick()
                if local.random() < 0.4:
                    target = local.randrange(max(1, task))
                    new = local.randint(-2, 2)
                    with log.lock:
                        change = Change(target, new, begun=log.tick())
                        log.changes.append(change)
                    try:
                        pool.change_priority(target, new)
                        change.ok = True
                    except NoSuchTask:
                        pass
                    with log.lock:
                        change.ended = log.tick()
                if index == 0 and k % 15 == 14:
                    pool.resize(local.randint(1, 3))

        threads = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
        for thread in threads:
            thread.start()
        start.wait()
        for thread in threads:
            thread.join(TIMEOUT)
        pool.resize(2)
        assert pool.wait_idle(TIMEOUT)
        stats = pool.statistics()

    # a deferred entry was certainly queued by the deferring worker's next start
    by_worker: dict[str, list[Run]] = {}
    for run in log.runs.values():
        by_worker.setdefault(run.worker, []).append(run)
    for worker_runs in by_worker.values():
        worker_runs.sort(key=lambda r: r.started)
        previous_end = -1
        for i, run in enumerate(worker_runs):
            run.pop_after = max(run.queued_from, previous_end)
            previous_end = run.ended
            follow = log.runs.get((run.task, run.number + 1))
            if follow is not None and i + 1 < len(worker_runs):
                follow.queued_by = worker_runs[i + 1].started
    expected_runs = {task: len(plan) + 1 for task, plan in plans.items()}
    ran = {}
    for task, _ in log.runs:
        ran[task] = ran.get(task, 0) + 1
    assert ran == expected_runs
    return log, finished, stats, futures


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_concurrent_adds_defers_changes_and_resizes(seed: int) -> None:
    log, finished, stats, futures = run_stress(seed)
    total = len(finished)
    assert total == 180 and set(finished.values()) == {1}  # every task finished exactly once
    assert all(run.started > 0 for run in log.runs.values())  # and every run happened
    assert all(f.done() and f.exception() is None for f in futures)
    assert (stats.queued, stats.running, stats.failed) == (0, 0, 0)
    assert stats.completed == total
    assert stats.deferred == len(log.runs) - total
    assert ordering_violations(log) == []
