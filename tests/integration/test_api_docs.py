"""The API document's pages (/docs, /redoc) load nothing from another host.

Every script and stylesheet they name is a path on the daemon, served from the
package (``dashboard/static/vendor/``) with the right content type, and without a
token, so a browser that shows the page also gets its code. Headless Chromium
renders them with every other host blocked: ``tests/browser/test_api_docs.py``.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from jobplane.http import TokenStore

from .http_server import running_daemon

READ = "r" * 20
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


class _Assets(HTMLParser):
    """The URLs of a page's scripts, stylesheets and icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and named.get("src"):
            self.urls.append(str(named["src"]))
        if tag == "link" and named.get("href"):
            self.urls.append(str(named["href"]))


def assets(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_asset_of_the_docs_pages_is_local_and_served_without_a_token(
    tmp_path: Path, page: str
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{READ} read\n")
    with (
        running_daemon(tmp_path, tokens=TokenStore.from_file(tokens)) as (url, _),
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {READ}"}) as reader,
        httpx.Client(base_url=url) as anonymous,
    ):
        answer = reader.get(page)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/html")
        urls = assets(answer.text)
        assert any(u.endswith(".js") for u in urls), urls
        for asset in urls:
            parts = urlsplit(asset)
            assert not parts.scheme and not parts.netloc, f"{page} loads {asset}"
            assert asset.startswith("/static/"), asset
            served = anonymous.get(asset)
            assert served.status_code == 200, asset
            suffix = Path(parts.path).suffix
            assert served.headers["content-type"].split(";")[0] == TYPES[suffix], asset
            assert len(served.content) > 0, asset


def test_the_docs_pages_forbid_images_and_fetches_from_other_hosts(tmp_path: Path) -> None:
    """The bundles themselves may name other hosts (ReDoc's logo): the page's policy
    keeps the browser from asking them."""
    with running_daemon(tmp_path) as (url, _), httpx.Client(base_url=url) as api:
        for page in ("/docs", "/redoc"):
            policy = api.get(page).headers["content-security-policy"]
            directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
            assert directives["img-src"] == "'self' data:", policy
            assert directives["connect-src"] == "'self'", policy
            assert directives["font-src"] == "'self' data:", policy
