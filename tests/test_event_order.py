"""Out-of-order delivery: any permutation of the same events (distinct times) ends in
the same alert and incident state, through the real ingest transaction and store."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hub import config
from hub.decoders.common import Decoded
from hub.events import Event
from hub.ingest import Delivery, apply_delivery
from hub.rules import Rules
from hub.store import Store

RULES = Rules.from_config(
    config.parse(
        '[[receivers]]\nname = "ops"\nurls = ["logfile://n.log"]\n'
        '[route]\nreceiver = "ops"\ngroup_by = ["service"]\n',
        {},
    )
)
START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ALERTS = {"api-errors": "api", "api-latency": "api"}

one_event = st.tuples(
    st.sampled_from(sorted(ALERTS)),
    st.sampled_from(["firing", "resolved"]),
    st.sampled_from(["critical", "warning"]),
)


def build(fingerprint: str, status: str, severity: str, minute: int) -> Event:
    return Event(
        fingerprint=fingerprint,
        status=status,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        summary=f"{fingerprint} is {severity}",
        labels={"service": ALERTS[fingerprint], "name": fingerprint},
        occurred_at=START + timedelta(minutes=minute),
    )


def final_state(events: list[Event]) -> tuple:
    """Apply the events in this order to a fresh store; describe what is left."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "hub.db"))
        store.open()
        try:
            asyncio.run(_apply(store, events))
            alerts = store.query("SELECT fingerprint, status, severity, summary FROM alerts")
            incidents = store.query(
                "SELECT i.group_key, i.status, i.severity, group_concat(a.fingerprint) AS fps"
                " FROM incidents i JOIN alerts a ON a.incident_id = i.id"
                " WHERE i.status != 'resolved' AND a.status = 'firing' GROUP BY i.id"
            )
        finally:
            store.close()
    return (
        sorted(tuple(row.values()) for row in alerts),
        sorted(
            (r["group_key"], r["status"], r["severity"], ",".join(sorted(r["fps"].split(","))))
            for r in incidents
        ),
    )


async def _apply(store: Store, events: list[Event]) -> None:
    for number, event in enumerate(events):
        delivery = Delivery("test", None, START.timestamp() + 3600 + number, {}, b"{}")
        await store.write(
            lambda tx, d=delivery, e=event: apply_delivery(tx, d, Decoded([e]), RULES)
        )


@settings(max_examples=80, deadline=None)
@given(st.lists(one_event, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_any_order_of_the_same_events_ends_in_the_same_state(specs, random):
    events = [build(*spec, minute=i) for i, spec in enumerate(specs)]
    shuffled = events[:]
    random.shuffle(shuffled)
    assert final_state(shuffled) == final_state(events)
