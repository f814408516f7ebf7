"""The dispatcher: turns incident changes into notifications, per incident and receiver.

Ingest marks an incident's receivers due whenever its alerts change. Here each due
(incident, receiver) goes through the pipeline stages in one transaction:

  group   when is the next message due (group_wait, group_interval, repeat_interval)?
  mute    which firing alerts are held back (flapping, silence, maintenance, inhibition)?
  render  the message context (alerts, incident link, signed ack link), kept in the row
  enqueue one outbox row per URL of the receiver; the outbox sender delivers them

The grouping state lives in the store, so timers survive a restart.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, partial
from typing import Generic, TypeVar

import msgspec

from hub import acklinks, grouping, logs, mute, routing, stored, timeintervals
from hub.channels import schema, url_key
from hub.config import Config, Receiver
from hub.events import SEVERITIES
from hub.incidents import HUB_ACTOR
from hub.inhibit import Inhibitor, source_filter
from hub.outbox import NO_INTEGRATION, settled_entry
from hub.rules import Rules
from hub.silences import Silence, next_look
from hub.store import Store, Target, Tx
from hub.templates import LISTED_MAX, AlertContext, NotificationContext, common_labels
from hub.worker import Isolation, Worker

log = logging.getLogger("hub.dispatch")
R = TypeVar("R")

FLUSH_BATCH = 100
LONG_ROUND_ALERTS = 1000
"""A round whose due incidents hold this many alerts is applied off the event loop. A
look costs 17-25 µs an alert, so below this it holds the loop 25 ms at most; there the
thread hand-off and the interpreter lock shared with the loop cost more than they save
(with every round due off the loop, new-alert ingest, where each event makes a round
with one alert due, measured 0.45-0.46 of the bare endpoint against 0.48-0.57)."""
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Links:
    """How notifications point back at the hub."""

    base_url: str
    ack_secret: bytes
    ack_ttl: float

    def incident_url(self, incident_id: int) -> str:
        """The console's page for the incident: what a person opening the link from a
        chat or an email can read (the JSON API would answer 401 without a token)."""
        return f"{self.base_url}/incidents/{incident_id}"


@dataclass(frozen=True)
class StepPage:
    """The escalation step a page comes from: its policy, step and run as the timeline
    entry ``escalated`` counts them, and since when nobody has held the incident (its
    chain started as it opened or reopened, or an acknowledgement lapsed; or a person
    unacknowledged it, whichever came last), from which the message says how long
    nobody has acknowledged."""

    policy: str
    step: int
    run: int
    unacked_since: float

    def fields(self, now: float) -> dict:
        """The message context's fields naming the step, and how long nobody has
        acknowledged the incident by ``now``."""
        return {
            "escalation_policy": self.policy,
            "escalation_step": self.step,
            "escalation_run": self.run,
            "unacknowledged_for": max(now - self.unacked_since, 0.0),
        }


@dataclass(frozen=True)
class DeadLetter:
    """A message written straight to the dead letters, for a receiver missing from the
    config (``_dead_letter``)."""

    id: int
    incident_id: int
    receiver: str
    error: str

    def log(self) -> None:
        """The warning every dead letter gets (``notification_dead``: someone was not
        told), once its row is committed; it was never attempted."""
        log.warning(
            "event=notification_dead id=%d receiver=%s integration=%s attempt=0 incident=%d"
            " error=%s",
            self.id,
            logs.value(self.receiver),
            NO_INTEGRATION,
            self.incident_id,
            logs.value(self.error),
        )


@dataclass
class Flushed:
    """What one flush did: messages enqueued, the alerts that became muted for a
    receiver, by reason (``hub_notifications_suppressed_total``), and the messages
    dead-lettered to receivers missing from the config."""

    enqueued: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def add(self, other: Flushed) -> None:
        """Take in what one look did (``_look``)."""
        self.enqueued += other.enqueued
        for reason, count in other.suppressed.items():
            self.suppressed[reason] = self.suppressed.get(reason, 0) + count
        self.dead_letters += other.dead_letters


def flush(
    tx: Tx,
    now: float,
    rules: Rules,
    links: Links,
    active_silences: Sequence[Silence],
    isolation: Isolation,
) -> Flushed:
    """Run every due (incident, receiver) through group -> mute -> render -> enqueue,
    each on its own (``isolation``): one that fails is set aside, the others are told."""
    result = Flushed()
    due = tx.due_receivers(now, FLUSH_BATCH)
    if not due:
        return result
    muter_now = muter(rules, now, active_silences, firing_labels(tx, rules))
    look_again = partial(next_look, active_silences, now)
    look = partial(
        _look, muter_now=muter_now, now=now, rules=rules, links=links, look_again=look_again
    )
    for row in due:
        done = isolation.run(
            tx,
            f"incident={row['incident_id']} receiver={logs.value(row['receiver'])}",
            partial(look, row=row),
            partial(_postpone, incident_id=row["incident_id"], receiver=row["receiver"]),
        )
        if done is not None:
            result.add(done)
    return result


def _look(
    tx: Tx,
    row: dict,
    muter_now: mute.Muter,
    now: float,
    rules: Rules,
    links: Links,
    look_again: LookAgain,
) -> Flushed:
    """Grouping's look at one due (incident, receiver); what it did. Its alerts are
    muted for this receiver: time intervals by the routes bringing it to the incident."""
    result = Flushed()
    incident = tx.incident(row["incident_id"])
    alerts = tx.episode_alerts(row["incident_id"])
    if incident is None or not alerts:
        nothing = {"due_at": None, "changed_at": None}
        tx.set_receiver_state(row["incident_id"], row["receiver"], nothing)
        return result
    muted = muter_now.reasons(alerts, telling(row["receiver"]))
    _flush_one(tx, row, incident, alerts, muted, now, rules, links, result, look_again)
    return result


def _postpone(tx: Tx, at: float, incident_id: int, receiver: str) -> None:
    """The look failed: look again ``at``."""
    tx.set_receiver_state(incident_id, receiver, {"due_at": at})


MuteStage = Callable[[list[dict], mute.Brings | None], dict[str, str]]
"""Alerts -> {fingerprint: reason} for those held back at one moment."""
LookAgain = Callable[[float], float]
"""The longest wait -> when to look again at held back alerts (``silences.next_look``)."""


def mute_stage(tx: Tx, now: float, rules: Rules, active_silences: Sequence[Silence]) -> MuteStage:
    """Escalation's mute decision at ``now``, the one grouping makes, so a silenced alert
    neither notifies nor pages; time intervals are those of the routes naming the
    incident's policy (``paging``), whose escalation it is. The firing alerts are read
    through ``tx`` for inhibition."""
    return muter(rules, now, active_silences, firing_labels(tx, rules)).reasons


def firing_labels(tx: Tx, rules: Rules) -> list[dict[str, str]]:
    """What inhibition needs to know: the firing alerts' labels (none without rules)."""
    if not rules.inhibit_rules:
        return []
    return tx.firing_alert_labels(source_filter(rules.inhibit_rules))


