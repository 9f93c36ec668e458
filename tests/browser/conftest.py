"""Fixtures of the browser tests: a real daemon, and pages in the system's headless Chromium.

Playwright for Python drives Chromium from the Debian package (``/usr/bin/chromium``,
or ``JOBPLANE_CHROMIUM``); ``playwright install`` is never needed. Without Chromium
or Playwright the tests skip, except under ``CI=true``, where that is a failure.

``JOBPLANE_SCREENSHOTS=docs/images`` makes the tests save their screenshots there
(``dashboard-<page>.png``), for the documentation; normally nothing is written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from jobplane.http import TokenStore
from jobplane.queue import JobQueue

from .cluster import Cluster

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = os.environ.get("JOBPLANE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WRITE = "write-token-" + "w" * 20
READ = "read-token-" + "r" * 20
TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1440, "height": 900}
SCREENSHOTS = os.environ.get("JOBPLANE_SCREENSHOTS")
# Answers the page expects while it signs in or probes; anything else in the console fails a test.
EXPECTED_CONSOLE = re.compile(
    r"Failed to load resource: the server responded with a status of 40[134]"
)


expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API runs an
    asyncio loop in this thread while it lives, and later tests call asyncio.run()."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright is not installed (pip install -e '.[test]')"
    if problem is None and not os.access(CHROMIUM, os.X_OK):
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if problem is not None:
        if IN_CI:
            pytest.fail(f"the browser tests must run in CI: {problem}")
        pytest.skip(problem)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Dashboard:
    """A running daemon, an API client with the write token, and pages on it."""

    url: str
    queue: JobQueue
    cluster: Cluster
    api: httpx.Client
    browser: Any
    problems: list[str] = field(default_factory=list)
    _contexts: list[Any] = field(default_factory=list)

    def open(self, path: str = "", *, token: str | None = None) -> Any:
        """A new browser session (own sessionStorage) on ``/#/path``, signed in with ``token``."""
        context = self.browser.new_context(viewport=VIEWPORT)
        self._contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", self._console)
        page.on("response", self._response)
        page.goto(f"{self.url}/#/{path}")
        if token is not None:
            page.get_by_label("API token").fill(token)
            page.get_by_role("button", name="Sign in").click()
        page.locator("main").wait_for()
        return page

    def _response(self, response: Any) -> None:
        if response.status >= 400 and "/v1/" not in response.url:
            self.problems.append(f"{response.status} for {response.url}")

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning") and not EXPECTED_CONSOLE.search(message.text):
            self.problems.append(f"console {message.type}: {message.text}")

    def submit(self, *ops: dict[str, Any], priority: int | str = 0, **more: Any) -> int:
        answer = self.api.post("/v1/jobs", json={"ops": list(ops), "priority": priority, **more})
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])

    def wait_final(self, job_id: int) -> dict[str, Any]:
        """Block on the API's long poll until the job is final."""
        job = self.api.get(f"/v1/jobs/{job_id}").json()
        for _ in range(60):
            if job["status"] in ("success", "error", "canceled"):
                return dict(job)
            serial = max((line["serial"] for o in job["ops"] for line in o["log"]), default=0)
            params = {"timeout": 5, "status": job["status"], "since_serial": serial}
            answer = self.api.get(f"/v1/jobs/{job_id}/wait", params=params).json()
            job = answer.get("job") or job
        raise AssertionError(f"job {job_id} did not finish")

    def close(self) -> None:
        for context in self._contexts:
            context.close()


def shoot(page: Any, name: str) -> None:
    """Save a screenshot for the docs when JOBPLANE_SCREENSHOTS names a folder."""
    if SCREENSHOTS:
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"dashboard-{name}.png"))


def start_dashboard(
    stack: ExitStack,
    tmp_path: Path,
    browser: Any,
    *,
    tokens: bool = True,
    workers: int = 2,
    lock_timeouts: tuple[float, float, float] = (10.0, 10.0, 30.0),
) -> Dashboard:
    """A daemon on ``tmp_path``; by default no lock wait times out while a test looks."""
    from integration.http_server import running_daemon

    cluster = Cluster()
    store = None
    if tokens:
        path = tmp_path / "tokens"
        path.write_text(f"{WRITE} write\n{READ} read\n")
        store = TokenStore.from_file(path)
    url, queue = stack.enter_context(
        running_daemon(
            tmp_path,
            tokens=store,
            registry=cluster.registry,
            workers=workers,
            lock_timeouts=lock_timeouts,
        )
    )
    stack.callback(cluster.release_all)  # before the daemon stops: its ops must end
    headers = {"Authorization": f"Bearer {WRITE}"} if tokens else {}
    api = stack.enter_context(httpx.Client(base_url=url, headers=headers, timeout=20))
    dashboard = Dashboard(url, queue, cluster, api, browser)
    stack.callback(dashboard.close)
    return dashboard


@pytest.fixture
def dashboard(browser: Any, tmp_path: Path) -> Iterator[Dashboard]:
    """A daemon with a tokens file (read and write tokens) and two workers."""
    with ExitStack() as stack:
        board = start_dashboard(stack, tmp_path, browser)
        yield board
        assert not board.problems, board.problems


@pytest.fixture
def loopback_dashboard(browser: Any, tmp_path: Path) -> Iterator[Dashboard]:
    """A daemon without a tokens file: loopback clients need no token."""
    with ExitStack() as stack:
        board = start_dashboard(stack, tmp_path, browser, tokens=False)
        yield board
        assert not board.problems, board.problems
