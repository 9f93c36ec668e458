"""The dashboard in real headless Chromium against a real daemon.

Each test drives jobs whose long steps are held open by gates (see
``cluster.py``), so what the page must show is known; waits are Playwright's
``expect`` with a timeout (the page and the daemon are other processes and
threads). A test fails on any console error or uncaught page error.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .cluster import op
from .conftest import READ, WRITE, Dashboard

pytestmark = pytest.mark.browser


def row(page: Any, job_id: int) -> Any:
    return page.locator(f"table.jobs tr[data-job='{job_id}']")


def mark_loaded(page: Any) -> None:
    """Tag the document: if the page reloads, the tag is gone."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"


def test_jobs_table_shows_jobs_and_updates_as_they_finish(dashboard: Dashboard) -> None:
    cluster = dashboard.cluster
    cluster.hold("start web1")
    cluster.hold("start web2")
    first = dashboard.submit(op("instance.start", instance="web1", node="n1"), priority="high")
    second = dashboard.submit(op("instance.start", instance="web2", node="n2"))
    cluster.wait_started("start web1")
    cluster.wait_started("start web2")

    page = dashboard.open("jobs", token=WRITE)
    mark_loaded(page)
    expect(row(page, first).locator(".status")).to_have_text("running")
    expect(row(page, second).locator(".status")).to_have_text("running")
    expect(row(page, first)).to_contain_text("instance.start")
    expect(row(page, first).locator(".prio")).to_contain_text("-10 high")

    third = dashboard.submit(op("instance.stop", instance="web3", node="n3", seconds=0))
    expect(row(page, third).locator(".status")).to_have_text("queued")
    ids = page.locator("table.jobs tbody th").all_inner_texts()
    assert ids[:3] == [str(third), str(second), str(first)], "newest first"

    cluster.release("start web1")
    expect(row(page, first).locator(".status")).to_have_text("success")
    expect(row(page, third).locator(".status")).to_have_text("success")
    expect(row(page, second).locator(".status")).to_have_text("running")
    cluster.release("start web2")
    expect(row(page, second).locator(".status")).to_have_text("success")
    assert_not_reloaded(page)


def test_job_detail_streams_the_log_live(dashboard: Dashboard) -> None:
    dashboard.cluster.hold("evacuate n1")
    job = dashboard.submit(op("node.evacuate", node="n1"))
    dashboard.cluster.wait_started("evacuate n1")

    page = dashboard.open(f"jobs/{job}", token=WRITE)
    mark_loaded(page)
    log = page.get_by_role("log")
    expect(log).to_contain_text("evacuating n1")
    expect(page.locator(".live-dot")).to_be_visible()
    shown = log.locator("li").count()
    page.wait_for_function(  # lines the op logged after the page loaded
        "n => document.querySelectorAll('[role=log] li').length >= n", arg=shown + 3
    )

    dashboard.cluster.release("evacuate n1")
    expect(page.locator(".job-head .status")).to_have_text("success")
    expect(page.locator("table.ops")).to_contain_text('"state": "empty"')
    lines = log.locator("li").count()
    assert lines == len(dashboard.api.get(f"/v1/jobs/{job}").json()["ops"][0]["log"])
    assert_not_reloaded(page)


def test_locks_page_shows_a_waiter_behind_its_holder(dashboard: Dashboard) -> None:
    dashboard.cluster.hold("evacuate n1")
    holder = dashboard.submit(op("node.evacuate", node="n1"))
    dashboard.cluster.wait_started("evacuate n1")
    waiter = dashboard.submit(
        op("instance.migrate", instance="web1", source="n1", target="n2"), priority="high"
    )

    page = dashboard.open("locks", token=READ)
    lock = page.locator("tr[data-lock='node:n1']")
    expect(lock.locator(".holders")).to_contain_text(f"job {holder}")
    expect(lock.locator(".mode")).to_have_text("exclusive")
    waiting = lock.locator(".waiters li")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text(f"job {waiter}")
    expect(waiting.locator(".prio")).to_contain_text("-10 high")
    expect(waiting).to_contain_text("exclusive")
    expect(page.locator("svg.graph desc")).to_have_text(
        f"job {waiter} waits for job {holder} (node:n1)"
    )
    expect(page.locator("ul.waits")).to_contain_text(f"job {waiter} waits for job {holder}")

    page.locator("svg.graph a.node", has_text=f"job {waiter}").click()
    expect(page).to_have_url(f"{dashboard.url}/#/jobs/{waiter}")
    expect(page.locator(".explain")).to_contain_text("waits for lock node:n1")
    expect(page.locator(".explain")).to_contain_text(f"job {holder}")


