"""Escalation: an incident's policy runs step by step until someone acknowledges.

When an incident opens, its route's ``[[escalations]]`` policy is copied onto it
(``begin``), so a reload or restart half-way through changes nothing. The store is
the source of truth: each incident's next step and its due time are a row, and the
``Escalator`` worker sleeps until the earliest due time. After a restart the worker
simply finds the steps that fell due while the hub was down and runs them at once.

A step that falls due:
  notified             the incident is open: the step's targets get the incident's
                       unmuted firing alerts through the outbox (its own receivers
                       excepted: grouping tells them), and the next step is set
  held_muted           every firing alert is muted (silence, maintenance, ...): the step
                       waits (``_hold``), looked at again when a silence may end, when
                       one ends early (``unhold``) and at least every ``HOLD_SECONDS``,
                       and runs once an alert is not muted, with the steps that fell
                       due meanwhile (``_late_steps``). A mute does not use the chain
                       up: on-call is paged for an incident that still fires once its
                       silence ends. Counted once per hold
  skipped_nobody_on_call
                       every target found nobody (a schedule with nobody on call, or a
                       receiver or schedule a reload removed): the timeline names them,
                       and the next step is set, as PagerDuty and Grafana OnCall flag an
                       escalation level with nobody on call
  skipped_acknowledged the chain pauses; ``resume`` (unacknowledge) picks it up again
  skipped_resolved     the chain ends; a reopened incident ``restart``s it
  told_resolved        the incident resolved (``wind_up`` made the chain due at once):
                       the targets steps paged are told, and the chain ends

The same worker wakes incidents whose acknowledgement lapsed (``hub.snoozes``): a
snooze that ended (``snooze_ended``) or an ack past its policy's ``ack_timeout``
(``ack_timed_out``). Each is open again and its chain starts over (``restart``), as
if nobody had acknowledged; its first step is then due in the same round. The chain
keeps why it started over (``restarted_by``), and its timeline entries say so.

Step times count from when the chain started: step ``i`` of run ``r`` is due at
``started_at + r * (last step's after + repeat_after) + steps[i].after``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import msgspec

from hub import config, dispatch, logs, oncall, routing, snoozes
from hub.config import SCHEDULE_PREFIX
from hub.dispatch import Links
from hub.rules import Rules
from hub.silences import Silence, next_look
from hub.store import Tx
from hub.worker import Isolation

log = logging.getLogger("hub.escalation")

BATCH = 100
NOBODY_ON_CALL = "skipped_nobody_on_call"
HELD = "held_muted"
HeldBack = Callable[[list[dict]], dict[str, str]]
"""Alerts -> {fingerprint: reason} for those an incident's steps hold back now."""
HOLD_SECONDS = 60.0
"""The longest a held step waits before it is looked at again: a maintenance time
interval, an inhibition or flapping may end at any moment, unlike a silence."""


class Step(msgspec.Struct, frozen=True):
    after: float
    notify: list[str]


class Plan(msgspec.Struct, frozen=True):
    """The copy of a policy an incident keeps (times in seconds)."""

    steps: list[Step]
    repeat: int = 0
    repeat_after: float = 0.0
    ack_timeout: float | None = None

    @classmethod
    def from_policy(cls, policy: config.Escalation) -> Plan:
        steps = [Step(float(s.after), list(s.notify)) for s in policy.steps]
        timeout = None if policy.ack_timeout is None else float(policy.ack_timeout)
        return cls(steps, policy.repeat, float(policy.repeat_after), timeout)

    def due(self, started_at: float, index: int) -> float | None:
        """When step ``index`` (counting across repeats) is due; None past the end."""
        if index >= len(self.steps) * (self.repeat + 1):
            return None
        run, step = divmod(index, len(self.steps))
        run_length = self.steps[-1].after + self.repeat_after
        return started_at + run * run_length + self.steps[step].after


