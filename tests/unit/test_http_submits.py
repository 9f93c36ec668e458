"""``Submits`` gathers the submits that arrive while others commit; each gets its own answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast

from jobplane.errors import JobplaneError, OpNotFound, ShuttingDown
from jobplane.http.offload import Offload
from jobplane.http.submits import Submits
from jobplane.queue import JobQueue

TIMEOUT = 10.0


class HeldQueue:
    """``submit_each`` that numbers the jobs, refuses op ``bad``, and holds its first calls."""

    def __init__(self, held_calls: int) -> None:
        self.calls: list[list[str]] = []
        self.release = threading.Event()
        self._held_calls = held_calls
        self._entered = threading.Semaphore(0)
        self._next_id = 1
        self._mutex = threading.Lock()

    def submit_each(self, jobs: Sequence[Mapping[str, Any]]) -> list[int | JobplaneError]:
        with self._mutex:
            self.calls.append([job["ops"][0]["op"] for job in jobs])
            held = len(self.calls) <= self._held_calls
        if held:
            self._entered.release()
            assert self.release.wait(TIMEOUT)
        outcomes: list[int | JobplaneError] = []
        with self._mutex:
            for job in jobs:
                if job["ops"][0]["op"] == "bad":
                    outcomes.append(OpNotFound("unknown op 'bad'"))
                else:
                    outcomes.append(self._next_id)
                    self._next_id += 1
        return outcomes

    def wait_entered(self) -> bool:
        return self._entered.acquire(timeout=TIMEOUT)


def spec(op: str) -> dict[str, Any]:
    return {"ops": [{"op": op}], "priority": None, "depends": []}


async def outcome(submits: Submits, op: str) -> int | str:
    try:
        return await submits.submit(spec(op))
    except JobplaneError as exc:
        return type(exc).__name__


def test_submits_arriving_while_others_commit_go_together_each_with_its_own_answer() -> None:
    held = HeldQueue(held_calls=2)
    offload = Offload()

    async def scenario() -> list[int | str]:
        submits = Submits(cast(JobQueue, held), offload, in_flight=2)
        first = []
        for op in ("a", "b"):  # each handed over alone, and held on its thread
            first.append(asyncio.create_task(outcome(submits, op)))
            assert await asyncio.to_thread(held.wait_entered)
        later = [asyncio.create_task(outcome(submits, op)) for op in ("c", "bad", "d")]
        await asyncio.sleep(0)  # they gather: both hand-overs are running
        held.release.set()
        return await asyncio.wait_for(asyncio.gather(*first, *later), TIMEOUT)

    try:
        answers = asyncio.run(scenario())
    finally:
        offload.close()
    assert held.calls == [["a"], ["b"], ["c", "bad", "d"]]  # one hand-over for the three
    a, b, c, bad, d = answers
    assert bad == "OpNotFound"
    assert sorted([a, b, c, d]) == [1, 2, 3, 4]  # type: ignore[type-var]
    assert d == c + 1  # type: ignore[operator]  # numbered together, in order


def test_a_lone_submit_is_handed_over_at_once() -> None:
    held = HeldQueue(held_calls=0)
    offload = Offload()

    async def scenario() -> int | str:
        return await asyncio.wait_for(outcome(Submits(cast(JobQueue, held), offload), "a"), TIMEOUT)

    try:
        assert asyncio.run(scenario()) == 1
    finally:
        offload.close()
    assert held.calls == [["a"]]


def test_an_error_of_the_whole_hand_over_reaches_every_submit_of_it() -> None:
    class Stopping:
        def submit_each(self, jobs: Sequence[Mapping[str, Any]]) -> list[int | JobplaneError]:
            raise ShuttingDown()

    offload = Offload()

    async def scenario() -> list[int | str]:
        submits = Submits(cast(JobQueue, Stopping()), offload)
        tasks = [outcome(submits, op) for op in "abc"]
        return await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)

    try:
        assert asyncio.run(scenario()) == ["ShuttingDown"] * 3
    finally:
        offload.close()