def muter(
    rules: Rules,
    now: float,
    active_silences: Sequence[Silence],
    firing: Iterable[mute.Labels],
) -> mute.Muter:
    """The mute stage at ``now`` for the current rules; pure, so the routing decision
    asks exactly what the dispatcher will. A receiver's routes are found again from the
    current rules and the alert's labels, as ingest found them: no state to keep, and
    they follow a reload."""
    moment = datetime.fromtimestamp(now, UTC)

    @cache  # a route's intervals mute it or not for the whole moment, whichever alert
    def held(route: routing.RouteMatch) -> tuple[str, ...]:
        mutes, actives = route.mute_time_intervals, route.active_time_intervals
        return tuple(timeintervals.route_muting(mutes, actives, rules.intervals, moment))

    def route_muting(labels: mute.Labels, brings: mute.Brings | None) -> list[str]:
        if not rules.intervals:  # no route can name one: skip matching every alert
            return []
        return _intervals_muting(_bringing(rules.tree, labels, brings), held)

    inhibitor = Inhibitor(rules.inhibit_rules, firing)
    return mute.Muter(moment, active_silences, inhibitor, route_muting, rules.flapping)


def telling(receiver: str) -> mute.Brings:
    """Routes naming ``receiver``: grouping's message to it is theirs."""
    return lambda route: route.receiver == receiver


