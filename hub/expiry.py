"""Expiry: a firing alert whose sender said when it ends (Prometheus' ``endsAt``)
resolves then, unless the sender re-sent it with a later end.

This is what Alertmanager does with the alerts Prometheus posts: Prometheus re-sends
every firing alert each minute with ``endsAt`` a few minutes ahead, so a Prometheus
that stops (or loses the rule) leaves alerts that end by themselves. Alerts whose
sender gave no end (every other format) fire until a resolved event comes.

The resolution goes through the normal ingest path (``apply_delivery`` with source
``expiry``, one delivery per batch, or one per alert when the batch raised, each event
dated at the alert's end), so it is recorded, correlated, notified and counted
(``hub_events_total{source="expiry"}``, besides ``hub_alerts_ended_total``) like a
sender's resolved event. Ends are stored
with the alerts: one that passed while the hub was stopped resolves at start.

The resolved alert keeps the end that passed (and no check): a sender re-sending it
firing with a later end, as Prometheus does after a network cut longer than the end,
fires it again even though its ``startsAt`` is older (``hub.alerts.refires``), as
Alertmanager replaces an ended alert with the new one. A sender's resolve clears it.

A re-send moves the end but not the indexed check time (``Tx.touch_alert``): a
Prometheus storm of re-sends costs no index write, and the expirer, finding an alert
whose end moved, sets its next check to the new end.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

import msgspec

from hub import logs
from hub.decoders.common import Decoded
from hub.events import Event
from hub.ingest import Delivery, apply_delivery
from hub.rules import Rules
from hub.store import Store, Tx
from hub.worker import Isolation, Worker

log = logging.getLogger("hub.expiry")

SOURCE = "expiry"
# Each event resolves a firing alert, dated no earlier than its last change: a change.
EVENT_OUTCOMES = ("changed",)
BATCH = 100
LOGGED_IDS = 20
"""Alert ids an ``alerts_ended`` line names; past them it counts the rest."""
MOVE_BATCH = 2000
_encode = msgspec.json.Encoder().encode


class Checked(NamedTuple):
    """One round's work: end checks moved to a later end, the alerts that ended, and
    what resolving them did to each (its event's outcome)."""

    moved: int
    alerts: list[int]
    outcomes: list[str]

    @property
    def ended(self) -> int:
        return len(self.outcomes)

    def full(self) -> bool:
        """A batch was full: there may be more to do at once."""
        return self.moved >= MOVE_BATCH or self.ended >= BATCH


def resolve_ended(tx: Tx, now: float, rules: Rules, isolation: Isolation) -> Checked:
    """Move the due checks of alerts whose end moved later, and resolve up to BATCH
    alerts whose end passed, as one delivery. If that raises (an alert whose row a
    fault left malformed), each is resolved as a delivery of its own instead
    (``_resolve_each``), so one broken alert does not keep every other one firing."""
    moved = tx.move_end_checks(now, MOVE_BATCH)
    ended = tx.ended_alerts(now, BATCH)
    if not ended:
        return Checked(moved, [], [])
    outcomes, error = tx.isolated(functools.partial(_resolve, ids=ended, now=now, rules=rules))
    if error is None:
        for alert_id in ended:
            isolation.succeeded(_item(alert_id))
        return Checked(moved, ended, outcomes or [])
    return Checked(moved, *_resolve_each(tx, ended, now, rules, isolation))


def _resolve_each(
    tx: Tx, ended: list[int], now: float, rules: Rules, isolation: Isolation
) -> tuple[list[int], list[str]]:
    """Resolve each alert in a delivery and a savepoint of its own; one that raises is
    set aside (``Isolation``), its end checked again at its retry. Returns the ids
    resolved and their events' outcomes."""
    resolved, outcomes = [], []
    for alert_id in ended:
        done = isolation.run(
            tx,
            _item(alert_id),
            functools.partial(_resolve, ids=[alert_id], now=now, rules=rules),
            functools.partial(_postpone, alert_id=alert_id),
        )
        if done is not None:
            resolved.append(alert_id)
            outcomes += done
    return resolved, outcomes


def _postpone(tx: Tx, at: float, alert_id: int) -> None:
    tx.postpone_end_check(alert_id, at)


def _item(alert_id: int) -> str:
    """The alert as ``Isolation`` names it, in the log and in its streak of failures."""
    return f"alert={alert_id}"


def _resolve(tx: Tx, ids: list[int], now: float, rules: Rules) -> list[str]:
    """One delivery resolving the alerts ``ids``; its body names them and their ends.
    Returns its events' outcomes."""
    ended = [tx.ended_alert(alert_id) for alert_id in ids]
    body = {"ended": [{"fingerprint": a["fingerprint"], "ends_at": a["ends_at"]} for a in ended]}
    delivery = Delivery(source=SOURCE, key=None, received_at=now, headers={}, body=_encode(body))
    decoded = Decoded([_resolved(alert) for alert in ended])
    return apply_delivery(tx, delivery, decoded, rules).outcomes


def _resolved(alert: dict) -> Event:
    """The event the sender would have sent: the same alert, resolved at its end (never
    dated before the alert's last change, which would make it stale). It carries that
    end, which the resolved alert keeps: a re-send with a later one fires it again."""
    return Event(
        fingerprint=alert["fingerprint"],
        status="resolved",
        summary=alert["summary"],
        severity=alert["severity"],
        labels=alert["labels"],
        annotations=alert["annotations"],
        occurred_at=datetime.fromtimestamp(max(alert["ends_at"], alert["last_change"]), UTC),
        ends_at=datetime.fromtimestamp(alert["ends_at"], UTC),
    )


class Expirer(Worker):
    """The background task that resolves alerts whose end passed. It sleeps until the
    earliest end check (one index probe), at most the idle poll, so an alert that
    arrives with a nearer end is seen in time without a poke from ingest."""

    name = "expirer"

    def __init__(
        self,
        store: Store,
        rules: Callable[[], Rules],
        on_resolved: Callable[[list[str]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock)
        self.store = store
        self.rules = rules
        self.on_resolved = on_resolved

    async def round(self) -> bool:
        now, rules = self.clock(), self.rules()
        checked = await self.write_round(
            self.store, now, lambda tx, isolation: resolve_ended(tx, now, rules, isolation)
        )
        if checked.ended:
            log.info(
                "event=alerts_ended count=%d alerts=%s",
                checked.ended,
                logs.listed(checked.alerts, most=LOGGED_IDS),
            )
            self.on_resolved(checked.outcomes)
        return checked.full()

    def next_due(self) -> float | None:
        return self.store.next_alert_end()
