"""Tokens and who may do what.

A tokens file has one ``token role`` per line (roles ``read`` and ``write``;
blank lines and ``#`` comments are ignored). Only SHA-256 hashes of the
tokens are kept in memory, and they are compared in constant time.
Without a tokens file the daemon serves loopback clients only.

A request's token is read by FastAPI's ``HTTPBearer`` (``bearer``), which also
declares the scheme in the OpenAPI document; ``check`` then decides. The fast
paths (``fastpath.py``) read it with ``bearer_token``, which reads it as ``bearer``
does (a test compares the two) without a ``Request`` and a credentials object.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
from pathlib import Path
from typing import Annotated

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import AuthError, Forbidden, ValidationError

ROLES = ("read", "write")

bearer = HTTPBearer(
    scheme_name="bearerToken",
    description="A token from the daemon's tokens file (`jobplane serve --tokens FILE`), "
    "sent as `Authorization: Bearer <token>`. A `read` token may call every read endpoint, "
    "a `write` token every endpoint. Without a tokens file the daemon needs no token and "
    "serves loopback clients only.",
    auto_error=False,  # check() says what is wrong, in the API's error shape
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
"""A route parameter: the request's bearer token, None when it sends none."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenStore:
    """Token hashes and their roles."""

    def __init__(self, entries: dict[bytes, str]) -> None:
        self._entries = entries

    @classmethod
    def from_file(cls, path: str | Path) -> TokenStore:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ValidationError(f"cannot read the tokens file {path}: {exc.strerror}") from None
        entries: dict[bytes, str] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ROLES:
                raise ValidationError(
                    f"{path}, line {number}: expected 'TOKEN ROLE' with ROLE read or write"
                )
            if len(parts[0]) < 16:
                raise ValidationError(f"{path}, line {number}: a token needs 16 characters or more")
            entries[_digest(parts[0])] = parts[1]
        if not entries:
            raise ValidationError(f"the tokens file {path} holds no tokens")
        return cls(entries)

    def role_of(self, token: str) -> str | None:
        digest = _digest(token)
        role = None
        for known, known_role in self._entries.items():
            if hmac.compare_digest(known, digest):
                role = known_role
        return role


def check(
    tokens: TokenStore | None,
    credentials: HTTPAuthorizationCredentials | None,
    client: str | None,
    *,
    write: bool,
) -> None:
    """Allow the request or raise AuthError / Forbidden.

    ``credentials`` are what ``bearer`` read from the request: None when it
    sent no ``Authorization: Bearer <token>`` header.
    """
    check_token(
        tokens, None if credentials is None else credentials.credentials, client, write=write
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization`` header's value, read exactly as ``bearer`` reads it.

    For the fast paths, which have no FastAPI ``Request`` to give ``bearer``:
    ``"Bearer abc"`` (any case of ``Bearer``) -> ``"abc"``; None for no header,
    another scheme or no token.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if not scheme or not token or scheme.lower() != "bearer":
        return None
    return token


def check_token(
    tokens: TokenStore | None, token: str | None, client: str | None, *, write: bool
) -> None:
    """``check`` for a token already read (``bearer_token``); None if the request sent none."""
    if tokens is None:
        if not is_loopback(client):
            raise Forbidden("this daemon has no tokens file and serves loopback clients only")
        return
    if token is None:
        raise AuthError("a token is required: send 'Authorization: Bearer <token>'")
    role = tokens.role_of(token)
    if role is None:
        raise AuthError("unknown token")
    if write and role != "write":
        raise Forbidden("this token may only read; changing state needs a write token")


@functools.lru_cache(maxsize=1024)  # asked per request; parsing the address is not free
def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, tokens: TokenStore | None) -> None:
    """Refuse to listen beyond loopback without a tokens file."""
    if tokens is None and not is_loopback(host):
        raise ValidationError(
            f"refusing to listen on {host} without --tokens: anyone who can reach it could "
            "submit jobs. Give a tokens file, or listen on 127.0.0.1"
        )
