"""The alert state machine: what one event does to the alert it is about. Pure.

The decision "new, else duplicate, else changed, else stale" is made in one place,
``classify``, so every format and every path (ingest, replay, heartbeats) agrees.
``new_row`` and ``changed_fields`` say what the alert row becomes; ingest writes
them, and the routing decision (``hub.decision``) projects them without writing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, get_args

import msgspec

from hub import flapping

if TYPE_CHECKING:
    from hub.config import Flapping
    from hub.events import Event

AlertStatus = Literal["firing", "resolved"]
ALERT_STATUSES: tuple[str, ...] = get_args(AlertStatus)
"""Every status an alert row has: an event's ``acknowledged`` acts on its incident only."""


class Outcome(StrEnum):
    NEW = "new"  # first event for this fingerprint
    DUPLICATE = "duplicate"  # same status and severity: count it, change nothing else
    CHANGED = "changed"  # status changed (firing <-> resolved): history and notifications
    UPDATED = "updated"  # same status, different severity or summary: history only
    ACKNOWLEDGED = "acknowledged"  # the sender says someone is on it (PagerDuty acknowledge)
    STALE = "stale"  # older than the alert's last change: recorded, never applied
    IGNORED = "ignored"  # about no alert hub has (an acknowledge, PagerDuty's resolve), an
    # acknowledge of a resolved alert, or one its sender's mapping ignores: dropped


def classify(
    alert: dict[str, Any] | None,
    status: str,
    severity: str,
    summary: str,
    occurred_at: float,
    ends: float | None = None,
    opens: bool = True,
) -> Outcome:
    """Decide what an event does to the current alert row (None if there is none);
    ``ends`` is the event's end (``ends_at``).

    An event older than the last state change is stale: a late "firing" never
    reopens an alert that was resolved after it, unless it outlasts an end hub
    inferred (``refires``). Equal times let the later arrival win, since senders
    without clocks all carry the receive time. Without an alert, an acknowledgement
    (of nothing) and an event that does not ``opens`` one (PagerDuty's resolve) are
    ignored: they must not page. So is an acknowledgement of a resolved alert, as
    PagerDuty drops it: it would acknowledge an incident the alert no longer keeps
    open, for the other alerts still firing in it.
    """
    if alert is None:
        return Outcome.NEW if opens and status != "acknowledged" else Outcome.IGNORED
    if occurred_at < alert["last_change"] and not refires(alert, status, ends):
        return Outcome.STALE
    if status == "acknowledged":
        return Outcome.ACKNOWLEDGED if alert["status"] == "firing" else Outcome.IGNORED
    if status != alert["status"]:
        return Outcome.CHANGED
    if severity != alert["severity"] or summary != alert["summary"]:
        return Outcome.UPDATED
    return Outcome.DUPLICATE


def refires(alert: dict[str, Any], status: str, ends: float | None) -> bool:
    """A firing event whose end is later than the one hub's expirer resolved the alert
    at: the sender says it still fires after the end hub inferred (Prometheus re-sends
    with the same ``startsAt`` after a network cut), and Alertmanager fires it again.

    Only the expirer's resolution leaves an end on a resolved alert (``_ends``); a
    sender's own resolve clears it, so a delayed firing never undoes that. Both ends
    are the sender's ``endsAt``: no clock of hub's is compared with the sender's.
    """
    stored = alert["ends_at"]
    expired = alert["status"] == "resolved" and stored is not None
    return expired and status == "firing" and ends is not None and ends > stored


def matchable(alert: dict[str, Any]) -> dict[str, str]:
    """The labels that routes, silences, inhibition and filters match on.

    Severity is a field of its own in hub, but Alertmanager users write
    ``severity="critical"`` matchers: it is matchable as a label unless the sender
    set a ``severity`` label of its own, which wins.
    """
    return {"severity": alert["severity"], **alert["labels"]}


def judge(
    alert: dict[str, Any] | None, event: Event, occurred_at: float
) -> tuple[Event, float | None, Outcome]:
    """``classify`` for an event against the stored ``alert``, shared by ingest and
    test-mode decisions: the event as it applies (a status-only one takes the alert's
    summary and severity, an unrated resolve its severity), its end, and the outcome."""
    if event.ignored:
        return event, None, Outcome.IGNORED
    if alert is not None:
        event = _as_applied(event, alert)
    end = ends_at(event)
    outcome = classify(
        alert, event.status, event.severity, event.summary, occurred_at, end, event.opens
    )
    return event, end, outcome