def test_cancel_change_priority_and_archive_from_the_page_with_a_write_token(
    dashboard: Dashboard,
) -> None:
    dashboard.cluster.hold("start web1")
    dashboard.cluster.hold("start web2")
    for name in ("web1", "web2"):  # both workers busy: the next job stays queued
        dashboard.submit(op("instance.start", instance=name, node="n1"))
    job = dashboard.submit(op("instance.stop", instance="web3", node="n2"), priority="low")

    page = dashboard.open(f"jobs/{job}", token=WRITE)
    expect(page.locator(".job-head .status")).to_have_text("queued")
    expect(page.locator(".job-head .prio")).to_contain_text("10 low")
    page.get_by_label("Priority", exact=True).select_option("-10")
    page.get_by_role("button", name="Change priority").click()
    expect(page.locator(".job-head .prio")).to_contain_text("-10 high")
    assert dashboard.api.get(f"/v1/jobs/{job}").json()["priority"] == -10

    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator(".job-head .status")).to_have_text("canceled")
    assert dashboard.api.get(f"/v1/jobs/{job}").json()["status"] == "canceled"
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    page.get_by_role("button", name="Archive").click()
    expect(page.locator(".job-head .pill")).to_have_text("archived")
    assert dashboard.api.get(f"/v1/jobs/{job}").json()["archived"] is True


def test_a_read_token_sees_no_actions_and_the_api_refuses_them(dashboard: Dashboard) -> None:
    dashboard.cluster.hold("start web1")
    dashboard.cluster.hold("start web2")
    for name in ("web1", "web2"):
        dashboard.submit(op("instance.start", instance=name, node="n1"))
    job = dashboard.submit(op("instance.stop", instance="web3", node="n2"))

    page = dashboard.open(f"jobs/{job}", token=READ)
    expect(page.locator(".job-head .status")).to_have_text("queued")
    expect(page.locator(".role-read")).to_have_text("read only")
    for name in ("Cancel job", "Change priority", "Archive"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("switch")).to_have_count(0)  # drain
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(
        ["Jobs", "Locks", "Workers", "Timeline"]
    )
    refused = page.evaluate(
        """async (job) => {
            const token = sessionStorage.getItem("jobplane.token");
            const answer = await fetch(`v1/jobs/${job}/cancel`, {
                method: "POST", headers: {Authorization: `Bearer ${token}`}});
            return [answer.status, (await answer.json()).error.code];
        }""",
        job,
    )
    assert refused == [403, "forbidden"]
    assert dashboard.api.get(f"/v1/jobs/{job}").json()["status"] == "queued"


def test_the_token_is_asked_once_per_session_and_a_wrong_one_is_refused(
    dashboard: Dashboard,
) -> None:
    page = dashboard.open()
    page.get_by_label("API token").fill("not-a-known-token-at-all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("This token is not known to the daemon.")
    page.get_by_label("API token").fill(WRITE)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".role-write")).to_have_text("read & write")
    page.reload()  # the same tab session: no second question
    expect(page.locator(".role-write")).to_have_text("read & write")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('jobplane.token')") is None


def test_loopback_mode_needs_no_login(loopback_dashboard: Dashboard) -> None:
    job = loopback_dashboard.submit(op("node.health", node="n1", seconds=0))
    page = loopback_dashboard.open("jobs")
    expect(row(page, job).locator(".status")).to_have_text("success")
    expect(page.locator(".role-write")).to_have_text("read & write")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    expect(page.get_by_label("API token")).to_have_count(0)


def test_submit_form_is_built_from_the_op_schema(dashboard: Dashboard) -> None:
    page = dashboard.open("submit", token=WRITE)
    page.get_by_label("Op", exact=True).select_option("instance.migrate")
    form = page.locator("fieldset")
    expect(form.get_by_label("Instance (required)")).to_be_visible()
    expect(form.get_by_label("Seconds")).to_have_attribute("placeholder", "0.4")
    page.get_by_role("button", name="Submit job").click()
    expect(page.get_by_role("alert")).to_contain_text("Instance is required")

    form.get_by_label("Instance (required)").fill("web7")
    form.get_by_label("Source (required)").fill("n1")
    form.get_by_label("Target (required)").fill("n2")
    form.get_by_label("Seconds").fill("0")
    page.get_by_label("Priority").select_option("-10")
    page.get_by_role("button", name="Submit job").click()
    expect(page).to_have_url(f"{dashboard.url}/#/jobs/1")
    expect(page.locator(".job-head .status")).to_have_text("success")
    job = dashboard.api.get("/v1/jobs/1").json()
    assert job["ops"][0]["op"] == "instance.migrate"
    assert job["ops"][0]["params"] == {
        "instance": "web7",
        "source": "n1",
        "target": "n2",
        "seconds": 0,
    }
    assert job["ops"][0]["priority"] == -10


