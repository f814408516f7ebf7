"""Correlation: an alert that changed joins the incident of its group, and the
incident is brought up to date. Runs inside the ingest transaction.

The group is the first matching route, named by its matchers rather than its position,
and its ``group_by`` values (``routing.group_key``): alerts from different sources with
the same group labels share one incident, and a reload that inserts or reorders routes
does not move a route's alerts into another route's incident.
Routes reached through ``continue`` add their receivers to that incident, and each
alert joining it adds those its own routes reach. An open incident keeps the timing
and escalation it was created with, so a config reload never changes an incident
half-way through (one following no policy takes a joining alert's route's).
"""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime
from typing import NamedTuple

from hub import escalation, incidents, routing, snoozes
from hub.alerts import Outcome, matchable
from hub.errors import Conflict, NotFound
from hub.events import SEVERITIES
from hub.incidents import HUB_ACTOR
from hub.rules import Rules
from hub.store import Tx

_POSITIONAL_KEY = re.compile(r"(0(?:\.\d+)*):(\{.*\})", re.DOTALL)


def correlate(
    tx: Tx, alert: dict, outcome: Outcome, was_firing: bool, now: float, rules: Rules
) -> int | None:
    """Place a stored alert that changed in its incident (if it needs one) and
    refresh that incident.

    ``was_firing`` is the alert's status before this event: the incident's count of
    active alerts moves by the difference, so no change ever scans the incident.
    """
    incident = tx.incident(alert["incident_id"]) if alert.get("incident_id") else None
    firing = alert["status"] == "firing"
    over = incident is None or incident["status"] == "resolved"
    if over and (outcome is Outcome.ACKNOWLEDGED or (was_firing and firing)):
        # An alert that fired on through a person's resolve: the incident is over for
        # its receivers while it fires. A sender's acknowledgement of it, or a new
        # summary or severity (its history records it), must not open an incident and
        # page; only the alert resolving and firing again does.
        return incident["id"] if incident else None
    delta = 0
    if firing and (incident is None or incident["status"] == "resolved"):
        incident = place(tx, alert, now, rules)
        tx.update("alerts", alert["id"], {"incident_id": incident["id"]})
        _join(tx, incident, alert, now)
        delta = 1
    elif incident is not None and outcome is Outcome.CHANGED:
        tx.add_timeline(incident["id"], now, f"alert_{alert['status']}", None, _about(alert))
        if firing != was_firing:
            delta = 1 if firing else -1
    if incident is None:
        return None
    if outcome is Outcome.ACKNOWLEDGED and incident["status"] == "open":
        acknowledge(tx, incident, now, f"source:{alert['source']}", "acknowledged by the sender")
        incident = tx.incident(incident["id"])
    refresh(tx, incident, alert, delta, now)
    return incident["id"]


def insert_new(tx: Tx, row: dict, now: float, rules: Rules) -> dict:
    """Store the first event's alert row, inside its incident when it fires.

    The incident is found (or opened) before the INSERT, so the row is written once
    with its ``incident_id``: a second write of a new alert's row was the single
    biggest cost of a new alert (``python -m bench.ingest``). An incident it opens or
    reopens names it as its title's alert, and one it brings receivers to names it in
    the timeline: those take its id first (``_give_id``). One it only joins, the
    common case, does not, and the INSERT takes the id itself: a statement less.
    """
    alert = dict(row)
    incident = place(tx, alert, now, rules) if row["status"] == "firing" else None
    alert["incident_id"] = incident["id"] if incident else None
    alert["id"] = tx.insert("alerts", alert)
    if incident is not None:
        _join(tx, incident, alert, now)
        refresh(tx, incident, alert, 1, now)
    return alert


