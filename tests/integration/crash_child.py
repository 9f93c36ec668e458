"""Run by test_crash_recovery in a subprocess: submit jobs forever, print each accepted id.

An id is printed only after ``submit`` returned, i.e. after the job was committed.
"""

from __future__ import annotations

import sys

from jobplane.operations import OpContext, Registry
from jobplane.operations.builtin import NoopParams
from jobplane.queue import JobQueue


def registry() -> Registry:
    reg = Registry()

    def again(ctx: OpContext, params: NoopParams) -> str:
        ctx.sleep(0.002)
        return "done"

    reg.add("crash.retry", again, retry_on_crash=True)
    return reg


def job(n: int) -> dict[str, object]:
    node = f"node:n{n % 3}"
    delay = {"op": "test.delay", "params": {"duration": 0.003, "exclusive": [node]}}
    ops: list[dict[str, object]] = [delay]
    if n % 4 == 0:
        ops.append({"op": "crash.retry"})
    if n % 5 == 0:
        ops.append({"op": "test.noop"})
    return {"ops": ops, "priority": n % 20 - 10}


def main() -> None:
    url = sys.argv[1]
    with JobQueue.open(url, registry=registry(), workers=3, lock_timeouts=(0.01, 0.02, 0.1)) as q:
        n = 0
        while True:
            if n % 10 == 9:
                ids = q.submit_many([job(n), {**job(n + 1), "depends": [(-1, ["success"])]}])
                n += 2
            else:
                ids = [q.submit(**job(n))]  # type: ignore[arg-type]
                n += 1
            for job_id in ids:
                print(job_id, flush=True)


if __name__ == "__main__":
    main()
