"""Ingest: one delivery's decoded events applied to the store in one transaction.

Runs inside a group commit (``apply_delivery`` is a store write function): the
idempotency check, de-duplication, the alert state machine and the outbox writes
all commit together, so a 2xx answer means every effect is on disk.

A delivery to a source in test mode goes to ``apply_test_delivery`` instead: it is
kept with its routing decision (``hub.decision``) and nothing else is written, so a
test can never notify, escalate or join a live incident.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from hub import decision
from hub.alerts import (
    Outcome,
    changed_fields,
    judge,
    new_row,
    occurred_at,
)
from hub.config import Mode
from hub.correlate import correlate, insert_new
from hub.decoders.common import Decoded
from hub.errors import KeyReused
from hub.events import Event
from hub.rules import Rules
from hub.silences import Silence
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
# Headers a sender sets to name one delivery and its retries (lower case -> as a
# refusal spells it). Not X-Request-ID: tracing middleware and proxies propagate one
# across unrelated calls, and a second alert taken for a retry of the first would be lost.
DELIVERY_ID_HEADERS = {"idempotency-key": "Idempotency-Key", "webhook-id": "webhook-id"}


class Delivery(msgspec.Struct, frozen=True):
    """One HTTP delivery from a sender, as it will be kept for audit.

    ``mode`` is the source's at receive time; ``replay_of`` the delivery whose body
    an operator sent through again (a replay has no key: it is no sender's retry);
    ``key_header`` the header the key came in, named when a reused key is refused.
    """

    source: str
    key: str | None
    received_at: float
    headers: dict[str, str]
    body: bytes
    mode: Mode = "live"
    replay_of: int | None = None
    key_header: str | None = None


class Answer(msgspec.Struct, frozen=True):
    """The HTTP answer to a delivery: 202 when applied now, the first answer on a repeat.

    ``outcomes`` (one per event) and ``rejected`` (batch items refused by the decoder)
    are what this delivery did now, for the metrics: none on a repeat or in test mode.
    """

    status_code: int
    body: Any
    repeated: bool = False
    outcomes: list[str] = []
    rejected: int = 0


def delivery_key(
    headers: Mapping[str, str], authenticated_id: str | None, id_header: str
) -> tuple[str, str] | tuple[None, None]:
    """The sender's id for this delivery and the header it came in: the auth scheme's
    (in ``id_header``), else Idempotency-Key or webhook-id."""
    if authenticated_id:
        return id_header, authenticated_id
    for name, spelled in DELIVERY_ID_HEADERS.items():
        if key := headers.get(name):
            return spelled, key
    return None, None


def audit_headers(headers: Mapping[str, str], secret: Collection[str] = ()) -> dict[str, str]:
    """Headers worth keeping with a delivery: everything except credentials.

    ``secret`` names the headers the source's auth reads (lower case), so a signature
    header with an unusual name is dropped too.
    """
    return {
        name: value
        for name, value in headers.items()
        if name not in secret and not _names_a_secret(name)
    }


@functools.lru_cache(maxsize=1024)
def _names_a_secret(name: str) -> bool:
    """Cached: senders repeat the same dozen header names on every delivery."""
    return any(part in name for part in SECRET_HEADER_PARTS)


def apply_delivery(
    tx: Tx,
    delivery: Delivery,
    decoded: Decoded,
    rules: Rules,
    responder: Responder | None = None,
) -> Answer:
    """The write function for one delivery; a repeated delivery key changes nothing
    (and a reused one, with another body, is refused: KeyReused).

    The answer (hub's, or the format's ``responder``'s) is stored with the delivery
    in its one INSERT, so a repeat gets it back and the audit log shows what the
    sender was told. A format's answer depends only on the body; hub's own names the
    delivery and the alerts, so the delivery's id is taken first and the row written
    once the alerts are applied. Event rows refer to the delivery: they come last.
    """
    repeated = _repeated(tx, delivery)
    if repeated is not None:
        return repeated
    if responder is not None:
        answer = responder.accepted(decoded)
        delivery_id = _insert(tx, None, delivery, answer)
        applied = _apply_events(tx, delivery, decoded, rules)
    else:
        delivery_id = tx.next_delivery_id()
        applied = _apply_events(tx, delivery, decoded, rules)
        answer = 202, {**_native_answer(delivery_id, decoded, applied), **_replayed(delivery)}
        _insert(tx, delivery_id, delivery, answer)
    for event in applied:
        if event.outcome not in _UNRECORDED:
            _record(tx, delivery_id, event, delivery.received_at)
    outcomes = [event.outcome.value for event in applied]
    return Answer(*answer, outcomes=outcomes, rejected=len(decoded.rejected))


def apply_test_delivery(
    tx: Tx,
    delivery: Delivery,
    decoded: Decoded,
    rules: Rules,
    active_silences: Sequence[Silence],
) -> Answer:
    """The write function for a delivery to a test source: kept with its decision.

    No alert, event, incident or outbox row is written: test alerts live only in the
    decision, so nothing can notify, escalate, inhibit or join a live incident. Every
    format gets the same answer, since a test's reader is a person, not the sender.
    """
    repeated = _repeated(tx, delivery)
    if repeated is not None:
        return repeated
    decisions = decision.decide_in(
        tx, rules, active_silences, decoded.events, delivery.source, delivery.received_at
    )
    delivery_id = tx.next_delivery_id()
    body = {
        "mode": "test",
        **decision.summary(decoded, decisions),
        "delivery_id": delivery_id,
        **_replayed(delivery),
    }
    _insert(tx, delivery_id, delivery, (202, body), decisions)
    return Answer(202, body)


def _replayed(delivery: Delivery) -> dict[str, int]:
    """``replay_of`` for a replay's answer, so whoever replayed it sees which delivery
    it repeats, as its audit-log row says; nothing for a sender's delivery."""
    return {} if delivery.replay_of is None else {"replay_of": delivery.replay_of}


def _repeated(tx: Tx, delivery: Delivery) -> Answer | None:
    """The first answer, when the sender already made this delivery.

    A retry resends the same bytes; the same key with another body is a new delivery
    under a reused key, and answering it as a retry would silently drop its events.
    """
    prior = tx.find_delivery(delivery.source, delivery.key) if delivery.key else None
    if prior is None:
        return None
    _, response, body = prior
    if body != delivery.body:
        raise KeyReused(
            f"the body differs from the first delivery with {delivery.key_header or 'key'}"
            f" {delivery.key!r}; a retry must resend that body unchanged, and a new"
            " delivery needs a new key"
        )
    return Answer(200, response, repeated=True)


def _insert(
    tx: Tx,
    delivery_id: int | None,
    delivery: Delivery,
    answer: tuple[int, Any],
    decisions: list[decision.EventDecision] | None = None,
) -> int:
    return tx.insert_delivery(
        delivery_id,
        delivery.source,
        delivery.key,
        delivery.received_at,
        delivery.headers,
        delivery.body,
        answer=answer,
        mode=delivery.mode,
        replay_of=delivery.replay_of,
        decision=decisions,
    )


# No event row: a duplicate is counted on its alert, an ignored event has no alert
# (events reference one); the delivery keeps the body of both.
_UNRECORDED = frozenset({Outcome.DUPLICATE, Outcome.IGNORED})


class _Applied(NamedTuple):
    """One event applied to its alert; the event row is written after the delivery's."""

    alert: dict[str, Any]  # what the answer says of the alert
    outcome: Outcome
    event: Event
    occurred: float


def _apply_events(tx: Tx, delivery: Delivery, decoded: Decoded, rules: Rules) -> list[_Applied]:
    now = delivery.received_at
    return [_apply_event(tx, delivery.source, now, event, rules) for event in decoded.events]


def _native_answer(delivery_id: int, decoded: Decoded, applied: list[_Applied]) -> dict[str, Any]:
    """hub's answer. ``stale`` counts the events recorded but not applied (older than
    their alert's last change), which a sender could not tell from ``alerts`` alone."""
    body: dict[str, Any] = {
        "accepted": len(applied),
        "duplicates": _count(applied, Outcome.DUPLICATE),
        "stale": _count(applied, Outcome.STALE),
        "alerts": [event.alert for event in applied],
        "delivery_id": delivery_id,
    }
    if ignored := _count(applied, Outcome.IGNORED):
        body["ignored"] = ignored
    if decoded.rejected:
        body["rejected"] = decoded.rejected
    return body


def _count(applied: list[_Applied], outcome: Outcome) -> int:
    return sum(1 for event in applied if event.outcome is outcome)


def _apply_event(tx: Tx, source: str, now: float, event: Event, rules: Rules) -> _Applied:
    occurred = occurred_at(event, now)
    state = tx.alert_state(event.fingerprint)
    was_firing = state is not None and state["status"] == "firing"
    event, end, outcome = judge(state, event, occurred)
    if outcome is Outcome.IGNORED:
        return _ignored(event, occurred, state)
    if state is None:
        alert = insert_new(tx, new_row(source, event, occurred, now), now, rules)
    elif outcome is Outcome.DUPLICATE:
        annotations = event.annotations if event.details and event.annotations else None
        tx.touch_alert(state, now, occurred, end, annotations)
        alert = state
    else:
        alert = tx.get_alert(event.fingerprint)
    if outcome in (Outcome.CHANGED, Outcome.UPDATED):
        alert = _change_alert(tx, alert, event, occurred, now, rules)
    if outcome not in (Outcome.NEW, Outcome.DUPLICATE, Outcome.STALE):
        alert["incident_id"] = correlate(tx, alert, outcome, was_firing, now, rules)
    summary = {
        "id": alert["id"],
        "fingerprint": event.fingerprint,
        "status": alert["status"],
        "incident_id": alert.get("incident_id"),
    }
    return _Applied(summary, outcome, event, occurred)


def _ignored(event: Event, occurred: float, state: dict[str, Any] | None) -> _Applied:
    """An event that changes nothing: nothing is written, and the answer says what the
    alert is (an acknowledgement of a resolved one), or that there is none."""
    known = state or {"id": None, "status": None, "incident_id": None}
    summary = {
        "id": known["id"],
        "fingerprint": event.fingerprint,
        "status": known["status"],
        "incident_id": known["incident_id"],
    }
    return _Applied(summary, Outcome.IGNORED, event, occurred)


def _record(tx: Tx, delivery_id: int, applied: _Applied, now: float) -> None:
    """An event row and a history row; repeats skip both (the delivery keeps the body)."""
    event = applied.event
    alert_id = applied.alert["id"]
    event_id = tx.insert_event(
        delivery_id, alert_id, event.status, event.severity, applied.occurred, applied.outcome.value
    )
    history = {
        "at": applied.occurred,
        "recorded_at": now,
        "status": event.status,
        "severity": event.severity,
        "summary": event.summary,
        "applied": applied.outcome is not Outcome.STALE,
    }
    tx.add_history(alert_id, event_id, history)


def _change_alert(
    tx: Tx, alert: dict, event: Event, occurred: float, now: float, rules: Rules
) -> dict:
    changes = changed_fields(alert, event, occurred, now, rules.flapping)
    tx.update("alerts", alert["id"], changes)
    return {**alert, **changes}
