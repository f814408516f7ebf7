"""Signed, expiring one-click acknowledgement links carried in every notification.

A token is ``<payload>.<signature>``, both base64url without padding (only the
canonical spelling is read, so any changed character is refused): the payload
packs the incident id (8 bytes), the expiry in Unix seconds (4 bytes) and the
incident's episode (4 bytes: 1, then one more at each reopen), so a link sent about
one episode never acknowledges a later one; the signature is HMAC-SHA256 over a
version tag and the payload, cut to 16 bytes. 45 characters, so a link still fits
in an SMS. No state is kept: whoever holds the secret can check a token, and nobody
without it can make one.

A link sent to one person (the on-call person an escalation step pages) acknowledges
as that person, as PagerDuty's do: the link carries their name in its ``?by=`` query
parameter, and the signature covers the name too, under its own version tag (over
the payload, then the name in UTF-8), so a name changed, added or removed breaks the
signature like a changed payload. The token stays 45 characters; a link sent to a
shared channel carries no name and is signed as before.

Tokens made before episodes existed have no episode in their 12-byte payload; they
are read as for an incident's first episode, the only one hub can be sure of.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import quote

from hub.errors import Forbidden

_PAYLOAD = struct.Struct(">QII")
_PAYLOAD_WITHOUT_EPISODE = struct.Struct(">QI")
_DOMAIN = b"hub-ack-v1:"
_PERSON_DOMAIN = b"hub-ack-person-v1:"
PERSON_PARAM = "by"
_SIGNATURE_BYTES = 16
_SIZES = (_PAYLOAD.size, _PAYLOAD_WITHOUT_EPISODE.size)
_NAMED_SIZES = (_PAYLOAD.size,)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}")


class Expired(Forbidden):
    """A link hub signed, past its expiry: it names its incident, so the refusal can
    point there (a forged or malformed token reveals nothing about any incident)."""

    def __init__(self, incident_id: int) -> None:
        super().__init__("acknowledgement link expired")
        self.incident_id = incident_id


class Link(NamedTuple):
    """What a verified token acknowledges: one episode of one incident, as the person
    the link was sent to (None: a shared channel's link, which cannot say who clicks)."""

    incident_id: int
    episode: int
    person: str | None = None


def sign(
    secret: bytes, incident_id: int, episode: int, expires_at: datetime, person: str | None = None
) -> str:
    """A token acknowledging ``episode`` of ``incident_id`` until ``expires_at``
    (whole seconds), as ``person`` when the link is sent to them alone."""
    payload = _PAYLOAD.pack(incident_id, int(expires_at.timestamp()), episode)
    return f"{_encode(payload)}.{_encode(_signature(secret, payload, person))}"


def path(token: str, person: str | None = None) -> str:
    """The link's path and query: the person, if any, rides beside the token."""
    return f"/ack/{token}" + (
        f"?{PERSON_PARAM}={quote(person, safe='')}" if person is not None else ""
    )


def verify(secret: bytes, token: str, now: datetime, person: str | None = None) -> Link:
    """The incident and episode a token acknowledges, as ``person`` (the link's ``by``)
    when the signature covers that name; Forbidden says why a token is refused,
    Expired only once the signature proved hub made it."""
    payload, signature = _split(token, person)
    if not hmac.compare_digest(signature, _signature(secret, payload, person)):
        raise Forbidden("acknowledgement link has a bad signature")
    if len(payload) == _PAYLOAD_WITHOUT_EPISODE.size:
        incident_id, expires = _PAYLOAD_WITHOUT_EPISODE.unpack(payload)
        episode = 1
    else:
        incident_id, expires, episode = _PAYLOAD.unpack(payload)
    if now >= datetime.fromtimestamp(expires, UTC):
        raise Expired(incident_id)
    return Link(incident_id, episode, person)


def _split(token: str, person: str | None) -> tuple[bytes, bytes]:
    """The token's payload and signature. A named link always has the full payload:
    the signed bytes (payload, then name) must split only one way."""
    if not _TOKEN.fullmatch(token):
        raise Forbidden("acknowledgement link is malformed")
    try:
        payload, signature = (_decode(part) for part in token.split("."))
    except binascii.Error as e:
        raise Forbidden("acknowledgement link is malformed") from e
    sizes = _NAMED_SIZES if person is not None else _SIZES
    if len(payload) not in sizes or len(signature) != _SIGNATURE_BYTES:
        raise Forbidden("acknowledgement link is malformed")
    return payload, signature


def _signature(secret: bytes, payload: bytes, person: str | None) -> bytes:
    signed = _DOMAIN + payload if person is None else _PERSON_DOMAIN + payload + person.encode()
    return hmac.new(secret, signed, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    """Strict: only the one spelling ``_encode`` makes is read. The last character of
    a part holds bits no byte uses, and a lenient decoder ignores them, so a changed
    character would otherwise still verify as the same token."""
    data = base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
    if _encode(data) != text:
        raise binascii.Error("not the canonical base64url spelling")
    return data