def test_drain_switch_refuses_and_accepts_submissions(dashboard: Dashboard) -> None:
    page = dashboard.open("jobs", token=WRITE)
    drain = page.get_by_role("switch", name="Drain")
    expect(drain).to_have_attribute("aria-checked", "false")
    drain.click()
    expect(drain).to_have_attribute("aria-checked", "true")
    assert dashboard.api.get("/v1/status").json()["drained"] is True
    drain.click()
    expect(drain).to_have_attribute("aria-checked", "false")
    assert dashboard.api.get("/v1/status").json()["drained"] is False


def test_jobs_pages_newest_first_and_filters(dashboard: Dashboard) -> None:
    dashboard.queue.pool.pause()  # everything stays queued
    specs = []
    for n in range(60):
        name, priority = ("instance.migrate", "high") if n % 10 == 0 else ("node.health", "low")
        params = (
            {"instance": f"web{n}", "source": "n1", "target": "n2"}
            if name == "instance.migrate"
            else {"node": f"n{n}"}
        )
        specs.append({"ops": [op(name, **params)], "priority": priority})
    ids = dashboard.api.post("/v1/jobs/batch", json={"jobs": specs}).json()["ids"]

    page = dashboard.open("jobs?size=25", token=READ)
    body = page.locator("table.jobs tbody th")

    def shown() -> list[int]:
        return [int(text) for text in body.all_inner_texts()]

    expect(body.first).to_have_text(str(ids[-1]))
    assert shown() == ids[::-1][:25]
    page.get_by_role("button", name="Older →").click()
    expect(body.first).to_have_text(str(ids[-26]))
    assert shown() == ids[::-1][25:50]
    page.get_by_role("button", name="Older →").click()
    expect(body).to_have_count(10)
    expect(page.get_by_role("button", name="Older →")).to_be_disabled()
    page.get_by_role("button", name="← Newer").click()
    expect(body.first).to_have_text(str(ids[-26]))
    page.get_by_role("button", name="Newest").click()
    expect(body.first).to_have_text(str(ids[-1]))

    page.get_by_label("Priority").select_option("-10..-1")
    expect(body).to_have_count(6)
    assert shown() == [ids[n] for n in range(50, -1, -10)]
    page.get_by_label("Priority").select_option("")
    page.get_by_label("Search").fill("MIGRATE")
    expect(body).to_have_count(6)
    page.get_by_label("Search").fill(str(ids[7]))
    expect(body).to_have_count(1)
    expect(body.first).to_have_text(str(ids[7]))
    assert f"q={ids[7]}" in page.url  # the filters are in the address, for links
    page.get_by_label("Search").fill("999999")
    expect(page.locator(".empty")).to_have_text("There is no job 999999.")


def test_workers_and_timeline_show_who_runs_what(dashboard: Dashboard) -> None:
    done = dashboard.submit(op("node.health", node="n1", seconds=0), priority="high")
    dashboard.wait_final(done)
    dashboard.cluster.hold("start web1")
    running = dashboard.submit(op("instance.start", instance="web1", node="n1"), priority="low")
    dashboard.cluster.wait_started("start web1")

    page = dashboard.open("workers", token=READ)
    busy = page.locator("table.workers tbody tr:not(.idle)")
    expect(busy).to_have_count(1)
    expect(busy).to_contain_text(f"job {running}")
    expect(busy).to_contain_text("instance.start")
    expect(busy.locator(".prio")).to_contain_text("10 low")
    expect(page.locator("table.workers tbody tr")).to_have_count(2)
    expect(page.locator(".chart canvas").first).to_be_attached()

    page.get_by_role("link", name="Timeline").click()
    expect(page.locator(f"svg.gantt a.bar-success[data-job='{done}']")).to_have_count(1)
    expect(page.locator(f"svg.gantt a.bar-running[data-job='{running}']")).to_have_count(1)
    title = page.locator(f"svg.gantt a.bar-success[data-job='{done}'] title").text_content()
    assert title is not None and "node.health: priority -10 high, success" in title


def test_every_control_has_a_label_and_keyboard_reaches_the_content(
    dashboard: Dashboard,
) -> None:
    job = dashboard.submit(op("node.health", node="n1", seconds=0))
    page = dashboard.open("jobs", token=WRITE)
    for path in ("jobs", f"jobs/{job}", "locks", "workers", "timeline", "submit"):
        page.goto(f"{dashboard.url}/#/{path}")
        page.locator("main#main h1").wait_for()
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll("input, select, textarea")]
                .filter((el) => !el.labels?.length && !el.getAttribute("aria-label"))
                .map((el) => el.outerHTML)"""
        )
        assert unlabelled == [], (path, unlabelled)
    page.reload()
    page.locator("main#main h1").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
