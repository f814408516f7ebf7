"""Signed, expiring one-click acknowledgement links carried in every notification.

A token is ``<payload>.<signature>``, both base64url without padding: the payload
packs the incident id (8 bytes), the expiry in Unix seconds (4 bytes) and the
incident's episode (4 bytes: 1, then one more at each reopen), so a link sent about
one episode never acknowledges a later one; the signature is HMAC-SHA256 over a
version tag and the payload, cut to 16 bytes. 45 characters, so a link still fits
in an SMS. No state is kept: whoever holds the secret can check a token, and nobody
without it can make one.

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

from hub.errors import Forbidden

_PAYLOAD = struct.Struct(">QII")
_PAYLOAD_WITHOUT_EPISODE = struct.Struct(">QI")
_DOMAIN = b"hub-ack-v1:"
_SIGNATURE_BYTES = 16
_TOKEN = re.compile(r"[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}")


class Expired(Forbidden):
    """A link hub signed, past its expiry: it names its incident, so the refusal can
    point there (a forged or malformed token reveals nothing about any incident)."""

    def __init__(self, incident_id: int) -> None:
        super().__init__("acknowledgement link expired")
        self.incident_id = incident_id


class Link(NamedTuple):
    """What a verified token acknowledges: one episode of one incident."""

    incident_id: int
    episode: int


def sign(secret: bytes, incident_id: int, episode: int, expires_at: datetime) -> str:
    """A token acknowledging ``episode`` of ``incident_id`` until ``expires_at``
    (whole seconds)."""
    payload = _PAYLOAD.pack(incident_id, int(expires_at.timestamp()), episode)
    return f"{_encode(payload)}.{_encode(_signature(secret, payload))}"


def verify(secret: bytes, token: str, now: datetime) -> Link:
    """The incident and episode a token acknowledges; Forbidden says why a token is
    refused, Expired only once the signature proved hub made it."""
    payload, signature = _split(token)
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        raise Forbidden("acknowledgement link has a bad signature")
    if len(payload) == _PAYLOAD_WITHOUT_EPISODE.size:
        incident_id, expires = _PAYLOAD_WITHOUT_EPISODE.unpack(payload)
        episode = 1
    else:
        incident_id, expires, episode = _PAYLOAD.unpack(payload)
    if now >= datetime.fromtimestamp(expires, UTC):
        raise Expired(incident_id)
    return Link(incident_id, episode)


def _split(token: str) -> tuple[bytes, bytes]:
    if not _TOKEN.fullmatch(token):
        raise Forbidden("acknowledgement link is malformed")
    try:
        payload, signature = (_decode(part) for part in token.split("."))
    except binascii.Error as e:
        raise Forbidden("acknowledgement link is malformed") from e
    sizes = (_PAYLOAD.size, _PAYLOAD_WITHOUT_EPISODE.size)
    if len(payload) not in sizes or len(signature) != _SIGNATURE_BYTES:
        raise Forbidden("acknowledgement link is malformed")
    return payload, signature


def _signature(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