def place(tx: Tx, alert: dict, now: float, rules: Rules) -> dict:
    """The incident a firing alert belongs to: its group's open one, else the
    resolved one reopened within the window, else a new one."""
    labels = matchable(alert)
    matched = routing.match(rules.tree, labels)
    owner = matched[0]
    key = routing.group_key(owner, labels)
    last = tx.latest_incident(key, now)
    placement = incidents.place(
        last["status"] if last else None,
        _time(last["resolved_at"]) if last and last["resolved_at"] else None,
        _time(now),
        rules.reopen_window,
    )
    if placement == "join" and last is not None:
        return _reach(tx, last, alert, matched, now, rules)
    _give_id(tx, alert)
    if placement == "reopen" and last is not None:
        # The problem is back: whoever acknowledged the last episode has not taken this
        # one, so the incident is open and pages again (the timeline keeps the old ack),
        # and the last episode's ack links no longer acknowledge it; the alerts that
        # resolved in it are left out of its messages.
        changes = {
            **_reopening_headline(tx, last["id"], alert),
            "status": "open",
            "episode": last["episode"] + 1,
            **incidents.marked("resolved"),
            **incidents.marked("acknowledged"),
            "updated_at": now,
        }
        tx.update("incidents", last["id"], changes)
        tx.end_episode(last["id"], last["episode"])
        tx.add_timeline(last["id"], now, "reopened", HUB_ACTOR, {})
        escalation.restart(tx, last["id"], now)
        return _reach(tx, {**last, **changes}, alert, matched, now, rules)
    incident = _open(tx, alert, key, matched, now, rules)
    policy = rules.config.escalation(incident["escalation"])
    escalation.begin(tx, incident["id"], policy, now + owner.timing.group_wait)
    return incident


def _give_id(tx: Tx, alert: dict) -> None:
    """An alert not stored yet (``insert_new``) takes its id now, for an incident to name
    it before its INSERT, which then stores it with that id."""
    if "id" not in alert:
        alert["id"] = tx.next_alert_id()


def _receivers(matched: list[routing.RouteMatch]) -> list[str]:
    """The receivers the matched routes reach, each once, in route order."""
    return list(dict.fromkeys(found.receiver for found in matched))


def _policy(matched: list[routing.RouteMatch]) -> str | None:
    """The escalation policy of the first matched route naming one, the owner's first:
    a route reached through ``continue`` (the paging route behind one that also tells
    a team) still pages on-call when the route owning the incident names none."""
    return next((found.escalation for found in matched if found.escalation), None)


def _reach(
    tx: Tx,
    incident: dict,
    alert: dict,
    matched: list[routing.RouteMatch],
    now: float,
    rules: Rules,
) -> dict:
    """An alert joining (or reopening) an incident brings the receivers its own routes
    reach, as Alertmanager's per-route groups would tell them: a critical alert joining
    the incident a warning opened reaches the paging route behind a ``continue``. They
    start grouping from now, with the incident's timing, and the route's escalation
    starts (from the end of ``group_wait``) if the incident follows none yet."""
    missing = [r for r in _receivers(matched) if r not in incident["receivers"]]
    policy = None if incident["escalation"] else _policy(matched)
    if not missing and policy is None:
        return incident
    _give_id(tx, alert)
    timing = incident["timing"]
    changes: dict = {"receivers": [*incident["receivers"], *missing]}
    for receiver in missing:
        waits = (timing["group_wait"], timing["group_interval"])
        tx.add_receiver(
            incident["id"], receiver, rules.send_resolved.get(receiver, True), now, waits
        )
    detail: dict = {"receivers": missing, "alert_id": alert["id"]}
    if policy is not None:
        changes["escalation"] = detail["escalation"] = policy
        start = now + timing["group_wait"]
        escalation.begin(tx, incident["id"], rules.config.escalation(policy), start)
    tx.update("incidents", incident["id"], changes)
    tx.add_timeline(incident["id"], now, "receivers_added", None, detail)
    return {**incident, **changes, "receivers_marked": False}


def _reopening_headline(tx: Tx, incident_id: int, alert: dict) -> dict:
    """The title and severity of an incident that ``alert`` reopens: the alert's, unless
    one still firing in it (a person resolved it while some still fired) is more
    severe. The severity it kept when resolved was its last episode's worst, which may
    be over."""
    firing = tx.highest_active_severity(incident_id, SEVERITIES)
    if firing is None or SEVERITIES.index(firing) >= SEVERITIES.index(alert["severity"]):
        return {**_titled_by(alert), "severity": alert["severity"]}
    leader = tx.first_firing_alert(incident_id, firing)
    return {**_titled_by(leader or alert), "severity": firing}


