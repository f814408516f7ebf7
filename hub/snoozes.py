"""Snoozes: an acknowledgement that lapses.

A person may acknowledge an incident for a while (``POST .../snooze``, PagerDuty's
snooze), and a policy may give every acknowledgement a time limit (``[[escalations]]
ack_timeout``, Alerta's ACK_TIMEOUT, Grafana OnCall's unacknowledge timeout). Either
way the incident keeps, beside its ack, when it wakes (``snoozed_until``) and why
(``snooze_reason``). The escalator wakes it from the store (``hub.escalation``), so a
restart changes nothing and a wake-up missed while hub was down happens at its
start: the incident is open again, the timeline says so (actor hub), its receivers
are told again as if for the first time (their messages say whose acknowledgement
lapsed and why: ``lapsed_by``, ``lapse_reason``), and its escalation starts over.

Resolving or unacknowledging ends a snooze; acknowledging without a duration ends
it too (under an ``ack_timeout`` that acknowledgement lapses in its turn).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from hub import incidents, logs
from hub.durations import Duration
from hub.errors import InvalidPayload
from hub.incidents import HUB_ACTOR
from hub.store import Tx

log = logging.getLogger("hub.snoozes")

SNOOZE = "snooze"
ACK_TIMEOUT = "ack_timeout"
ENDINGS = {SNOOZE: "snooze_ended", ACK_TIMEOUT: "ack_timed_out"}
"""What each reason's lapse is called: the timeline entry's kind and the escalator's
outcome (``hub_escalation_steps_total{outcome}``)."""
SHORTEST = Duration.parse("1m")
LONGEST = Duration.parse("7d")
CLEARED = {"snoozed_until": None, "snooze_reason": None, "lapsed_by": None, "lapse_reason": None}
"""An incident's columns when its acknowledgement does not lapse and none has lapsed
since it was last acknowledged or resolved."""


def length(text: str) -> float:
    """The seconds a snooze lasts, from the API's ``duration``: hub's duration format,
    1m to 7d. A shorter one would wake before anyone could act; a longer one is an
    acknowledgement forgotten."""
    try:
        seconds = Duration.parse(text)
    except ValueError as e:
        raise InvalidPayload(f"duration: {e}", field="$.duration") from e
    if not SHORTEST <= seconds <= LONGEST:
        raise InvalidPayload(
            f"duration: must be from {SHORTEST.text()} to {LONGEST.text()}, got {text!r}",
            field="$.duration",
        )
    return float(seconds)


def lapse(now: float, snooze: float | None, ack_timeout: float | None) -> dict:
    """The columns an acknowledgement at ``now`` sets: a snooze of ``snooze`` seconds
    wins over the policy's ``ack_timeout`` (the person chose how long); with neither,
    the acknowledgement lasts until the incident resolves."""
    if snooze is not None:
        return {**CLEARED, "snoozed_until": now + snooze, "snooze_reason": SNOOZE}
    if ack_timeout is not None:
        return {**CLEARED, "snoozed_until": now + ack_timeout, "snooze_reason": ACK_TIMEOUT}
    return dict(CLEARED)


def until(columns: dict) -> dict[str, str]:
    """What an acknowledgement's timeline entry says of its lapse: ``until`` (RFC 3339)."""
    wakes = columns["snoozed_until"]
    return {} if wakes is None else {"until": stamp(wakes)}


def wake(tx: Tx, incident_id: int, now: float) -> str | None:
    """Open again an incident whose acknowledgement lapsed by ``now``; returns its
    ending, for the caller to start its escalation over. A wake time left on an
    incident no longer acknowledged is only cleared (None)."""
    incident = tx.incident(incident_id)
    if incident is not None and incident["status"] == "acknowledged":
        return _wake(tx, incident, now)
    tx.update("incidents", incident_id, CLEARED)
    return None


def postpone(tx: Tx, at: float, incident_id: int) -> None:
    """Waking the incident failed: try again ``at``; it stays acknowledged meanwhile."""
    tx.update("incidents", incident_id, {"snoozed_until": at})


def _wake(tx: Tx, incident: dict, now: float) -> str:
    """As if nobody had acknowledged it: open, its receivers told again (the ack link
    included, and whose acknowledgement lapsed and why), on the timeline by hub with
    whose acknowledgement ended."""
    ending = ENDINGS[incident["snooze_reason"]]
    holder = incident["acknowledged_by"]
    opened = {"status": "open", **incidents.marked("acknowledged")}
    lapsed = {"lapsed_by": holder, "lapse_reason": incident["snooze_reason"]}
    tx.update("incidents", incident["id"], {**opened, **CLEARED, **lapsed, "updated_at": now})
    why = (
        f"the snooze {holder} set ended"
        if ending == "snooze_ended"
        else f"{holder}'s acknowledgement lapsed after the policy's ack_timeout"
    )
    detail = {"acknowledged_by": holder, "reason": f"{why}; open and paging again"}
    tx.add_timeline(incident["id"], now, ending, HUB_ACTOR, detail)
    tx.repage_receivers(incident["id"], now)
    message = "event=%s incident=%d acknowledged_by=%s"
    tx.log(log, logging.INFO, message, ending, incident["id"], logs.value(holder))
    return ending


def stamp(epoch: float) -> str:
    """A time as the timeline and a refused acknowledgement name it: RFC 3339, to the second."""
    return f"{datetime.fromtimestamp(epoch, UTC):%Y-%m-%dT%H:%M:%SZ}"
