"""Expiry: a firing alert whose sender said when it ends (Prometheus' ``endsAt``)
resolves then, unless the sender re-sent it with a later end.

This is what Alertmanager does with the alerts Prometheus posts: Prometheus re-sends
every firing alert each minute with ``endsAt`` a few minutes ahead, so a Prometheus
that stops (or loses the rule) leaves alerts that end by themselves. Alerts whose
sender gave no end (every other format) fire until a resolved event comes.

The resolution goes through the normal ingest path (``apply_delivery`` with source
``expiry``, one delivery per batch, each event dated at the alert's end), so it is
recorded, correlated and notified like a sender's resolved event. Ends are stored
with the alerts: one that passed while the hub was stopped resolves at start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from hub.decoders.common import Decoded
from hub.events import Event
from hub.ingest import Delivery, apply_delivery
from hub.rules import Rules
from hub.store import Store, Tx
from hub.worker import Worker

log = logging.getLogger("hub.expiry")

SOURCE = "expiry"
BATCH = 100
_encode = msgspec.json.Encoder().encode


def resolve_ended(tx: Tx, now: float, rules: Rules) -> int:
    """Resolve up to BATCH alerts whose end passed; returns how many."""
    alerts = tx.ended_alerts(now, BATCH)
    if not alerts:
        return 0
    events = [_resolved(alert) for alert in alerts]
    body = {"ended": [{"fingerprint": a["fingerprint"], "ends_at": a["ends_at"]} for a in alerts]}
    delivery = Delivery(source=SOURCE, key=None, received_at=now, headers={}, body=_encode(body))
    apply_delivery(tx, delivery, Decoded(events), rules)
    return len(alerts)


def _resolved(alert: dict) -> Event:
    """The event the sender would have sent: the same alert, resolved at its end (never
    dated before the alert's last change, which would make it stale)."""
    return Event(
        fingerprint=alert["fingerprint"],
        status="resolved",
        summary=alert["summary"],
        severity=alert["severity"],
        labels=alert["labels"],
        annotations=alert["annotations"],
        occurred_at=datetime.fromtimestamp(max(alert["ends_at"], alert["last_change"]), UTC),
    )


class Expirer(Worker):
    """The background task that resolves alerts whose end passed. It sleeps until the
    earliest end (one index probe), at most the idle poll, so an alert that arrives
    with a nearer end is seen in time without a poke from ingest."""

    name = "expirer"

    def __init__(
        self,
        store: Store,
        rules: Callable[[], Rules],
        on_resolved: Callable[[int], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock)
        self.store = store
        self.rules = rules
        self.on_resolved = on_resolved

    async def round(self) -> bool:
        now, rules = self.clock(), self.rules()
        resolved = await self.store.write(lambda tx: resolve_ended(tx, now, rules), background=True)
        if resolved:
            log.info("event=alerts_ended count=%d", resolved)
            self.on_resolved(resolved)
        return resolved >= BATCH

    def next_due(self) -> float | None:
        return self.store.next_alert_end()