def rekey_positional(tx: Tx, tree: routing.RouteNode, since: float) -> int:
    """Give each incident an older hub keyed by its route's position (``0.3:{...}``)
    the key of the route now at that position, so its group's alerts still join it
    after the upgrade; returns how many were re-keyed.

    Run at start, before any alert arrives: the config then is, in the normal upgrade,
    the one those incidents were opened under. Only incidents an alert may still join or
    reopen are re-keyed (open, acknowledged, resolved since ``since``). One whose
    position the config no longer has keeps its key: its alerts stay in it, and its
    group's next new alert opens a new incident.
    """
    rekeyed = 0
    for incident_id, key in tx.positional_group_keys(since):
        found = _POSITIONAL_KEY.fullmatch(key)
        route = routing.route_at(tree, found[1]) if found else None
        if found and route is not None:
            tx.update("incidents", incident_id, {"group_key": f"{route.key}:{found[2]}"})
            rekeyed += 1
    return rekeyed


def _join(tx: Tx, incident: dict, alert: dict, now: float) -> None:
    """The alert (stored, with its id) joins: a timeline entry. Its receivers group
    it from the incident's grouping state, which ``_open`` started."""
    tx.add_timeline(incident["id"], now, "alert_joined", None, _about(alert))


def _open(
    tx: Tx,
    alert: dict,
    key: str,
    matched: list[routing.RouteMatch],
    now: float,
    rules: Rules,
) -> dict:
    """A new incident for the alert's group, owned by the first matched route, with the
    grouping state of each receiver the alert's routes reach: it keeps them for life (a
    reopen too); an alert that joins later adds only those its own routes reach anew."""
    owner = matched[0]
    labels = matchable(alert)
    names = sorted(labels) if owner.group_by is None else owner.group_by
    row = {
        "group_key": key,
        "route_id": owner.route_id,
        "status": "open",
        "severity": alert["severity"],
        **_titled_by(alert),
        "labels": {name: labels.get(name, "") for name in names},
        "receivers": _receivers(matched),
        "timing": {
            "group_wait": owner.timing.group_wait,
            "group_interval": owner.timing.group_interval,
            "repeat_interval": owner.timing.repeat_interval,
        },
        "escalation": _policy(matched),
        "opened_at": now,
        "updated_at": now,
    }
    incident_id = tx.insert("incidents", row)
    tx.add_timeline(incident_id, now, "opened", HUB_ACTOR, {"group": row["labels"]})
    waits = (owner.timing.group_wait, owner.timing.group_interval)
    for receiver in row["receivers"]:
        wants_resolved = rules.send_resolved.get(receiver, True)
        tx.add_receiver(incident_id, receiver, wants_resolved, now, waits)
    return {
        **row,
        "id": incident_id,
        "acknowledged_at": None,
        "resolved_at": None,
        "active_alerts": 0,
    }


def refresh(tx: Tx, incident: dict, alert: dict, delta: int, now: float) -> None:
    """Move the active count by ``delta``; recompute status, then severity and title
    while the incident is not resolved (``_title_after``), or the ones it keeps once it
    is (``_headline``); wake the receivers, unless the incident was read at ``now``
    with each already woken (``Tx.latest_incident``: the statement would change nothing).

    ``incident`` is as read (or opened) in this transaction, before the move: the
    count is moved in SQL and the status decided from the read value plus ``delta``,
    so the row is not read again.
    """
    if delta:
        tx.count_active(incident["id"], delta)
    active = incident["active_alerts"] + delta > 0
    acked = incident["acknowledged_at"] is not None
    status = incidents.next_status(incident["status"], ["firing"] if active else [], acked)
    changes: dict = {}
    if status != incident["status"]:
        changes["status"] = status
        if status == "resolved":
            over = incidents.marked("resolved", now, HUB_ACTOR) | snoozes.CLEARED
            changes |= over | _headline(tx, incident["id"])
            tx.add_timeline(
                incident["id"], now, "resolved", HUB_ACTOR, {"reason": "all alerts resolved"}
            )
            escalation.wind_up(tx, incident["id"], now)
    if status != "resolved":
        severity = _severity_after(tx, incident, alert, delta)
        if severity != incident["severity"]:
            changes["severity"] = severity
        changes |= _title_after(tx, incident, alert, delta, severity)
    if changes:
        tx.update("incidents", incident["id"], {**changes, "updated_at": now})
    if not incident.get("receivers_marked"):
        tx.mark_receivers_due(incident["id"], now)