def _as_applied(event: Event, alert: dict[str, Any]) -> Event:
    """The event as if it repeated what its sender left to the alert, so the state
    machine and the history see only what the sender said.

    A status-only event repeats the alert's summary and severity (``changed_fields``
    leaves labels and annotations alone for it). A resolve without a severity repeats
    the alert's: the format's default would tell the timeline and the resolved message
    that an ``error`` alert was a ``warning``. A firing event's default stands, as
    documented. An event without a summary repeats the alert's, so a generic
    "resolved" never replaces what the alert is about in later messages. ``alert``
    needs only ``summary`` and ``severity`` (``Tx.alert_state``).
    """
    if not event.details:
        return msgspec.structs.replace(event, summary=alert["summary"], severity=alert["severity"])
    kept: dict[str, str] = {}
    if not event.summarized:
        kept["summary"] = alert["summary"]
    if event.status == "resolved" and not event.rated:
        kept["severity"] = alert["severity"]
    return msgspec.structs.replace(event, **kept) if kept else event


def notification_kind(outcome: Outcome, status: str) -> str | None:
    """Which notification an outcome causes: an alert starting to fire, or resolving."""
    if outcome is Outcome.NEW and status == "firing":
        return "firing"
    if outcome is Outcome.CHANGED and status in ("firing", "resolved"):
        return status
    return None


def occurred_at(event: Event, received_at: float) -> float:
    """When the event happened: the sender's time, else the time hub received it."""
    return event.occurred_at.timestamp() if event.occurred_at else received_at


def ends_at(event: Event) -> float | None:
    """When the alert resolves by itself unless re-sent: only a firing alert whose
    sender said when (Prometheus' ``endsAt``) ever does."""
    return event.ends_at.timestamp() if event.ends_at and event.status == "firing" else None


def _ends(event: Event) -> dict[str, float | None]:
    """The end and the expirer's first look at it, which a new state starts equal.

    A resolved event has no look left; only the expirer's carries an end, the one
    that passed, which ``refires`` compares a later re-send's end with.
    """
    if event.status != "firing":
        return {"ends_at": _timestamp(event.ends_at), "end_check_at": None}
    end = ends_at(event)
    return {"ends_at": end, "end_check_at": end}


def _timestamp(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


def new_row(source: str, event: Event, occurred: float, now: float) -> dict[str, Any]:
    """The alert row the first event of a fingerprint creates."""
    return {
        "fingerprint": event.fingerprint,
        "source": source,
        "status": "resolved" if event.status == "resolved" else "firing",
        "severity": event.severity,
        "summary": event.summary,
        "labels": event.labels,
        "annotations": event.annotations,
        "first_seen": now,
        "last_seen": now,
        "last_change": occurred,
        "resolved_at": occurred if event.status == "resolved" else None,
        "fired_at": _fired_at(event, occurred, None) if event.status == "firing" else None,
        **_ends(event),
    }


def changed_fields(
    alert: dict[str, Any], event: Event, occurred: float, now: float, settings: Flapping
) -> dict[str, Any]:
    """The alert row's fields after a changed or updated event; a status change also
    counts towards flapping. A status-only event (``details`` False) and an unrated
    resolve come through ``judge``, so what they left out is the alert's already.

    Labels never change: the alert's incident, receivers and silences were chosen by
    them, and an event relabelling it would leave it in an incident its labels no
    longer fit (the README: to move an alert, resolve it and fire a new one)."""
    changes: dict[str, Any] = {
        "status": event.status,
        "severity": event.severity,
        "summary": event.summary,
        "last_seen": now,
        "last_change": occurred,
        "resolved_at": occurred if event.status == "resolved" else None,
        **_ends(event),
    }
    if event.details and event.annotations:
        changes["annotations"] = event.annotations
    if event.status != alert["status"]:
        changes |= _flapping(alert["changes"], now, settings)
        if event.status == "firing":  # a firing spell starts: messages say since when,
            # and it is of its incident's current episode, whatever it was of before
            changes |= {
                "fired_at": _fired_at(event, occurred, alert["last_change"]),
                "past_episode": None,
            }
    return changes


def _fired_at(event: Event, occurred: float, since: float | None) -> float:
    """When a firing spell began: the sender's start where it gives one apart from the
    event's time (PagerDuty's detection time), else the event's time. A start before
    the alert's last change (``since``) is of a spell that is over: a re-trigger that
    keeps its first detection time after a resolve fires from the event's time."""
    started = _timestamp(event.starts_at)
    if started is None or (since is not None and started < since):
        return occurred
    return started


def _flapping(changes: list[float], now: float, settings: Flapping) -> dict[str, Any]:
    """Record one more state change and whether the alert now counts as flapping."""
    moment = datetime.fromtimestamp(now, UTC)
    times = [datetime.fromtimestamp(t, UTC) for t in changes] + [moment]
    kept = flapping.prune(times, moment, settings)
    return {
        "changes": [t.timestamp() for t in kept],
        "flapping": flapping.is_flapping(kept, moment, settings),
    }
