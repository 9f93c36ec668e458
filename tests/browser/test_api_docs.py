"""/docs and /redoc in headless Chromium with every host but the daemon blocked.

The pages must render the API's operations from the package's own files: a request
to any other host is aborted and recorded, and the test fails if there was one. A
request that the page's Content-Security-Policy refuses (ReDoc's logo from its CDN)
never reaches the network, nor the route: the test checks that every attempt to
reach another host was refused that way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from .conftest import TIMEOUT_MS, VIEWPORT, Dashboard, start_dashboard

pytestmark = pytest.mark.browser


@pytest.fixture
def daemon(browser: Any, tmp_path: Path) -> Iterator[Dashboard]:
    """A daemon without a tokens file: the browser on loopback needs no token."""
    with ExitStack() as stack:
        yield start_dashboard(stack, tmp_path, browser, tokens=False)


def offline_page(daemon: Dashboard, blocked: list[str], problems: list[str]) -> Any:
    """A page on which every request to a host other than the daemon's is aborted."""
    context = daemon.browser.new_context(viewport=VIEWPORT)
    daemon._contexts.append(context)
    ours = urlsplit(daemon.url).netloc

    def route(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).netloc == ours:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    elsewhere: set[str] = set()
    refused: set[str] = set()
    page.on(
        "request",
        lambda r: elsewhere.add(r.url) if urlsplit(r.url).netloc not in ("", ours) else None,
    )
    page.on("requestfailed", lambda r: refused.add(r.url) if r.failure == "csp" else None)
    page.on(
        "close",
        lambda _: problems.extend(f"not refused by the policy: {u}" for u in elsewhere - refused),
    )
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} for {r.url}") if r.status >= 400 else None,
    )
    return page


def operation_count(daemon: Dashboard) -> int:
    paths = daemon.api.get("/openapi.json").json()["paths"]
    return sum(len(methods) for methods in paths.values())


def test_swagger_ui_lists_every_operation_with_nothing_from_another_host(
    daemon: Dashboard,
) -> None:
    blocked: list[str] = []
    problems: list[str] = []
    page = offline_page(daemon, blocked, problems)
    page.goto(f"{daemon.url}/docs")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    expect(operations).to_have_count(operation_count(daemon))
    expect(
        page.locator(".opblock-summary-path", has_text="/v1/jobs/{job_id}").first
    ).to_be_visible()
    page.wait_for_load_state("networkidle")
    page.close()
    assert blocked == [], blocked
    assert problems == [], problems


def test_redoc_lists_every_operation_with_nothing_from_another_host(daemon: Dashboard) -> None:
    blocked: list[str] = []
    problems: list[str] = []
    page = offline_page(daemon, blocked, problems)
    page.goto(f"{daemon.url}/redoc")
    operations = page.locator("[data-section-id^='operation/']")
    expect(operations.first).to_be_attached()
    expect(operations).to_have_count(operation_count(daemon))
    page.wait_for_load_state("networkidle")
    page.close()
    assert blocked == [], blocked
    assert problems == [], problems