def paging(policy: str | None) -> mute.Brings:
    """Routes naming escalation ``policy``: the incident's steps are theirs."""
    return lambda route: route.escalation == policy


def _bringing(
    tree: routing.RouteNode, labels: mute.Labels, brings: mute.Brings | None
) -> list[routing.RouteMatch]:
    """The routes that bring an alert of ``labels`` to whom ``brings`` says: those of its
    matched routes naming the receiver or policy. The first matched route, which owns
    the incident, when none does (the alert reaches it only as part of the incident
    another alert's route brought there). For nobody in particular (the API's per-alert
    mutes) every matched route: the alert is held back only while none tells anyone."""
    matched = routing.match(tree, labels)
    if brings is None:
        return matched
    return [route for route in matched if brings(route)] or matched[:1]


def _intervals_muting(
    routes: list[routing.RouteMatch], held: Callable[[routing.RouteMatch], tuple[str, ...]]
) -> list[str]:
    """The time intervals muting ``routes`` (``held``: one route's): all of theirs when
    every route is muted, none when one is not, as Alertmanager mutes each route's group
    by its own intervals and a receiver one group still tells is told."""
    found: list[str] = []
    for route in routes:
        muting = held(route)
        if not muting:
            return []
        found += muting
    return list(dict.fromkeys(found))


def _flush_one(
    tx: Tx,
    row: dict,
    incident: dict,
    alerts: list[dict],
    muted: dict[str, str],
    now: float,
    rules: Rules,
    links: Links,
    result: Flushed,
    look_again: LookAgain,
) -> None:
    timing = grouping.Timing(**incident["timing"])
    send_resolved = stored.flag(row, "send_resolved")  # text edited in by hand is off
    visible = [a for a in alerts if a["fingerprint"] not in muted]
    # A resolved incident is over for its receivers, even one a person resolved while
    # its alerts still fire: those wanting resolutions are told so once, none is repeated.
    over = incident["status"] == "resolved"
    pairs = [(a["fingerprint"], "resolved" if over else a["status"]) for a in visible]
    state = grouping.Delivery(
        first_seen=_time(row["first_seen"]),
        last_notified_at=_time(row["last_notified_at"]) if row["last_notified_at"] else None,
        last_notified_hash=row["last_notified_hash"],
    )
    digest = grouping.content_hash(pairs, send_resolved)
    due = grouping.when_due(state, pairs, timing, send_resolved, digest)
    unchanged = digest == row["last_notified_hash"]
    told = _told(visible, send_resolved)
    changed_at = _change_time(row, told, now)
    held = _newly_muted(row, muted, result)
    # Nothing is due, every alert is muted or every one left to list resolved while
    # muted ones fire (the message would read "resolved" about an open incident: its
    # resolutions wait for the next message), or a person has acknowledged the
    # incident and nothing changed since: no repeats.
    only_resolutions = not any(a["status"] == "firing" for a in visible)
    hidden = not visible or (bool(muted) and not over and only_resolutions)
    if due is None or hidden or (incident["status"] == "acknowledged" and unchanged):
        _reschedule(tx, row, muted, look_again, timing, held)
        return
    if due.timestamp() > now:
        waiting = {"due_at": due.timestamp(), "changed_at": changed_at, **held}
        tx.set_receiver_state(incident["id"], row["receiver"], waiting)
        return
    if not over and rules.config.receiver(row["receiver"]) is None:
        result.dead_letters.append(_dead_letter(tx, incident, row["receiver"], told, now, links))
    result.enqueued += enqueue(  # to a receiver the config lacks: nothing, and a log line
        tx,
        incident,
        row["receiver"],
        told,
        now,
        rules,
        links,
        changed_at=changed_at,
        resolved=over,
    )
    sent = grouping.Delivery(state.first_seen, _time(now), digest)
    following = grouping.when_due(sent, pairs, timing, send_resolved, digest)
    tx.set_receiver_state(
        incident["id"],
        row["receiver"],
        {
            "last_notified_at": now,
            "last_notified_hash": sent.last_notified_hash,
            "due_at": _reschedule_time(following, muted, look_again, timing),
            "changed_at": None,
            **held,
        },
    )


