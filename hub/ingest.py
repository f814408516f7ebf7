"""Ingest: one delivery's decoded events applied to the store in one transaction.

Runs inside the store's writer (``apply_delivery`` is a write function): the
idempotency check, de-duplication, the alert state machine and the outbox writes
all commit together, so a 2xx answer means every effect is on disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from hub import flapping
from hub.alerts import Outcome, classify
from hub.correlate import correlate
from hub.decoders.common import Decoded
from hub.events import Event
from hub.rules import Rules
from hub.store import Tx

if TYPE_CHECKING:
    from hub.decoders import Responder

# Header names holding credentials in the schemes senders use: Authorization (bearer,
# basic), X-Hub-Signature-256, X-Slack-Signature, X-Shopify-Hmac-Sha256,
# X-Grafana-Alerting-Signature, webhook-signature, X-Gitlab-Token, X-Api-Key, ...
SECRET_HEADER_PARTS = (
    "authorization",
    "cookie",
    "signature",
    "hmac",
    "token",
    "secret",
    "password",
    "api-key",
    "apikey",
)
DELIVERY_ID_HEADERS = ("idempotency-key", "webhook-id", "x-request-id")


class Delivery(msgspec.Struct, frozen=True):
    """One HTTP delivery from a sender, as it will be kept for audit."""

    source: str
    key: str | None
    received_at: float
    headers: dict[str, str]
    body: bytes


class Answer(msgspec.Struct, frozen=True):
    """The HTTP answer to a delivery: 202 when applied now, the first answer on a repeat."""

    status_code: int
    body: Any
    repeated: bool = False
    outcomes: list[str] = []


def delivery_key(headers: Mapping[str, str], authenticated_id: str | None) -> str | None:
    """The sender's id for this delivery, from the auth scheme or a well-known header."""
    if authenticated_id:
        return authenticated_id
    return next((headers[name] for name in DELIVERY_ID_HEADERS if headers.get(name)), None)


def audit_headers(headers: Mapping[str, str], secret: Iterable[str] = ()) -> dict[str, str]:
    """Headers worth keeping with a delivery: everything except credentials.

    ``secret`` names the headers the source's auth reads (lower case), so a signature
    header with an unusual name is dropped too.
    """
    dropped = set(secret)
    return {
        name: value
        for name, value in headers.items()
        if name not in dropped and not any(part in name for part in SECRET_HEADER_PARTS)
    }


def apply_delivery(
    tx: Tx,
    delivery: Delivery,
    decoded: Decoded,
    rules: Rules,
    responder: Responder | None = None,
) -> Answer:
    """The write function for one delivery; a repeated delivery key changes nothing.

    The answer (hub's, or the format's ``responder``'s) is stored with the delivery,
    so a repeat gets it back and the audit log shows what the sender was told.
    """
    if delivery.key:
        prior = tx.find_delivery(delivery.source, delivery.key)
        if prior:
            return Answer(200, prior[1], repeated=True)
    delivery_id = tx.insert_delivery(
        delivery.source, delivery.key, delivery.received_at, delivery.headers, delivery.body
    )
    results = [_apply_event(tx, delivery, delivery_id, event, rules) for event in decoded.events]
    if responder is None:
        status, body = 202, _native_answer(delivery_id, decoded, results)
    else:
        status, body = responder.accepted(decoded)
    tx.answer_delivery(delivery_id, status, body)
    return Answer(status, body, outcomes=[outcome.value for _, outcome in results])


def _native_answer(
    delivery_id: int, decoded: Decoded, results: list[tuple[dict, Outcome]]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accepted": len(results),
        "duplicates": sum(1 for _, outcome in results if outcome is Outcome.DUPLICATE),
        "alerts": [alert for alert, _ in results],
        "delivery_id": delivery_id,
    }
    if decoded.rejected:
        body["rejected"] = decoded.rejected
    return body


def _apply_event(
    tx: Tx, delivery: Delivery, delivery_id: int, event: Event, rules: Rules
) -> tuple[dict, Outcome]:
    now = delivery.received_at
    occurred = event.occurred_at.timestamp() if event.occurred_at else now
    alert = tx.get_alert(event.fingerprint)
    was_firing = alert is not None and alert["status"] == "firing"
    outcome = classify(alert, event.status, event.severity, event.summary, occurred)
    if alert is None:
        alert = _new_alert(tx, delivery, event, occurred)
    elif outcome is Outcome.DUPLICATE:
        tx.touch_alert(alert["id"], now, occurred)
    elif outcome in (Outcome.CHANGED, Outcome.UPDATED):
        alert = _change_alert(tx, alert, event, occurred, now, rules)
    if outcome is not Outcome.DUPLICATE:
        _record(tx, delivery_id, alert["id"], event, occurred, now, outcome)
    if outcome not in (Outcome.DUPLICATE, Outcome.STALE):
        alert["incident_id"] = correlate(tx, alert, outcome, was_firing, now, rules)
    summary = {
        "id": alert["id"],
        "fingerprint": event.fingerprint,
        "status": alert["status"],
        "incident_id": alert.get("incident_id"),
    }
    return summary, outcome


def _record(
    tx: Tx,
    delivery_id: int,
    alert_id: int,
    event: Event,
    occurred: float,
    now: float,
    outcome: Outcome,
) -> None:
    """An event row and a history row; repeats skip both (the delivery keeps the body)."""
    event_id = tx.insert_event(
        delivery_id, alert_id, event.status, event.severity, occurred, outcome.value
    )
    history = {
        "at": occurred,
        "recorded_at": now,
        "status": event.status,
        "severity": event.severity,
        "summary": event.summary,
        "applied": outcome is not Outcome.STALE,
    }
    tx.add_history(alert_id, event_id, history)


def _new_alert(tx: Tx, delivery: Delivery, event: Event, occurred: float) -> dict:
    row = {
        "fingerprint": event.fingerprint,
        "source": delivery.source,
        "status": "resolved" if event.status == "resolved" else "firing",
        "severity": event.severity,
        "summary": event.summary,
        "labels": event.labels,
        "annotations": event.annotations,
        "first_seen": delivery.received_at,
        "last_seen": delivery.received_at,
        "last_change": occurred,
        "resolved_at": occurred if event.status == "resolved" else None,
    }
    return {**row, "id": tx.insert("alerts", row), "incident_id": None}


def _change_alert(
    tx: Tx, alert: dict, event: Event, occurred: float, now: float, rules: Rules
) -> dict:
    changes: dict = {
        "status": event.status,
        "severity": event.severity,
        "summary": event.summary,
        "labels": event.labels,
        "annotations": event.annotations,
        "last_seen": now,
        "last_change": occurred,
        "resolved_at": occurred if event.status == "resolved" else None,
    }
    if event.status != alert["status"]:
        changes |= _flapping(alert["changes"], now, rules)
    tx.update("alerts", alert["id"], changes)
    return {**alert, **changes}


def _flapping(changes: list[float], now: float, rules: Rules) -> dict:
    """Record one more state change and whether the alert now counts as flapping."""
    moment = datetime.fromtimestamp(now, UTC)
    times = [datetime.fromtimestamp(t, UTC) for t in changes] + [moment]
    kept = flapping.prune(times, moment, rules.flapping)
    return {
        "changes": [t.timestamp() for t in kept],
        "flapping": int(flapping.is_flapping(kept, moment, rules.flapping)),
    }