@dataclass
class Fired:
    """What one round did: steps and lapsed acknowledgements by outcome, incidents
    woken (their receivers are due), and notifications enqueued."""

    outcomes: dict[str, int] = field(default_factory=dict)
    woken: int = 0
    enqueued: int = 0

    def count(self, outcome: str, times: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + times

    def add(self, other: Fired) -> None:
        """Take in what one incident's step did (``_fire``)."""
        for outcome, times in other.outcomes.items():
            self.count(outcome, times)
        self.woken += other.woken
        self.enqueued += other.enqueued


def begin(tx: Tx, incident_id: int, policy: config.Escalation | None, start: float) -> None:
    """Copy the policy onto a newly opened incident and schedule its first step, the
    chain starting at ``start``: when the route's ``group_wait`` ends, as its
    receivers are first told. So a burst pages on-call as one, and an alert that
    fires and resolves within the wait pages nobody, as Alertmanager in front of
    PagerDuty would."""
    if policy is None:
        return
    plan = Plan.from_policy(policy)
    row = {
        "id": incident_id,
        "policy": policy.name,
        "plan": msgspec.to_builtins(plan),
        "started_at": start,
        "next_step": 0,
        "due_at": plan.due(start, 0),
    }
    tx.insert("escalations", row)


def restart(tx: Tx, incident_id: int, now: float, cause: str | None = None) -> None:
    """A reopened incident runs its chain again from the first step, and so does one
    whose acknowledgement lapsed (``cause``: ``snooze_ended`` or ``ack_timed_out``)."""
    row = tx.escalation(incident_id)
    if row is not None:
        changes = {
            "started_at": now,
            "next_step": 0,
            "due_at": _plan(row).due(now, 0),
            "held_at": None,
            "restarted_by": cause,
        }
        tx.update("escalations", incident_id, changes)


def wind_up(tx: Tx, incident_id: int, now: float) -> None:
    """The incident resolved: if its steps paged anyone, the chain is due now, so the
    worker tells them (see ``_tell_resolved``) without waiting for the next step."""
    row = tx.escalation(incident_id)
    if row is not None and row["paged"]:
        tx.update("escalations", incident_id, {"due_at": now})


def resume(tx: Tx, incident_id: int, now: float) -> None:
    """Unacknowledged: the pending step is due at its time, or now if that has passed.
    The chain keeps its start, so its steps keep their times; when this happened is
    kept apart (``unacked_at``), for its pages to count the time unacknowledged from."""
    row = tx.escalation(incident_id)
    if row is None:
        return
    due = _plan(row).due(row["started_at"], row["next_step"])
    changes = {"due_at": None if due is None else max(due, now), "unacked_at": now}
    tx.update("escalations", incident_id, changes)


def unhold(tx: Tx, now: float) -> int:
    """A mute may have ended before its time (a silence expired early, a reload that
    removed a silence, window, interval or inhibit rule): every held step is due now,
    not at its next look, up to ``HOLD_SECONDS`` later; and so is grouping's next look
    for every receiver that held alerts back, not up to ``group_interval`` later, so
    alerts that fired under the silence are told now. One still muted is held again,
    without a second timeline entry or count. Returns the steps and receivers made
    due: the escalator and the dispatcher should look now."""
    return tx.unhold_escalations(now) + tx.wake_muted_receivers(now)


def ack_timeout(tx: Tx, incident_id: int) -> float | None:
    """How long an acknowledgement of the incident lasts under the policy it copied
    (None: until it resolves)."""
    row = tx.escalation(incident_id)
    return None if row is None else _plan(row).ack_timeout


def fire_due(
    tx: Tx,
    now: float,
    rules: Rules,
    links: Links,
    silences: list[Silence],
    isolation: Isolation,
) -> Fired:
    """Wake the incidents whose acknowledgement lapsed, then run every step due at
    ``now`` (the write function of one worker round), each incident's on its own
    (``isolation``): one that fails is set aside and the others are paged."""
    fired = Fired()
    for incident_id in tx.due_snoozes(now, BATCH):
        woken = isolation.run(
            tx,
            f"incident={incident_id}",
            partial(_wake, incident_id=incident_id, now=now),
            partial(snoozes.postpone, incident_id=incident_id),
        )
        if woken is not None:
            fired.add(woken)
    due = tx.due_escalations(now, BATCH)
    if not due:
        return fired
    muted = dispatch.mute_stage(tx, now, rules, silences)
    fire = partial(_fire, muted=muted, now=now, rules=rules, links=links, silences=silences)
    for incident_id in due:
        done = isolation.run(
            tx,
            f"incident={incident_id}",
            partial(fire, incident_id=incident_id),
            partial(_postpone, incident_id=incident_id),
        )
        if done is not None:
            fired.add(done)
    return fired


def _wake(tx: Tx, incident_id: int, now: float) -> Fired:
    """An incident whose acknowledgement lapsed is open again and its chain starts over."""
    fired = Fired()
    ending = snoozes.wake(tx, incident_id, now)
    if ending is not None:
        restart(tx, incident_id, now, ending)
        fired.count(ending)
        fired.woken += 1
    return fired


def _fire(
    tx: Tx,
    incident_id: int,
    muted: dispatch.MuteStage,
    now: float,
    rules: Rules,
    links: Links,
    silences: list[Silence],
) -> Fired:
    """Run the step due on one incident's chain; what it did."""
    fired = Fired()
    row = tx.escalation(incident_id)
    if row is None:
        return fired
    last = row["next_step"]
    incident = tx.incident(incident_id)
    # Time intervals by the routes naming the policy: a team route with `continue` muted
    # at night in front of the paging route does not hold the paging route's steps.
    held_back = partial(muted, brings=dispatch.paging(incident["escalation"] if incident else None))
    if incident is not None and incident["status"] == "resolved" and row["paged"]:
        told, enqueued = _tell_resolved(tx, incident, row, held_back, now, rules, links)
        outcome = "told_resolved" if told else "skipped_resolved"
        fired.enqueued += enqueued
    else:
        firing = _firing(tx, incident) if incident else []
        held = held_back(firing)
        visible = [a for a in firing if a["fingerprint"] not in held]
        outcome = _outcome(incident, visible)
        if outcome == HELD:
            if _hold(tx, incident, row, held, now, silences):  # type: ignore[arg-type]
                fired.count(HELD)
            return fired
        if outcome == "notified":
            steps = _late_steps(_plan(row), row, now)
            outcome, enqueued = _notify(tx, incident, row, steps, visible, now, rules, links)  # type: ignore[arg-type]
            fired.enqueued += enqueued
            last = steps[-1]
    for _ in range(last - row["next_step"] + 1):  # each step taken counts
        fired.count(outcome)
    _advance(tx, row, outcome, last)
    return fired


def _postpone(tx: Tx, at: float, incident_id: int) -> None:
    """The chain's step failed: try it again ``at``."""
    tx.update("escalations", incident_id, {"due_at": at})


def _late_steps(plan: Plan, row: dict, now: float) -> list[int]:
    """The step due now, and those after it that are due too (hub was stopped, or an
    unack came long after the ack): they page together, so nobody is paged twice in
    one moment for steps that are all late. The chain is finite (``Plan.due``)."""
    steps = [row["next_step"]]
    while True:
        due = plan.due(row["started_at"], steps[-1] + 1)
        if due is None or due > now:
            break
        steps.append(steps[-1] + 1)
    return steps


def _outcome(incident: dict | None, visible: list[dict]) -> str:
    if incident is None or incident["status"] == "resolved":
        return "skipped_resolved"
    if incident["status"] == "acknowledged":
        return "skipped_acknowledged"
    return "notified" if visible else HELD


def _firing(tx: Tx, incident: dict) -> list[dict]:
    return [a for a in tx.episode_alerts(incident["id"]) if a["status"] == "firing"]


def _hold(
    tx: Tx, incident: dict, row: dict, held: dict[str, str], now: float, silences: list[Silence]
) -> bool:
    """Keep the pending step while every firing alert is muted: look again when the
    first active silence (or maintenance window) ends, and at least every
    ``HOLD_SECONDS``. The first look of a hold records it on the timeline, with the
    reasons (``mutes``); returns whether this look was that first one."""
    due = next_look(silences, now, HOLD_SECONDS)
    tx.update("escalations", row["id"], {"due_at": due, "held_at": row["held_at"] or now})
    if row["held_at"] is not None:
        return False
    detail = {**_entry(row, row["next_step"]), "mutes": sorted(set(held.values()))}
    tx.add_timeline(incident["id"], now, "escalation_held", None, detail)
    return True


def _unmuted(alerts: list[dict], held_back: HeldBack) -> list[dict]:
    held = held_back(alerts)
    return [a for a in alerts if a["fingerprint"] not in held]


def _plan(row: dict) -> Plan:
    return msgspec.convert(row["plan"], Plan)


def _advance(tx: Tx, row: dict, outcome: str, last: int) -> None:
    """After steps up to ``last``: set the next one, or pause (acknowledged) or end
    (resolved)."""
    if outcome in ("skipped_acknowledged", "skipped_resolved", "told_resolved"):
        tx.update("escalations", row["id"], {"due_at": None, "held_at": None})
        return
    following = last + 1
    due = _plan(row).due(row["started_at"], following)
    tx.update("escalations", row["id"], {"next_step": following, "due_at": due, "held_at": None})


def _entry(row: dict, step: int) -> dict:
    """What a timeline entry about ``step`` (counting across runs) says first: the
    step and run of the policy, and ``restarted_by`` in a chain that started over
    when an acknowledgement lapsed, whose steps would read like the first run's."""
    run, index = divmod(step, len(_plan(row).steps))
    detail: dict = {"step": index + 1, "run": run + 1, "policy": row["policy"]}
    if row["restarted_by"] is not None:
        detail["restarted_by"] = row["restarted_by"]
    return detail


def _notify(
    tx: Tx,
    incident: dict,
    row: dict,
    steps: list[int],
    visible: list[dict],
    now: float,
    rules: Rules,
    links: Links,
) -> tuple[str, int]:
    """Page the targets of the due ``steps`` (``_late_steps``), each target once, and
    record it; returns the outcome and the outbox rows written. The timeline entry
    names the last step, and the late ones it took along (``caught_up``). Targets that
    found nobody are named on it (``nobody_on_call``), so a gap in the rota shows where
    people read, not only in a log; when no target found anyone the outcome is
    ``skipped_nobody_on_call``.

    A target that is one of the incident's own receivers is not paged (``via_route``):
    grouping tells it of the incident on its route's timers, as it tells it of the
    resolution, and a page from the step too would tell it the same change twice."""
    plan = _plan(row)
    size = len(plan.steps)
    moment = datetime.fromtimestamp(now, UTC)
    named = [target for step in steps for target in plan.steps[step % size].notify]
    targets = list(dict.fromkeys(named))
    via_route = [target for target in targets if target in incident["receivers"]]
    reach = resolve([t for t in targets if t not in via_route], rules.config, moment)
    detail = {**_entry(row, steps[-1]), "notified": reach.receivers}
    for target in reach.nobody:
        tx.log(
            log,
            logging.WARNING,
            "event=nobody_on_call incident=%d step=%d target=%s",
            incident["id"],
            detail["step"],
            logs.value(target),
        )
    page = dispatch.StepPage(row["policy"], detail["step"], detail["run"], _unacked_since(row))
    enqueued = sum(
        dispatch.enqueue(tx, incident, target, visible, now, rules, links, step=page)
        for target in reach.receivers
    )
    if via_route:
        detail["via_route"] = via_route
    if reach.nobody:
        detail["nobody_on_call"] = reach.nobody
    if len(steps) > 1:
        detail["caught_up"] = [[step // size + 1, step % size + 1] for step in steps[:-1]]
    tx.add_timeline(incident["id"], now, "escalated", None, detail)
    paged = list(dict.fromkeys([*row["paged"], *reach.receivers]))
    tx.update("escalations", row["id"], {"paged": paged})
    return ("notified" if reach.receivers or via_route else NOBODY_ON_CALL), enqueued


def _unacked_since(row: dict) -> float:
    """Since when nobody has held the incident, as its pages say: the later of its
    chain's start (the first page, a reopening, a lapse) and its last unacknowledgement.
    An unack resumes the chain rather than restarting it, so counting from the start
    alone would count the hours someone held it as unacknowledged."""
    return max(row["started_at"], row["unacked_at"] or row["started_at"])


def _tell_resolved(
    tx: Tx,
    incident: dict,
    row: dict,
    held_back: HeldBack,
    now: float,
    rules: Rules,
    links: Links,
) -> tuple[list[str], int]:
    """Send one resolved message to each target steps paged since the last telling,
    and forget them: each resolution is told once, and a later one (after a reopen)
    tells only whom steps paged since. An incident that reopened before its
    resolution was told keeps them owed: to them it never ended. Returns who was
    told and the outbox rows written.

    Whom to tell is kept on the escalation row (``paged``), not read back from the
    timeline's ``escalated`` entries: the row is the chain's state and is already in
    hand here, the timeline is the record people read, and finding the entries since
    the last telling would mean reading every entry of a long incident.

    The incident's own receivers are left out (grouping tells them, as it told them
    it fired), and so are receivers with ``send_resolved = false``; a schedule's
    person has no such setting and is told. A target a reload removed finds nobody,
    as it would at a step. As in every message, alerts muted now are left out, and
    when none is left nobody is told.
    """
    visible = _unmuted(tx.episode_alerts(incident["id"]), held_back)
    owed = [t for t in row["paged"] if _owed_notice(t, incident, rules)] if visible else []
    rows = {
        target: dispatch.enqueue(tx, incident, target, visible, now, rules, links, resolved=True)
        for target in owed
    }
    told = [target for target, written in rows.items() if written]
    tx.update("escalations", row["id"], {"paged": []})
    if told:
        detail = {"policy": row["policy"], "told": told}
        tx.add_timeline(incident["id"], now, "told_resolved", None, detail)
    return told, sum(rows.values())


def _owed_notice(target: str, incident: dict, rules: Rules) -> bool:
    return (
        target not in incident["receivers"]
        and rules.config.receiver(target) is not None
        and rules.send_resolved.get(target, True)
    )


@dataclass
class Reach:
    """Whom a step's targets mean at one moment: the receiver names to send to, and
    the targets that found nobody."""

    receivers: list[str] = field(default_factory=list)
    nobody: list[str] = field(default_factory=list)


def resolve(targets: list[str], cfg: config.Config, at: datetime) -> Reach:
    """What a step's targets mean at ``at`` in the running config: ``schedule:NAME``
    becomes whoever is on call then (``schedule:NAME/PERSON``), a receiver stays as it
    is. A target finds nobody when its schedule has nobody on call, or when a reload
    removed it: the incident's copied policy may name what the config no longer has."""
    reach = Reach()
    for target in targets:
        name = _receiver_name(target, cfg, at)
        if name is None or cfg.receiver(name) is None:
            reach.nobody.append(target)
        else:
            reach.receivers.append(name)
    return reach


def _receiver_name(target: str, cfg: config.Config, at: datetime) -> str | None:
    """The receiver a target names at ``at``; None for a schedule nobody is on."""
    if not target.startswith(SCHEDULE_PREFIX):
        return target
    schedule = cfg.schedule(target.removeprefix(SCHEDULE_PREFIX))
    person = oncall.on_call(schedule, at) if schedule else None
    return None if person is None else f"{target}/{person}"


def problems(cfg: config.Config) -> list[str]:
    """Policies must have steps in time order that notify something that exists, and a
    pause between repeated runs (a step at 0s pages at once, which is legitimate)."""
    found = []
    targets = {r.name for r in cfg.receivers} | {
        f"{SCHEDULE_PREFIX}{s.name}" for s in cfg.schedules
    }
    for i, policy in enumerate(cfg.escalations):
        where = config.entry(f"escalations[{i}]", policy.name)
        if not policy.steps:
            found.append(f"{where}.steps: at least one step is needed")
        if policy.repeat < 0:
            found.append(f"{where}.repeat: must be 0 or more")
        if policy.ack_timeout is not None and policy.ack_timeout <= 0:
            found.append(
                f"{where}.ack_timeout: must be longer than 0s, got {policy.ack_timeout.text()!r}"
            )
        if policy.repeat > 0 and policy.repeat_after <= 0:
            # With steps at 0s, every run would page at the same moment.
            found.append(
                f"{where}.repeat_after: must be longer than 0s when repeat is set, "
                f"got {policy.repeat_after.text()!r}"
            )
        for j, step in enumerate(policy.steps):
            if j and step.after < policy.steps[j - 1].after:
                found.append(f"{where}.steps[{j}].after: must not be earlier than the step before")
            found += [
                f'{where}.steps[{j}].notify: undefined receiver or schedule "{name}"'
                f"{config.did_you_mean(name, targets)}"
                for name in step.notify
                if name not in targets
            ]
            if not step.notify:
                found.append(f"{where}.steps[{j}].notify: name at least one receiver or schedule")
    return found


def warnings(cfg: config.Config) -> list[str]:
    """Steps naming the receiver of a route that uses their policy: that receiver hears
    of the route's incidents through grouping, so the step leaves it out (``_notify``),
    which a policy written to page the team again at a later step would not expect."""
    numbers = {policy.name: i for i, policy in enumerate(cfg.escalations)}
    owners: dict[tuple[int, int, str], list[str]] = {}
    for route in _routes(routing.resolve(cfg.route)):
        if route.escalation not in numbers:
            continue
        i = numbers[route.escalation]
        for j, step in enumerate(cfg.escalations[i].steps):
            if route.receiver in step.notify:
                owners.setdefault((i, j, route.receiver), []).append(route.route_id)
    return [
        f"{config.entry(f'escalations[{i}]', cfg.escalations[i].name)}.steps[{j}].notify:"
        f' "{receiver}" is the receiver of route {", ".join(routes)}, which uses this policy:'
        " the route tells it of each incident, so this step does not page it"
        for (i, j, receiver), routes in owners.items()
    ]


def _routes(node: routing.RouteNode) -> list[routing.RouteMatch]:
    """Every route of the tree, each with its inherited settings, in file order."""
    return [node.settings, *(route for child in node.routes for route in _routes(child))]


class Escalator(dispatch.NotifyingWorker[Fired]):
    """The background task that runs escalation steps when they fall due."""

    name = "escalator"
    step = staticmethod(fire_due)
    due_table = "escalations"

    def more(self, result: Fired) -> bool:
        return sum(result.outcomes.values()) >= BATCH

    def next_due(self) -> float | None:
        due = [self.store.next_escalation_due(), self.store.next_snooze_due()]
        return min((at for at in due if at is not None), default=None)