def _change_time(row: dict, told: list[dict], now: float) -> float | None:
    """When hub saw the change the next message reports (``changed_at``, the start of
    its event latency): the first change received since the last message, else this
    look, when it tells of an alert that a mute held back at the last look and no
    longer does: the time under a silence (or window, inhibition, flapping) is not
    latency, as Alertmanager users count it, so the message counts from the look that
    found the mute over (while alerts are held back a look comes when a silence ends,
    when one is expired early, and at least every group_interval)."""
    if row["changed_at"] is not None:
        return row["changed_at"]
    held_back = set(msgspec.json.decode(row["muted"]))
    return now if any(alert["fingerprint"] in held_back for alert in told) else None


def _told(visible: list[dict], send_resolved: bool) -> list[dict]:
    """The alerts a message lists: all of them, or for a receiver without
    ``send_resolved`` only those still firing, so it reads no resolution in a message
    about the shorter list (Alertmanager drops them too)."""
    return visible if send_resolved else [a for a in visible if a["status"] == "firing"]


def _reschedule(
    tx: Tx, row: dict, muted: dict, look_again: LookAgain, timing: grouping.Timing, held: dict
) -> None:
    """Nothing to send now; while alerts are held back, look again after group_interval,
    or when a silence ends before that. The changes seen so far will never be told
    (muted, or nothing a message shows), so they are not the start of the next
    message's latency."""
    due_at = _reschedule_time(None, muted, look_again, timing)
    tx.set_receiver_state(
        row["incident_id"], row["receiver"], {"due_at": due_at, "changed_at": None, **held}
    )


def _reschedule_time(
    following: datetime | None, muted: dict, look_again: LookAgain, timing: grouping.Timing
) -> float | None:
    candidates = [following.timestamp()] if following else []
    if muted:
        candidates.append(look_again(timing.group_interval))
    return min(candidates) if candidates else None


def _dead_letter(
    tx: Tx, incident: dict, receiver: str, alerts: list[dict], now: float, links: Links
) -> DeadLetter:
    """The message due to a receiver the config no longer has (hub restarted without
    it: a reload may not remove one that open incidents notify), written as a dead
    letter naming it: ``hub notifications --state dead``, HubDeadLetters and the
    incident's timeline (``notification_dead``) show it, and a retry sends it once the
    receiver is back. Only for an incident not resolved: what a removed receiver
    misses of one that is over needs nobody."""
    context = _message_context(tx, incident, receiver, None, alerts, now, links, resolved=False)
    error = (
        f"receiver {receiver!r} is not in the config: add it back and retry, or resolve"
        f" incident {incident['id']}"
    )
    target = Target(receiver, 0, NO_INTEGRATION)
    row = tx.dead_letter(incident["id"], target, context.status, _encode(context), now, error)
    settled_entry(tx, row, "dead", error, now)
    return DeadLetter(row["id"], incident["id"], receiver, error)


