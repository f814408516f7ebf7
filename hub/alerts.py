"""The alert state machine: what one event does to the alert it is about. Pure.

The decision "new, else duplicate, else changed, else stale" is made in one place,
``classify``, so every format and every path (ingest, replay, heartbeats) agrees.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    NEW = "new"  # first event for this fingerprint
    DUPLICATE = "duplicate"  # same status and severity: count it, change nothing else
    CHANGED = "changed"  # status changed (firing <-> resolved): history and notifications
    UPDATED = "updated"  # same status, different severity or summary: history only
    ACKNOWLEDGED = "acknowledged"  # the sender says someone is on it (PagerDuty acknowledge)
    STALE = "stale"  # older than the alert's last change: recorded, never applied


def classify(
    alert: dict[str, Any] | None, status: str, severity: str, summary: str, occurred_at: float
) -> Outcome:
    """Decide what an event does to the current alert row (None if there is none).

    An event older than the last state change is stale: a late "firing" never
    reopens an alert that was resolved after it. Equal times let the later
    arrival win, since senders without clocks all carry the receive time.
    """
    if alert is None:
        return Outcome.NEW
    if occurred_at < alert["last_change"]:
        return Outcome.STALE
    if status == "acknowledged":
        return Outcome.ACKNOWLEDGED
    if status != alert["status"]:
        return Outcome.CHANGED
    if severity != alert["severity"] or summary != alert["summary"]:
        return Outcome.UPDATED
    return Outcome.DUPLICATE


def matchable(alert: dict[str, Any]) -> dict[str, str]:
    """The labels that routes, silences, inhibition and filters match on.

    Severity is a field of its own in hub, but Alertmanager users write
    ``severity="critical"`` matchers: it is matchable as a label unless the sender
    set a ``severity`` label of its own, which wins.
    """
    return {"severity": alert["severity"], **alert["labels"]}


def notification_kind(outcome: Outcome, status: str) -> str | None:
    """Which notification an outcome causes: an alert starting to fire, or resolving."""
    if outcome is Outcome.NEW and status == "firing":
        return "firing"
    if outcome is Outcome.CHANGED and status in ("firing", "resolved"):
        return status
    return None
