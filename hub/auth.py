"""Sender authentication per source: ``authenticate(auth, headers, body, now)``.

Returns the sender's delivery id when the scheme carries one, raises AuthError with
a bounded ``reason`` otherwise. Secrets are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime

from hub.config import Auth
from hub.errors import AuthError

REASONS = ("missing_header", "bad_token")


def authenticate(auth: Auth, headers: Mapping[str, str], body: bytes, now: datetime) -> str | None:
    if auth.type == "none":
        return None
    if auth.type == "bearer":
        return _bearer(auth, headers)
    raise AuthError("unsupported_scheme", f"auth type {auth.type!r} is not supported yet")


def _bearer(auth: Auth, headers: Mapping[str, str]) -> None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if not value:
        raise AuthError("missing_header", "missing header Authorization")
    if scheme.lower() != "bearer" or not any(
        hmac.compare_digest(token.encode(), known.encode()) for known in auth.tokens
    ):
        raise AuthError("bad_token", "the bearer token is not valid for this source")