def retry(tx: Tx, row: dict, receiver: Receiver, now: float) -> bool:
    """Queue a dead letter again, to the URL it was queued for; False if it is not dead.
    One written for a receiver the config lacked (``_dead_letter``: integration none,
    channel 0) goes to every URL the receiver has now, as grouping would have sent
    it: the letter becomes the message to the first, with its integration, and a copy
    is queued for each other. Each is then sent, counted and logged under its own
    integration."""
    if row["integration"] != NO_INTEGRATION:
        return tx.retry_notification(row["id"], now)
    first, *others = _targets(row["receiver"], receiver.urls)
    if not tx.retry_notification(row["id"], now, first):
        return False
    payload = _encode(row["payload"])
    for target in others:
        tx.enqueue_notification(row["incident_id"], target, row["kind"], payload, now)
    return True


def _targets(receiver: str, urls: list[str]) -> list[Target]:
    """One target per URL of the receiver, each naming the receiver's URLs by digest,
    so that a reload reordering them cannot send its message to another URL
    (``outbox.destination``)."""
    keys = tuple(url_key(url) for url in urls)
    return [Target(receiver, index, schema(url), keys) for index, url in enumerate(urls)]


def notice_missing_receivers(tx: Tx, cfg: Config, now: float) -> None:
    """At start: make each open or acknowledged incident due at once to the receivers
    it notifies that the config no longer has, as if never told, so that grouping's
    next look dead-letters its message there (``_dead_letter``), naming the receiver.
    Its messages there still waiting in the outbox are set aside: that letter says all
    they would, and each of them dead-lettered too would send it twice once all are
    retried. Not where a dead letter already holds the newest message to it (one that
    died while the receiver was there, or again when a letter was retried; this
    letter, at an earlier start), nor once a person dismissed it: two letters for one
    message would tell it twice once both are retried, and count one not told as two.
    Its messages still waiting then die in the outbox, each once, at its own URL."""
    for row in tx.notifying_unknown([r.name for r in cfg.receivers]):
        if not row["lettered"]:
            reason = (
                f"superseded by a dead letter: receiver {row['receiver']!r} is not in the config"
            )
            tx.set_aside_waiting(row["incident_id"], row["receiver"], reason)
            changes = {"last_notified_hash": None, "due_at": now}
            tx.set_receiver_state(row["incident_id"], row["receiver"], changes)


def _newly_muted(row: dict, muted: dict[str, str], result: Flushed) -> dict:
    """Count the alerts this look finds muted that the receiver's last look did not.

    A look comes when a message may be due (a change, a repeat) and, while alerts are
    held back, every group_interval: counting every muted alert at each look made one
    silenced alert a count per group_interval for as long as its silence lasted. Each
    is counted once per receiver when it becomes muted, by what mutes it then; again
    only after a look found it unmuted (its silence ended, it resolved) and a later
    one muted. Returns the state change that remembers them, none if they are the same.
    """
    before = set(msgspec.json.decode(row["muted"]))
    for fingerprint, reason in muted.items():
        if fingerprint not in before:
            result.suppressed[reason] = result.suppressed.get(reason, 0) + 1
    return {} if before == muted.keys() else {"muted": _encode(sorted(muted))}


def enqueue(
    tx: Tx,
    incident: dict,
    receiver_name: str,
    visible: list[dict],
    now: float,
    rules: Rules,
    links: Links,
    changed_at: float | None = None,
    resolved: bool = False,
    step: StepPage | None = None,
) -> int:
    """Render the context once and write one outbox row per URL of the receiver.

    Shared by grouping and escalation steps, so both send the same message with the
    same signed ack link; the timeline records each message once it is sent or dead
    (``outbox``), not here, where nothing is sent yet. ``changed_at``: when hub
    received the change the message reports (an escalation's page reports none).
    ``resolved``: the message says the incident resolved even if alerts still fire (a
    person resolved it), with no ack link. ``step``: the escalation step paging, which a
    firing message names. Returns the rows written."""
    receiver = rules.config.receiver(receiver_name)
    if receiver is None:
        receiver = logs.value(receiver_name)
        missing = "event=receiver_missing incident=%d receiver=%s"
        tx.log(log, logging.WARNING, missing, incident["id"], receiver)
        return 0
    person = rules.config.person_reached(receiver_name)
    context = _message_context(
        tx, incident, receiver_name, person, visible, now, links, resolved, step
    )
    payload = _encode(context)
    for target in _targets(receiver_name, receiver.urls):
        tx.enqueue_notification(incident["id"], target, context.status, payload, now, changed_at)
    return len(receiver.urls)


