"""Every page on a busy simulated cluster: what the docs show, checked before it is shot.

With ``JOBPLANE_SCREENSHOTS=docs/images`` the pictures land in the docs
(``make screenshots``); otherwise the scene still runs and is checked.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .cluster import op
from .conftest import WRITE, Dashboard, shoot, start_dashboard

pytestmark = pytest.mark.browser


def routine(n: int, nodes: tuple[str, ...] = ("n2", "n3", "n4")) -> dict[str, Any]:
    node = nodes[n % len(nodes)]
    verb = "instance.start" if n % 2 else "instance.stop"
    return {
        "ops": [op(verb, instance=f"web{n % 12 + 1 if n < 30 else n}", node=node, seconds=0.3)],
        "priority": "low" if n % 4 else "normal",
    }


def history(board: Dashboard) -> None:
    """A backlog of routine work that urgent jobs overtake: the timeline's past."""
    api = board.api
    ids = api.post("/v1/jobs/batch", json={"jobs": [routine(n) for n in range(27)]}).json()["ids"]
    board.wait_final(ids[5])
    urgent = [
        board.submit(op("node.health", node="n3", seconds=0.15), priority="high"),
        board.submit(op("instance.start", instance="web9", node="n2", seconds=0.3), priority=-15),
        board.submit(
            op("instance.migrate", instance="web5", source="n3", target="n4", seconds=0.5),
            priority=-5,
        ),
    ]
    for job in [*ids, *urgent]:
        board.wait_final(job)


def now_busy(board: Dashboard) -> dict[str, int]:
    """Three of four workers held, jobs waiting for locks (escalating: the fourth worker
    takes their turns between lock attempts), and a backlog of routine work."""
    cluster = board.cluster
    for key in ("evacuate n1", "migrate web3", "start web2"):
        cluster.hold(key)
    jobs = {"evacuate": board.submit(op("node.evacuate", node="n1"))}
    cluster.wait_started("evacuate n1")
    jobs["migrate web3"] = board.submit(
        op("instance.migrate", instance="web3", source="n3", target="n4")
    )
    jobs["start web2"] = board.submit(
        op("instance.start", instance="web2", node="n2"), priority="low"
    )
    cluster.wait_started("migrate web3")
    cluster.wait_started("start web2")
    jobs["migrate web1"] = board.submit(
        op("instance.migrate", instance="web1", source="n1", target="n2")
    )
    jobs["health n1"] = board.submit(op("node.health", node="n1"), priority="high")
    jobs["start web4"] = board.submit(
        op("instance.start", instance="web4", node="n1"), priority="low"
    )
    jobs["health n4"] = board.submit(op("node.health", node="n4"), priority=-4)
    backlog = [routine(n, nodes=("n5", "n6", "n7")) for n in range(30, 54)]
    backlog[3]["priority"] = "high"
    backlog[7]["priority"] = -6
    for n in (10, 17):  # restarts: two ops
        backlog[n]["ops"] = [
            op("instance.stop", instance=f"web{n}", node="n6", seconds=0.2),
            op("instance.start", instance=f"web{n}", node="n6", seconds=0.2),
        ]
    board.api.post("/v1/jobs/batch", json={"jobs": backlog})
    return jobs


def test_every_page_on_a_busy_cluster(browser: Any, tmp_path: Path) -> None:
    with ExitStack() as stack:
        board = start_dashboard(stack, tmp_path, browser, workers=4, lock_timeouts=(1.0, 2.0, 3.0))
        history(board)
        jobs = now_busy(board)
        page = board.open("jobs?status=queued,waiting,running,canceling", token=WRITE)
        # the migration escalates while it waits for node n1; the backlog is still there
        migration = page.locator(f"table.jobs tr[data-job='{jobs['migrate web1']}']")
        expect(migration.locator(".prio-up")).to_have_text("↑1")
        expect(page.locator("table.jobs .status-queued").first).to_be_visible()
        expect(page.locator("table.jobs .status-running").nth(2)).to_be_visible()
        shoot(page, "jobs")

        page.goto(f"{board.url}/#/locks")
        lock = page.locator("tr[data-lock='node:n1'] .waiters li")
        expect(lock).to_have_count(3)
        expect(page.locator("svg.graph a.node")).to_have_count(6)
        shoot(page, "locks")

        page.goto(f"{board.url}/#/jobs/{jobs['evacuate']}")
        expect(page.get_by_role("log").locator("li")).not_to_have_count(1)
        page.locator("details").first.evaluate("d => d.open = true")
        shoot(page, "job")

        page.goto(f"{board.url}/#/jobs/{jobs['migrate web1']}")
        expect(page.locator(".explain")).to_contain_text("waits for lock node:n1")
        shoot(page, "job-waiting")

        page.goto(f"{board.url}/#/workers")
        expect(page.locator("table.workers tbody tr:not(.idle)").nth(2)).to_be_visible()
        expect(page.locator(".chart canvas").first).to_be_attached()
        shoot(page, "workers")

        page.goto(f"{board.url}/#/timeline")
        expect(page.locator("svg.gantt a.bar-running").nth(2)).to_be_attached()
        expect(page.locator("svg.gantt a.bar-success")).not_to_have_count(0)
        shoot(page, "timeline")

        page.goto(f"{board.url}/#/submit?op=instance.migrate")
        expect(page.locator("fieldset input")).to_have_count(4)
        shoot(page, "submit")

        login = board.open()
        expect(login.get_by_label("API token")).to_be_focused()
        shoot(login, "login")
        assert not board.problems, board.problems
