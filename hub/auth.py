"""How a sender proves who it is: one scheme per ``[sources.auth] type``.

``authenticate`` raises AuthError whose ``reason`` is one of its scheme's
SCHEME_REASONS (a metric label, so the set is small and fixed), whose detail tells
the sender what to fix and whose ``challenge`` (``WWW-Authenticate``) names the
scheme, neither ever containing a secret. Every secret is compared in constant time,
and every configured one is accepted, so a secret is rotated by adding the new one,
moving the sender over, then removing the old one.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from hub.errors import AuthError

if TYPE_CHECKING:
    from hub.config import Auth

Scheme = Callable[["Auth", Mapping[str, str], bytes, datetime], "str | None"]

REALM = "hub"

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_WHSEC = "whsec_"
_FAMILIES = ("webhook", "svix")  # Standard Webhooks' header prefix, and Svix's
_NOT_BASIC = "Basic credentials must be base64 of user:password"

# What each type reads; the first key lists what it needs at least one of.
_USES: dict[str, tuple[str, ...]] = {
    "none": (),
    "bearer": ("tokens",),
    "basic": ("credentials",),
    "hmac": (
        "secrets",
        "header",
        "algorithm",
        "encoding",
        "prefix",
        "timestamp_header",
        "signed_content",
        "tolerance",
    ),
    "standard-webhooks": ("secrets", "tolerance"),
}


def authenticate(auth: Auth, headers: Mapping[str, str], body: bytes, now: datetime) -> str | None:
    """Verify a request; return the sender's delivery id when there is one.

    ``headers`` have lower-case names. The id comes from the scheme (Standard
    Webhooks' ``webhook-id`` or Svix's ``svix-id``) or else from the configured
    ``id_header``. A refusal carries the scheme's ``challenge``: RFC 9110 requires
    one on every 401.
    """
    try:
        delivery_id = SCHEMES[auth.type](auth, headers, body, now)
    except AuthError as e:
        e.challenge = challenge(auth)
        raise
    if delivery_id is None and auth.id_header:
        return headers.get(auth.id_header.lower()) or None
    return delivery_id


def challenge(auth: Auth) -> str:
    """The ``WWW-Authenticate`` value of a refusal: how to authenticate, never a secret.

    Bearer and Basic are registered schemes. Signatures have none: their senders
    (GitHub, Stripe, Shopify, Svix) read only the status, and receivers answer 401 (as
    Shopify requires) or 400 with no challenge. hub keeps 401, since it is the sender
    that failed, not the body, and gives the challenge a 401 needs in the same
    syntax: ``HMAC-SHA256 realm="hub", header="X-Hub-Signature-256"`` (one per
    accepted header, plus the signed timestamp's header) or ``Standard-Webhooks
    realm="hub"``. Header names are no secret: the refusal's detail names them too.
    """
    if auth.type != "hmac":
        return _CHALLENGES[auth.type]
    scheme = f"HMAC-{auth.algorithm.upper()} realm={_quoted(REALM)}"
    stamp = f", timestamp={_quoted(auth.timestamp_header)}" if auth.timestamp_header else ""
    return ", ".join(f"{scheme}, header={_quoted(name)}{stamp}" for name in auth.header_names)


def _quoted(text: str) -> str:
    """An RFC 9110 quoted-string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def delivery_id_header(auth: Auth, headers: Mapping[str, str]) -> str:
    """The header ``authenticate`` took the delivery id from, for a refusal to name."""
    return _signed_family(headers) + "-id" if auth.type == "standard-webhooks" else auth.id_header


def _none(auth: Auth, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """Anyone may send: only for a hub that nobody untrusted can reach."""


def _bearer(auth: Auth, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    token = _authorization(headers, "Bearer")
    if not matches_any(token.encode(), (t.encode() for t in auth.tokens)):
        raise AuthError("bad_token", "the bearer token is not valid")


def _basic(auth: Auth, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    try:
        decoded = base64.b64decode(_authorization(headers, "Basic"), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as e:
        raise AuthError("malformed_header", _NOT_BASIC) from e
    username, colon, password = decoded.partition(":")
    if not colon:
        raise AuthError("malformed_header", _NOT_BASIC)
    matches = [
        hmac.compare_digest(username.encode(), c.username.encode())
        & hmac.compare_digest(password.encode(), c.password.encode())
        for c in auth.credentials
    ]
    if not any(matches):
        raise AuthError("bad_credentials", "the user name or password is not valid")


def _hmac(auth: Auth, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """GitHub, Slack, Shopify, Grafana and the like: an HMAC of the (timestamped) body."""
    name, value = _first_header(headers, auth.header_names)
    if not value.startswith(auth.prefix):
        raise AuthError("malformed_header", f"header {name} must start with {auth.prefix!r}")
    given = _decode_digest(value.removeprefix(auth.prefix), auth.encoding, name)
    timestamp = ""
    if auth.timestamp_header:
        timestamp = _fresh_timestamp(headers, auth.timestamp_header, now, auth.tolerance)
    content = auth.signed_content.replace("{timestamp}", timestamp).encode()
    content = content.replace(b"{body}", body)
    digests = (hmac.new(s.encode(), content, auth.algorithm).digest() for s in auth.secrets)
    if not matches_any(given, digests):
        raise AuthError("signature_mismatch", f"the signature in {name} does not match the body")


def _standard_webhooks(auth: Auth, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
    """standardwebhooks.com: ``v1,<base64>`` signatures of ``{id}.{timestamp}.{body}``,
    in ``webhook-*`` headers or in Svix's ``svix-*`` ones, which sign the same way."""
    family = _signed_family(headers)
    delivery_id = _header(headers, f"{family}-id", f"{_FAMILIES[0]}-id or {_FAMILIES[1]}-id")
    timestamp = _fresh_timestamp(headers, f"{family}-timestamp", now, auth.tolerance)
    signature_header = f"{family}-signature"
    given = _v1_signatures(_header(headers, signature_header), signature_header)
    content = f"{delivery_id}.{timestamp}.".encode() + body
    expected = [hmac.new(secret_key(s), content, "sha256").digest() for s in auth.secrets]
    if not any(matches_any(signature, expected) for signature in given):
        raise AuthError(
            "signature_mismatch", f"no signature in {signature_header} matches the body"
        )
    return delivery_id


def _signed_family(headers: Mapping[str, str]) -> str:
    """Which Standard Webhooks headers a request carries: ``webhook-*``, else Svix's
    ``svix-*`` when it has a ``svix-id`` (never a mix: each family is signed whole)."""
    standard, svix = _FAMILIES
    if headers.get(f"{standard}-id", "").strip() or not headers.get(f"{svix}-id", "").strip():
        return standard
    return svix


SCHEMES: dict[str, Scheme] = {
    "none": _none,
    "bearer": _bearer,
    "basic": _basic,
    "hmac": _hmac,
    "standard-webhooks": _standard_webhooks,
}

# The reasons each scheme above refuses with: the hub_auth_failures_total series a
# source of that type has. Bearer and Basic read Authorization (``_authorization``);
# the signatures read their headers, and a signed timestamp (``_fresh_timestamp``).
SCHEME_REASONS: dict[str, tuple[str, ...]] = {
    "none": (),
    "bearer": ("missing_header", "malformed_header", "bad_token"),
    "basic": ("missing_header", "malformed_header", "bad_credentials"),
    "hmac": (
        "missing_header",
        "malformed_header",
        "timestamp_outside_tolerance",
        "signature_mismatch",
    ),
    "standard-webhooks": (
        "missing_header",
        "malformed_header",
        "timestamp_outside_tolerance",
        "signature_mismatch",
    ),
}
REASONS = tuple(dict.fromkeys(reason for known in SCHEME_REASONS.values() for reason in known))


def refusals(auth: Auth) -> tuple[str, ...]:
    """The reasons a source with this auth can be refused for: its scheme's, less a
    stale timestamp when an ``hmac`` source signs none (no ``timestamp_header``)."""
    reasons = SCHEME_REASONS[auth.type]
    if auth.type == "hmac" and not auth.timestamp_header:
        return tuple(r for r in reasons if r != "timestamp_outside_tolerance")
    return reasons


_CHALLENGES = {
    "none": "",  # never refuses
    "bearer": f'Bearer realm="{REALM}"',
    "basic": f'Basic realm="{REALM}", charset="UTF-8"',
    "standard-webhooks": f'Standard-Webhooks realm="{REALM}"',
}


def secret_key(secret: str) -> bytes:
    """A Standard Webhooks key: ``whsec_`` + base64 as issued, or else the text itself."""
    if secret.startswith(_WHSEC):
        return base64.b64decode(secret.removeprefix(_WHSEC), validate=True)
    return secret.encode()


def problems(auth: Auth, where: str) -> list[str]:
    """Config faults of one ``auth`` table, each naming ``where`` and the key."""
    unused = [n for n in _configured(auth) if n not in (*_USES[auth.type], "id_header")]
    found = [f"{where}.{name}: not used by auth type {auth.type!r}" for name in unused]
    for name in _USES[auth.type][:1]:
        if not getattr(auth, name):
            found.append(f"{where}.{name}: {auth.type} auth needs at least one {name[:-1]}")
    found += [f"{where}.tokens[{i}]: empty token" for i, t in enumerate(auth.tokens) if not t]
    found += [f"{where}.secrets[{i}]: empty secret" for i, s in enumerate(auth.secrets) if not s]
    found += [
        f"{where}.credentials[{i}]: empty username or password"
        for i, c in enumerate(auth.credentials)
        if not (c.username and c.password)
    ]
    if auth.tolerance <= 0:
        found.append(f"{where}.tolerance: must be above zero")
    if auth.type == "hmac":
        found += _hmac_problems(auth, where)
    if auth.type == "standard-webhooks":
        found += _whsec_problems(auth, where)
    return found


def _configured(auth: Auth) -> list[str]:
    """The keys set to something other than their default."""
    names = []
    for field in msgspec.structs.fields(auth):
        if field.required:
            continue
        default = field.default_factory() if field.default is msgspec.NODEFAULT else field.default
        if getattr(auth, field.name) != default:
            names.append(field.name)
    return names


def _hmac_problems(auth: Auth, where: str) -> list[str]:
    found = []
    if not auth.headers:
        found.append(f"{where}.header: name the signature header (e.g. X-Hub-Signature-256)")
    placeholders = set(_PLACEHOLDER.findall(auth.signed_content))
    if "{body}" not in placeholders or placeholders - {"{body}", "{timestamp}"}:
        found.append(
            f"{where}.signed_content: expected a template of {{body}} and optionally "
            f"{{timestamp}}, got {auth.signed_content!r}"
        )
    if ("{timestamp}" in placeholders) != bool(auth.timestamp_header):
        found.append(
            f"{where}.timestamp_header: set it exactly when signed_content uses {{timestamp}}"
        )
    return found


def _whsec_problems(auth: Auth, where: str) -> list[str]:
    found = []
    for i, secret in enumerate(auth.secrets):
        try:
            secret_key(secret)
        except binascii.Error:
            found.append(f"{where}.secrets[{i}]: a whsec_ secret must be base64 after the prefix")
    return found


def _header(headers: Mapping[str, str], name: str, wanted: str = "") -> str:
    """The header's value (``headers`` have lower-case names; ``name`` is spelled as a
    refusal names it); refused as missing, naming ``wanted`` (default: ``name``)."""
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise AuthError("missing_header", f"missing header {wanted or name}")
    return value


def _first_header(headers: Mapping[str, str], names: list[str]) -> tuple[str, str]:
    """The first of several accepted header names that the request carries, spelled as
    configured (the sender's documentation spells it so), and its value."""
    for name in names:
        if value := headers.get(name.lower(), "").strip():
            return name, value
    raise AuthError("missing_header", f"missing header {' or '.join(names)}")


def _authorization(headers: Mapping[str, str], scheme: str) -> str:
    given, _, credentials = _header(headers, "authorization").partition(" ")
    if given.lower() != scheme.lower() or not credentials.strip():
        raise AuthError("malformed_header", f"expected Authorization: {scheme} <credentials>")
    return credentials.strip()


def _fresh_timestamp(headers: Mapping[str, str], name: str, now: datetime, tolerance: float) -> str:
    """The header's Unix seconds, refused when further than ``tolerance`` from now."""
    value = _header(headers, name)
    if not _UNIX_SECONDS.fullmatch(value):
        raise AuthError("malformed_header", f"header {name} must be Unix seconds")
    if abs(now.timestamp() - int(value)) > tolerance:
        raise AuthError(
            "timestamp_outside_tolerance",
            f"timestamp in {name} is outside the tolerance of {tolerance:g}s (check the clock)",
        )
    return value


def _decode_digest(text: str, encoding: str, name: str) -> bytes:
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as e:
        raise AuthError("malformed_header", f"header {name} is not {encoding}") from e


def _v1_signatures(value: str, name: str) -> list[bytes]:
    """The ``v1,<base64>`` entries of header ``name``'s space-separated list; other
    versions are skipped."""
    found = []
    for entry in value.split():
        version, _, encoded = entry.partition(",")
        if version == "v1":
            try:
                found.append(base64.b64decode(encoded, validate=True))
            except binascii.Error:
                continue
    if not found:
        raise AuthError("malformed_header", f"{name} has no v1,<base64> signature")
    return found


def matches_any(given: bytes, expected: Iterable[bytes]) -> bool:
    """Constant-time comparison against every candidate (no early exit)."""
    return any([hmac.compare_digest(given, candidate) for candidate in expected])  # noqa: C419