def _message_context(
    tx: Tx,
    incident: dict,
    receiver: str,
    person: str | None,
    visible: list[dict],
    now: float,
    links: Links,
    resolved: bool,
    step: StepPage | None = None,
) -> NotificationContext:
    """``_context``, with the annotations of the alerts it lists read for it."""
    listed = _listed(visible)
    annotations = tx.alert_annotations([a["id"] for a in listed])
    return _context(
        incident, receiver, person, visible, listed, annotations, now, links, resolved, step
    )


def _context(
    incident: dict,
    receiver: str,
    person: str | None,
    visible: list[dict],
    listed: list[dict],
    annotations: dict[int, dict[str, str]],
    now: float,
    links: Links,
    resolved: bool,
    step: StepPage | None = None,
) -> NotificationContext:
    """The message's context. Its ack link acknowledges as ``person``, the one person
    the receiver reaches, if any. Once someone has acknowledged the incident (a new
    alert may join it after), it names who and when and carries no ack link: the
    message must not read as a fresh page that nobody has taken. A firing message
    about an incident open again because an acknowledgement lapsed names whose it was
    and why, and one an escalation step sends names the step. A resolution by a
    person names who and when, since the alerts it lists may still fire at their
    source."""
    firing = not resolved and any(a["status"] == "firing" for a in visible)
    acked_at = incident["acknowledged_at"]
    by_person = resolved and incident["resolved_by"] not in (None, HUB_ACTOR)
    lapsed = firing and incident["lapsed_by"] is not None
    title, severity = _headline(incident, visible, firing)
    unlisted_firing = sum(a["status"] == "firing" for a in visible) - sum(
        a["status"] == "firing" for a in listed
    )
    return NotificationContext(
        incident_id=incident["id"],
        status="firing" if firing else "resolved",
        severity=severity,
        title=title,
        alerts=[
            AlertContext(
                fingerprint=a["fingerprint"],
                status=a["status"],
                severity=a["severity"],
                summary=a["summary"],
                starts_at=_time(a["fired_at"] or a["first_seen"]),
                ends_at=_time(a["resolved_at"]) if a["status"] == "resolved" else None,
                labels=a["labels"],
                annotations=annotations.get(a["id"], {}),
            )
            for a in listed
        ],
        unlisted_firing=unlisted_firing,
        unlisted_resolved=len(visible) - len(listed) - unlisted_firing,
        shared_labels=(
            common_labels([a["labels"] for a in visible]) if len(listed) < len(visible) else None
        ),
        incident_url=links.incident_url(incident["id"]),
        ack_url=_ack_url(incident, person, now, links) if firing and acked_at is None else "",
        receiver=receiver,
        acknowledged_by=incident["acknowledged_by"] if acked_at is not None else None,
        acknowledged_via=incident["acknowledged_via"] if acked_at is not None else None,
        acknowledged_at=_time(acked_at) if acked_at is not None else None,
        resolved_by=incident["resolved_by"] if by_person else None,
        resolved_via=incident["resolved_via"] if by_person else None,
        resolved_at=_time(incident["resolved_at"]) if by_person else None,
        lapsed_by=incident["lapsed_by"] if lapsed else None,
        lapse_reason=incident["lapse_reason"] if lapsed else None,
        **(step.fields(now) if firing and step else {}),
    )


