"""Console sign-in sessions and CSRF tokens, kept in a signed cookie.

A session cookie is ``<payload>.<signature>``, both base64url: the payload is the
signed-in token's name, a digest of that token's value, a random nonce, when it was
issued and when it expires (Unix seconds); the signature is HMAC-SHA256 over a version
tag and the payload, with a key generated once and kept in the store's settings. No
session is stored: the role is looked up in the running config on every request, so a
reload that revokes or rotates a token (its digest no longer matches) ends its
sessions at once. Signing out records only the time, per token name: every session of
that token issued until then is over, so a copy of the cookie dies with it. The record
of a token no longer configured goes once every session it ended has expired.

A form's CSRF token is an HMAC of the session's nonce (or, before sign-in, of the
nonce in a short-lived login cookie): a page from another site cannot read it, so
it cannot make a browser post a form the hub accepts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Collection

import msgspec

from hub.config import ApiToken
from hub.store import Store, Tx

KEY_SETTING = "console_session_key"
SIGNED_OUT_SETTING = "signed_out:"
SESSION_TTL = 12 * 3600
_SESSION = b"hub-session-v1:"
_CSRF = b"hub-csrf-v1:"
_TOKEN = b"hub-token-v1:"


class Session(msgspec.Struct, frozen=True, array_like=True):
    """Who signed in (a token's name), with what (a digest of its value), since and
    until when."""

    name: str
    token_digest: str
    nonce: str
    issued: float
    expires: int


def stored_key(tx: Tx) -> bytes:
    """The signing key: generated on first start and kept, so sessions survive restarts."""
    key = tx.get_setting(KEY_SETTING)
    if key is None:
        key = secrets.token_urlsafe(32)
        tx.put_setting(KEY_SETTING, key)
    return key.encode()


def start(key: bytes, token: ApiToken, now: float, ttl: float) -> Session:
    """A new session for ``token`` with a fresh nonce (never reuse the pre-sign-in one)."""
    return Session(token.name, _digest(key, token.token), new_nonce(), now, int(now + ttl))


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def encode(key: bytes, session: Session) -> str:
    payload = msgspec.json.encode(session)
    return f"{_b64(payload)}.{_b64(_sign(key, _SESSION, payload))}"


def decode(key: bytes, cookie: str, now: float) -> Session | None:
    """The session a cookie holds, or None when it is malformed, forged or expired."""
    try:
        payload, signature = (_unb64(part) for part in cookie.split("."))
    except (ValueError, binascii.Error):
        return None
    if not hmac.compare_digest(signature, _sign(key, _SESSION, payload)):
        return None
    try:
        session = msgspec.json.decode(payload, type=Session)
    except msgspec.DecodeError:
        return None
    return session if now < session.expires else None


class SignOuts:
    """When each token last signed out of the console, kept in the store's settings (so
    a sign-out survives a restart) and in memory (so checking a request costs no query)."""

    def __init__(self, times: dict[str, float] | None = None) -> None:
        self._times = dict(times or {})

    @classmethod
    def load(cls, tx: Tx, configured: Collection[str], now: float) -> SignOuts:
        """The stored sign-outs, once the lapsed ones of removed tokens are deleted."""
        _delete_lapsed(tx, configured, now)
        stored = tx.settings_under(SIGNED_OUT_SETTING)
        return cls({name: float(at) for name, at in stored.items()})

    def ended(self, session: Session) -> bool:
        """Whether its token signed out at or after the session was issued."""
        return session.issued <= self._times.get(session.name, float("-inf"))

    async def sign_out(self, store: Store, name: str, at: float) -> None:
        """End every session of token ``name`` issued until ``at``: stored first, so
        a sign-out that is not kept is not reported as done."""
        await store.write(lambda tx: tx.put_setting(SIGNED_OUT_SETTING + name, repr(at)))
        self._times[name] = at

    async def forget_lapsed(self, store: Store, configured: Collection[str], now: float) -> None:
        """Delete the sign-outs of tokens no longer ``configured`` that have lapsed
        (``_delete_lapsed``), as a reload removing tokens leaves them behind."""
        lapsed = await store.write(lambda tx: _delete_lapsed(tx, configured, now), background=True)
        for name, at in lapsed.items():
            if self._times.get(name) == at:  # not signed out again meanwhile
                del self._times[name]


def _delete_lapsed(tx: Tx, configured: Collection[str], now: float) -> dict[str, float]:
    """Delete the sign-out of each token not ``configured`` once every session it ended
    has expired; return those deleted. Not before: a token put back with the same value
    would bring a copy of a signed-out cookie back to life."""
    lapsed = {
        name: float(at)
        for name, at in tx.settings_under(SIGNED_OUT_SETTING).items()
        if name not in configured and float(at) + SESSION_TTL <= now
    }
    for name in lapsed:
        tx.delete_setting(SIGNED_OUT_SETTING + name)
    return lapsed


def token_of(key: bytes, session: Session, tokens: list[ApiToken]) -> ApiToken | None:
    """The configured token a session was made with, if it still exists unchanged."""
    for token in tokens:
        if token.name == session.name and hmac.compare_digest(
            session.token_digest, _digest(key, token.token)
        ):
            return token
    return None


def csrf_token(key: bytes, nonce: str) -> str:
    """The hidden form field that proves a post comes from a page the hub served."""
    return _b64(_sign(key, _CSRF, nonce.encode()))


def csrf_ok(key: bytes, nonce: str, given: str) -> bool:
    return bool(nonce) and hmac.compare_digest(csrf_token(key, nonce).encode(), given.encode())


def _digest(key: bytes, token_value: str) -> str:
    return _b64(_sign(key, _TOKEN, token_value.encode())[:12])


def _sign(key: bytes, domain: bytes, data: bytes) -> bytes:
    return hmac.new(key, domain + data, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
