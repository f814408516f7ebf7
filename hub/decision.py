"""The routing decision: what would happen to decoded events, without doing any of it.

Test-mode sources store it with their deliveries, and a replay dry run answers with it.
It is made by the functions that do the real thing: the state machine
(``alerts.classify``, ``new_row``, ``changed_fields``), the routing tree
(``routing.match``, ``group_key``) and the dispatcher's mute stage (``dispatch.muter``).
So it cannot drift from what ingest and the dispatcher do, with two caveats a reader
of a decision should know: receivers and mutes are those of the current rules (an
open incident keeps the receivers it has, adding those the alert's routes reach), and
mutes are the ones in force now (the real ones are decided when a notification is due).

Events of one delivery are decided in order, each against the alert as the earlier
ones would have left it, so a batch repeating one alert reads "new, duplicate".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from hub import dispatch, routing
from hub.alerts import (
    Outcome,
    changed_fields,
    judge,
    matchable,
    new_row,
    notification_kind,
    occurred_at,
)
from hub.decoders.common import Decoded
from hub.events import Event
from hub.grouping import Timing
from hub.mute import Mute, Muter
from hub.rules import Rules
from hub.silences import Silence
from hub.store import Tx


class RouteDecision(msgspec.Struct, frozen=True):
    """One matched route; the first of an event's routes owns its incident."""

    route_id: str
    receiver: str
    group_key: str
    group_by: list[str]
    timing: Timing
    escalation: str | None


class EventDecision(msgspec.Struct, frozen=True):
    """What one event would do.

    ``outcome`` is the state machine's verdict against the stored alert;
    ``notification`` is the change receivers hear about (``firing``, ``resolved``) or
    None; ``receivers`` are those that would be told: none when nothing is to be told,
    none a mute holds it back from (time intervals by the routes bringing each one),
    and for a resolution only those that want resolutions. ``mutes`` are the alert's,
    time intervals only while they mute every matched route, as the API shows them.
    """

    fingerprint: str
    outcome: str
    notification: str | None
    routes: list[RouteDecision]
    receivers: list[str]
    mutes: list[Mute]
    event: Event


def decide(
    rules: Rules,
    active_silences: Sequence[Silence],
    firing: Iterable[Mapping[str, str]],
    stored: Mapping[str, dict | None],
    events: Sequence[Event],
    source: str,
    now: float,
) -> list[EventDecision]:
    """Decide every event; ``stored`` maps each fingerprint to its alert row (or None),
    ``firing`` is the firing alerts' labels that inhibition rules look at. Pure."""
    muter = dispatch.muter(rules, now, active_silences, firing)
    alerts = dict(stored)
    decisions = []
    for event in events:
        decision, alerts[event.fingerprint] = _decide_one(
            rules, muter, alerts.get(event.fingerprint), event, source, now
        )
        decisions.append(decision)
    return decisions


def decide_in(
    tx: Tx,
    rules: Rules,
    active_silences: Sequence[Silence],
    events: Sequence[Event],
    source: str,
    now: float,
) -> list[EventDecision]:
    """``decide`` with the stored alerts and firing labels read through ``tx``."""
    stored = {event.fingerprint: tx.get_alert(event.fingerprint) for event in events}
    firing = dispatch.firing_labels(tx, rules)
    return decide(rules, active_silences, firing, stored, events, source, now)


def summary(decoded: Decoded, decisions: list[EventDecision]) -> dict[str, Any]:
    """The part of an answer that shows a decision: how many events, and each one's."""
    body: dict[str, Any] = {"accepted": len(decisions), "decision": decisions}
    if decoded.rejected:
        body["rejected"] = decoded.rejected
    return body


def _decide_one(
    rules: Rules, muter: Muter, alert: dict | None, event: Event, source: str, now: float
) -> tuple[EventDecision, dict | None]:
    """The decision for one event, and the alert as the event would leave it."""
    occurred = occurred_at(event, now)
    event, _, outcome = judge(alert, event, occurred)
    if outcome is Outcome.IGNORED:
        return _ignored(event), alert
    after = _project(rules, alert, event, outcome, source, occurred, now)
    labels = matchable(after)
    matched = routing.match(rules.tree, labels)
    kind = notification_kind(outcome, after["status"])
    mutes = muter.mutes(after)
    decision = EventDecision(
        fingerprint=event.fingerprint,
        outcome=outcome.value,
        notification=kind,
        routes=[_route(found, labels) for found in matched],
        receivers=_told(rules, muter, after, matched, kind),
        mutes=mutes,
        event=event,
    )
    return decision, after


def _ignored(event: Event) -> EventDecision:
    """An event about no alert: it would change nothing and tell nobody."""
    return EventDecision(
        fingerprint=event.fingerprint,
        outcome=Outcome.IGNORED.value,
        notification=None,
        routes=[],
        receivers=[],
        mutes=[],
        event=event,
    )


def _project(
    rules: Rules,
    alert: dict | None,
    event: Event,
    outcome: Outcome,
    source: str,
    occurred: float,
    now: float,
) -> dict:
    """The alert row after the event, as ingest would write it (nothing is written)."""
    if alert is None:
        return new_row(source, event, occurred, now)
    if outcome in (Outcome.CHANGED, Outcome.UPDATED):
        return {**alert, **changed_fields(alert, event, occurred, now, rules.flapping)}
    return alert


def _route(found: routing.RouteMatch, labels: Mapping[str, str]) -> RouteDecision:
    return RouteDecision(
        route_id=found.route_id,
        receiver=found.receiver,
        group_key=routing.group_key(found, labels),
        group_by=[routing.GROUP_BY_ALL] if found.group_by is None else list(found.group_by),
        timing=found.timing,
        escalation=found.escalation,
    )


def _told(
    rules: Rules, muter: Muter, alert: dict, matched: list[routing.RouteMatch], kind: str | None
) -> list[str]:
    """The receivers told of ``alert``, each muted as the dispatcher mutes it: time
    intervals by the routes bringing that receiver, so one a ``continue`` route brings
    may be told while the alert's first route is in a mute interval."""
    if kind is None:
        return []
    receivers = dict.fromkeys(found.receiver for found in matched)
    wanted = [r for r in receivers if kind != "resolved" or rules.send_resolved.get(r, True)]
    return [r for r in wanted if not muter.reasons([alert], dispatch.telling(r))]
