"""Signed, expiring one-click acknowledgement links carried in every notification.

A token is ``<payload>.<signature>``, both base64url without padding: the payload
packs the incident id (8 bytes) and the expiry in Unix seconds (4 bytes); the
signature is HMAC-SHA256 over a version tag and the payload, cut to 16 bytes.
About 40 characters, so a link still fits in an SMS. No state is kept: whoever
holds the secret can check a token, and nobody without it can make one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from datetime import UTC, datetime

from hub.errors import Forbidden

_PAYLOAD = struct.Struct(">QI")
_DOMAIN = b"hub-ack-v1:"
_SIGNATURE_BYTES = 16
_TOKEN = re.compile(r"[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}")


def sign(secret: bytes, incident_id: int, expires_at: datetime) -> str:
    """A token acknowledging ``incident_id`` until ``expires_at`` (whole seconds)."""
    payload = _PAYLOAD.pack(incident_id, int(expires_at.timestamp()))
    return f"{_encode(payload)}.{_encode(_signature(secret, payload))}"


def verify(secret: bytes, token: str, now: datetime) -> int:
    """The incident id a token acknowledges; Forbidden says why a token is refused."""
    payload, signature = _split(token)
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        raise Forbidden("acknowledgement link has a bad signature")
    incident_id, expires = _PAYLOAD.unpack(payload)
    if now >= datetime.fromtimestamp(expires, UTC):
        raise Forbidden("acknowledgement link expired")
    return incident_id


def _split(token: str) -> tuple[bytes, bytes]:
    if not _TOKEN.fullmatch(token):
        raise Forbidden("acknowledgement link is malformed")
    try:
        payload, signature = (_decode(part) for part in token.split("."))
    except binascii.Error as e:
        raise Forbidden("acknowledgement link is malformed") from e
    if len(payload) != _PAYLOAD.size or len(signature) != _SIGNATURE_BYTES:
        raise Forbidden("acknowledgement link is malformed")
    return payload, signature


def _signature(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