def _listed(told: list[dict]) -> list[dict]:
    """The alerts a message lists, in the order told: all, or past ``LISTED_MAX`` the
    firing ones first, the most severe first, the ones hub has known longest first."""
    if len(told) <= LISTED_MAX:
        return told
    ranked = heapq.nsmallest(
        LISTED_MAX,
        told,
        key=lambda a: (a["status"] != "firing", SEVERITIES.index(a["severity"]), a["id"]),
    )
    kept = {a["id"] for a in ranked}
    return [a for a in told if a["id"] in kept]


def _headline(incident: dict, listed: list[dict], firing: bool) -> tuple[str, str]:
    """The message's title and severity: the incident's, unless its title alert is not
    among those the message lists (a silence or an inhibition holds it back), as a
    subject must not name an alert the body leaves out, nor a page read critical for
    a critical alert that is silenced. Then they are, by the incident's own rule, the
    summary and severity of the most severe alert listed (of those firing, on a firing
    message), the one hub has known longest among equals."""
    if not listed or any(a["id"] == incident["title_alert_id"] for a in listed):
        return incident["title"], incident["severity"]
    candidates = [a for a in listed if a["status"] == "firing"] if firing else listed
    lead = min(candidates, key=lambda a: (SEVERITIES.index(a["severity"]), a["id"]))
    return lead["summary"], lead["severity"]


def _ack_url(incident: dict, person: str | None, now: float, links: Links) -> str:
    expires = _time(now + links.ack_ttl)
    token = acklinks.sign(links.ack_secret, incident["id"], incident["episode"], expires, person)
    return links.base_url + acklinks.path(token, person)


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class NotifyingWorker(Worker, Generic[R]):
    """A worker whose round is one store write that may notify: it reads the rules and
    links as of now, runs ``step`` in a transaction with the silences active in it, and
    hands the result to ``on_done``. The dispatcher and the escalator are two of these.

    The silences are read inside the write: read before it, they missed a silence that
    a write queued ahead expired or narrowed, and the round held again the alerts and
    steps that write had just let go, until grouping's or the escalator's next look.

    A round reads every alert of each due incident (one of 200,000 alerts held the
    loop 2.6-3.4 s), so one whose due incidents hold ``LONG_ROUND_ALERTS`` or more is
    applied off the event loop, as a delivery of thousands of alerts is
    (``Store.write``'s ``long``): probes, scrapes and reads are answered meanwhile,
    and writes wait for it as they would behind any other."""

    due_table: str
    """Where this worker's due incidents are (``Store.due_alerts_reach``)."""

    step: Callable[[Tx, float, Rules, Links, list[Silence], Isolation], R]
    """The round's work in its transaction (``flush``, ``escalation.fire_due``)."""

    def __init__(
        self,
        store: Store,
        rules: Callable[[], Rules],
        links: Callable[[], Links],
        silences: Callable[[datetime, Tx], list[Silence]],
        on_done: Callable[[R], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock)
        self.store = store
        self.rules = rules
        self.links = links
        self.silences = silences
        self.on_done = on_done

    async def round(self) -> bool:
        now = self.clock()
        rules, links = self.rules(), self.links()
        moment = datetime.fromtimestamp(now, UTC)
        result = await self.write_round(
            self.store,
            now,
            lambda tx, isolation: self.step(
                tx, now, rules, links, self.silences(moment, tx), isolation
            ),
            long=self.store.due_alerts_reach(self.due_table, now, LONG_ROUND_ALERTS),
        )
        self.on_done(result)
        return self.more(result)

    def more(self, result: R) -> bool:
        """True when the round hit its batch limit and work is probably left."""
        raise NotImplementedError


class Dispatcher(NotifyingWorker[Flushed]):
    """The background task that flushes due (incident, receiver) pairs."""

    name = "dispatcher"
    step = staticmethod(flush)
    due_table = "incident_receivers"

    def more(self, result: Flushed) -> bool:
        return result.enqueued >= FLUSH_BATCH

    def next_due(self) -> float | None:
        return self.store.next_receiver_due()