def _severity_after(tx: Tx, incident: dict, alert: dict, delta: int) -> str:
    """The incident's severity after the change: its firing alerts' highest.

    An alert starting to fire beside others that fire only raises it, and the
    incident's severity already is theirs: no query. Otherwise the index is probed,
    one query per severity from the highest down (three for a warning incident).
    """
    if delta > 0 and incident["active_alerts"] > 0:
        return min(incident["severity"], alert["severity"], key=SEVERITIES.index)
    return tx.highest_active_severity(incident["id"], SEVERITIES) or incident["severity"]


def _titled_by(alert: dict) -> dict:
    """An incident's title is the summary of one of its alerts, kept with its id."""
    return {"title": alert["summary"], "title_alert_id": alert["id"]}


def _headline(tx: Tx, incident_id: int) -> dict:
    """The title and severity an incident keeps once resolved: those of the most severe
    alert of its episode, the first among equals, as its pages led with. Whichever
    alert resolved last would otherwise leave its own, a milder one's title: an
    incident paged as critical would read as resolved at "error" and drop out of
    ``?severity=critical``."""
    top = tx.episode_headline(incident_id)
    return {**_titled_by(top), "severity": top["severity"]} if top else {}


def _title_after(tx: Tx, incident: dict, alert: dict, delta: int, severity: str) -> dict:
    """The title's change, if any, after ``alert`` changed in an incident still open:
    messages lead with its most severe firing alert. An alert that raises the
    incident's severity (joining, firing again or growing worse) takes the title; the
    alert holding it hands it on when it stops firing or eases below ``severity``, to
    the most severe firing one hub has known longest. Alerts of the same severity
    joining leave it be, so the headline does not move with every arrival."""
    raises = SEVERITIES.index(severity) < SEVERITIES.index(incident["severity"])
    if raises and alert["status"] == "firing" and alert["severity"] == severity:
        return _titled_by(alert) if alert["id"] != incident["title_alert_id"] else {}
    holds = alert["id"] == incident["title_alert_id"]
    if holds and (delta < 0 or alert["severity"] != severity):
        heir = tx.first_firing_alert(incident["id"], severity)
        return _titled_by(heir) if heir else {}
    return {}


def acknowledge(
    tx: Tx,
    incident: dict,
    now: float,
    actor: str,
    comment: str,
    snooze: float | None = None,
    via: str | None = None,
) -> None:
    """Record an acknowledgement. It lasts until the incident resolves, or lapses after
    ``snooze`` seconds, else after its policy's ``ack_timeout`` (``hub.snoozes``). The
    holder acknowledging again keeps when they took it: only the lapse moves. ``via``
    is the token that named ``actor``, if one did (``incidents.said``)."""
    lapse = snoozes.lapse(now, snooze, escalation.ack_timeout(tx, incident["id"]))
    since = incident["acknowledged_at"] or now
    taken = {"status": "acknowledged", **incidents.marked("acknowledged", since, actor, via)}
    tx.update("incidents", incident["id"], {**taken, **lapse, "updated_at": now})
    kind = "acknowledged" if snooze is None else "snoozed"
    detail = incidents.said(comment, via) | snoozes.until(lapse)
    tx.add_timeline(incident["id"], now, kind, actor, detail)


class Acted(NamedTuple):
    """What an action left: the incident as stored, and whether the action changed it
    (a resolve of a resolved incident does not, nor the holder's repeated ack)."""

    incident: dict
    changed: bool


