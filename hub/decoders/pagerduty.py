"""PagerDuty Events API v2: ``trigger``, ``acknowledge`` and ``resolve`` one event per
request, keyed by ``dedup_key``.

Senders written for PagerDuty read its answers, so ``RESPONDER`` answers as PagerDuty
does: 202 with the dedup key (generated for a trigger without one, as PagerDuty
does), and 400 ``invalid event`` with the reasons.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from hub.decoders.common import Decoded, as_text, make_event, parse_json, parse_time
from hub.errors import HubError, InvalidPayload, MalformedBody
from hub.events import Severity
from hub.fingerprints import sender_key

if TYPE_CHECKING:
    from hub.config import Source

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]

_STATUS = {"trigger": "firing", "acknowledge": "acknowledged", "resolve": "resolved"}
_LABEL_FIELDS = ("source", "component", "group", "class_")


class Payload(msgspec.Struct, kw_only=True):
    summary: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    source: NonEmpty
    severity: Severity
    timestamp: str | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = msgspec.field(default=None, name="class")
    custom_details: Any = None


class Link(msgspec.Struct):
    href: NonEmpty
    text: str | None = None


class PagerDutyEvent(msgspec.Struct, kw_only=True):
    routing_key: NonEmpty
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    payload: Payload | None = None
    client_url: str | None = None
    links: list[Link] = []


def decode(body: bytes, source: Source) -> Decoded:
    """Decode one event; a trigger needs a payload, the other actions a dedup_key.

    As at PagerDuty, acknowledge and resolve only act on an alert triggered before
    (``opens`` False), and without a payload they change only its status. Events are
    ordered by arrival, as PagerDuty orders them (``_detected_at``).
    """
    event = parse_json(body, PagerDutyEvent)
    if event.event_action == "trigger" and event.payload is None:
        raise InvalidPayload("a trigger event needs a payload", field="$.payload")
    if event.event_action != "trigger" and event.dedup_key is None:
        raise InvalidPayload(f"{event.event_action} needs a dedup_key", field="$.dedup_key")
    payload = event.payload
    return Decoded(
        [
            make_event(
                source,
                status=_STATUS[event.event_action],
                summary=payload.summary if payload else "",
                severity=payload.severity if payload else "info",
                labels=_labels(payload),
                annotations=_annotations(event),
                dedup_key=event.dedup_key or uuid.uuid4().hex,
                starts_at=_detected_at(payload),
                opens=event.event_action == "trigger",
                details=payload is not None,
            )
        ]
    )


def _labels(payload: Payload | None) -> dict[str, str]:
    """source, component, group and class identify what is affected: they are labels."""
    if payload is None:
        return {}
    values = {name.rstrip("_"): getattr(payload, name) for name in _LABEL_FIELDS}
    return {name: value for name, value in values.items() if value}


def _annotations(event: PagerDutyEvent) -> dict[str, str]:
    """custom_details, flattened one level, client_url and links: context for the
    humans, shown in notifications."""
    annotations = _flatten(event.payload.custom_details if event.payload else None)
    if event.client_url:
        annotations["client_url"] = event.client_url
    for n, link in enumerate(event.links, start=1):
        annotations[f"link_{n}"] = f"{link.text} {link.href}" if link.text else link.href
    return annotations


def _flatten(details: Any) -> dict[str, str]:
    if details is None:
        return {}
    if isinstance(details, dict):
        return {str(key): as_text(value) for key, value in details.items()}
    return {"custom_details": as_text(details)}


def _detected_at(payload: Payload | None) -> datetime | None:
    """When the sender detected the problem: PagerDuty applies events in the order they
    arrive, and senders keep the first detection time on every re-trigger, so this
    time dates the alert's firing, never the event (a re-trigger after a resolve
    ordered by it would be stale, and a new outage would never page)."""
    if payload is None or payload.timestamp is None:
        return None
    return parse_time(payload.timestamp, "$.payload.timestamp")


class PagerDutyAccepted(msgspec.Struct, kw_only=True):
    """PagerDuty's answer to an event it took, as Events API v2 clients read it; the
    webhook's OpenAPI answer is this Struct's schema."""

    status: Literal["success"] = "success"
    message: str = "Event processed"
    dedup_key: str


class Responder:
    """PagerDuty's answers, for senders that read them."""

    def accepted(self, decoded: Decoded) -> tuple[int, dict[str, Any]]:
        key = sender_key(decoded.events[0].fingerprint)
        return 202, msgspec.structs.asdict(PagerDutyAccepted(dedup_key=key))

    def rejected(self, error: HubError) -> tuple[int, dict[str, Any]] | None:
        """A 400 for a body PagerDuty would refuse; None leaves other errors to hub."""
        if not isinstance(error, MalformedBody | InvalidPayload):
            return None
        message = {"status": "invalid event", "message": "Event object is invalid"}
        return 400, {**message, "errors": [error.detail]}


RESPONDER = Responder()
