"""What Prometheus posts to Alertmanager's ``POST /api/v2/alerts``: a JSON array of
alerts without status or fingerprint.

As in Alertmanager: empty label values are dropped, the identity is the FNV-1a
fingerprint of the labels, the source's included as external labels would be (so it
matches the ``alertmanager`` webhook's), an alert
whose ``endsAt`` has passed is resolved, a firing alert carries its ``endsAt`` so
that it resolves then unless re-sent (``hub.expiry``), and a batch keeps its valid
alerts.

``RESPONDER`` answers as Alertmanager's API v2 does, for Prometheus and amtool: 200
with an empty body; 400 with the validation errors as one JSON string when some
alerts were invalid (the valid ones are kept, as Alertmanager keeps them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from hub.decoders.common import (
    AwareTime,
    Decoded,
    alert_labels,
    decode_batch,
    labelled_event,
    parse_json,
    parse_shape,
)
from hub.errors import HubError, InvalidPayload, MalformedBody
from hub.events import Event

if TYPE_CHECKING:
    from hub.config import Source


class PostableAlert(msgspec.Struct, kw_only=True):
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: AwareTime | None = msgspec.field(default=None, name="startsAt")
    ends_at: AwareTime | None = msgspec.field(default=None, name="endsAt")
    generator_url: str = msgspec.field(default="", name="generatorURL")


def decode(body: bytes, source: Source, now: datetime | None = None) -> Decoded:
    """Decode a batch; ``now`` (default: the current time) decides which alerts ended.
    An empty batch has no event, and is answered 200 as Alertmanager answers it."""
    moment = now or datetime.now(UTC)
    try:
        alerts = parse_json(body, list[PostableAlert])
    except InvalidPayload:  # an alert of the wrong shape: one by one, to keep the others
        raws = parse_shape(body, list[msgspec.Raw], _webhook_body)
        return decode_batch(
            raws, "$", lambda raw: to_event(parse_json(raw, PostableAlert), source, moment)
        )
    if not alerts:
        return Decoded([])
    return decode_batch(alerts, "$", lambda alert: to_event(alert, source, moment))


def _webhook_body(data: Any) -> str | None:
    """A hint for an Alertmanager webhook body (an object with ``alerts``) posted here."""
    if isinstance(data, dict) and "alerts" in data:
        return (
            "this looks like an Alertmanager webhook body:"
            ' a source of format "alertmanager" takes it'
        )
    return None


GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def _given(moment: datetime | None) -> datetime | None:
    """A time the sender set: Go's zero time is one it left unset, as amtool's ``alert
    add`` sends both times, and Alertmanager reads it so (else the alert would be
    resolved at birth and never fire)."""
    return None if moment == GO_ZERO_TIME else moment


def to_event(alert: PostableAlert, source: Source, now: datetime) -> Event:
    labels = alert_labels(alert.labels)
    starts_at, ends_at = _given(alert.starts_at), _given(alert.ends_at)
    if starts_at and ends_at and ends_at < starts_at:
        raise InvalidPayload("endsAt is before startsAt", field="$.endsAt")
    resolved = ends_at is not None and ends_at <= now
    annotations = dict(alert.annotations)
    if alert.generator_url:
        annotations["generator_url"] = alert.generator_url
    return labelled_event(
        source,
        status="resolved" if resolved else "firing",
        labels=labels,
        annotations=annotations,
        fingerprint=None,
        occurred_at=ends_at if resolved else starts_at,
        ends_at=None if resolved else ends_at,
    )


class Responder:
    """Alertmanager's answers to ``POST /api/v2/alerts``."""

    def accepted(self, decoded: Decoded) -> tuple[int, str | None]:
        if decoded.rejected:
            return 400, "; ".join(decoded.rejected)
        return 200, None

    def rejected(self, error: HubError) -> tuple[int, str] | None:
        """A 400 for a body Alertmanager would refuse; None leaves other errors to hub."""
        if isinstance(error, InvalidPayload) and error.field not in error.detail:
            return 400, f"{error.field}: {error.detail}"
        if isinstance(error, MalformedBody | InvalidPayload):
            return 400, error.detail
        return None


RESPONDER = Responder()