def act(
    tx: Tx,
    incident_id: int,
    action: str,
    actor: str,
    comment: str,
    now: float,
    episode: int | None = None,
    snooze: float | None = None,
    via: str | None = None,
) -> Acted:
    """A person acknowledges (for ``snooze`` seconds, with action ``snooze``),
    unacknowledges or resolves an incident, recorded with who and why, and ``via`` the
    token that named them, if one did. ``episode``,
    when given, is the only episode this may act on (an ack link's). Resolving a
    resolved incident changes and records nothing, whoever asks: scripts and
    runbooks retry a resolve, and no one holds a resolution as one holds an ack."""
    incident = tx.incident(incident_id)
    if incident is None:
        raise NotFound(f"no incident with id {incident_id}")
    if episode is not None and incident["episode"] != episode:
        _refuse(incident, f"has reopened since episode {episode}")
    if incident["status"] == "resolved":
        if action == "resolve":
            return Acted(incident, changed=False)
        _refuse(incident, "is already resolved")
    if action in ("ack", "snooze"):
        if not _take(tx, incident, now, actor, comment, snooze, via):
            return Acted(incident, changed=False)
    elif action == "unack":
        if incident["status"] != "acknowledged":
            _refuse(incident, "is not acknowledged")
        opened = {"status": "open", **incidents.marked("acknowledged")}
        tx.update("incidents", incident_id, {**opened, **snoozes.CLEARED, "updated_at": now})
        tx.add_timeline(incident_id, now, "unacknowledged", actor, incidents.said(comment, via))
        escalation.resume(tx, incident_id, now)
    elif action == "resolve":
        resolved = {"status": "resolved", **incidents.marked("resolved", now, actor, via)}
        resolved |= _headline(tx, incident_id)
        tx.update("incidents", incident_id, {**resolved, **snoozes.CLEARED, "updated_at": now})
        tx.add_timeline(incident_id, now, "resolved", actor, incidents.said(comment, via))
        escalation.wind_up(tx, incident_id, now)
    tx.mark_receivers_due(incident_id, now)
    return Acted(tx.incident(incident_id), changed=True)  # type: ignore[arg-type]


def _take(
    tx: Tx,
    incident: dict,
    now: float,
    actor: str,
    comment: str,
    snooze: float | None,
    via: str | None,
) -> bool:
    """Acknowledge, for a while when ``snooze`` is given; whether that changed anything.
    The holder may do it again: a snooze replaces their last one and a plain ack ends
    it, while a plain ack of a plain ack changes nothing (under an ``ack_timeout`` it
    does not restart the timeout: a second click is no new decision). Anyone else is
    refused."""
    if incident["status"] == "acknowledged":
        _refuse_taking_over(incident, actor)
        if snooze is None and incident["snooze_reason"] != snoozes.SNOOZE:
            return False
    acknowledge(tx, incident, now, actor, comment, snooze, via)
    return True


def _refuse_taking_over(incident: dict, actor: str) -> None:
    """Acknowledging an incident someone else holds is a conflict naming who, since
    when and, if it lapses, until when, so the caller never takes the answer for having
    taken it (they unacknowledge first to take it over, or wait); the holder may
    acknowledge again (``_take``)."""
    holder, since, until = (
        incident[k] for k in ("acknowledged_by", "acknowledged_at", "snoozed_until")
    )
    if holder != actor:
        held = f"by {holder} at {snoozes.stamp(since)}"
        if until is not None:
            held += f" until {snoozes.stamp(until)}"
        _refuse(
            incident,
            f"is already acknowledged {held}",
            acknowledged_by=holder,
            acknowledged_at=_time(since),
            acknowledged_until=None if until is None else _time(until),
        )


def _refuse(incident: dict, why: str, **members: object) -> typing.NoReturn:
    """A 409 for an action on ``incident``: the words say why, and its members give a
    script the incident's status (and who holds it) without parsing them."""
    raise Conflict(
        f"incident {incident['id']} {why}", incident_status=incident["status"], **members
    )


def _about(alert: dict) -> dict:
    return {
        "alert_id": alert["id"],
        "fingerprint": alert["fingerprint"],
        "summary": alert["summary"],
        "status": alert["status"],
        "severity": alert["severity"],
    }


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
