"""The fast paths read a request's bearer token as the routes' ``HTTPBearer`` does."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from jobplane.http import auth


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "bearer abc",
        "BEARER abc",
        "Bearer  abc ",
        "Bearer",
        "Bearer ",
        "Basic abc",
        " Bearer abc",
        "Bearer a b",
        "Bearer\tabc",
        "Bearer abc\xa0",
        "Bearerabc",
    ],
)
def test_bearer_token_reads_the_header_as_fastapis_httpbearer(header: str | None) -> None:
    headers = [] if header is None else [(b"authorization", header.encode("latin-1"))]
    request = Request({"type": "http", "headers": headers})
    credentials = asyncio.run(auth.bearer(request))
    expected = None if credentials is None else credentials.credentials
    assert auth.bearer_token(header) == expected
