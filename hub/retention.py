"""Retention: old deliveries and events, alert history, long-resolved incidents, and
long-resolved alerts of no incident are deleted on a schedule, in small batches, each
its own write, so ingest never waits behind one long delete."""

from __future__ import annotations

import logging
from collections.abc import Callable

from hub.config import Retention
from hub.store import Store, Tx

log = logging.getLogger("hub.retention")

BATCH = 500


async def prune(store: Store, retention: Retention, now: float) -> dict[str, int]:
    """Delete everything older than the configured ages; returns the rows removed by kind."""
    plan: list[tuple[str, Callable[[Tx, float, int], int], float]] = [
        ("deliveries", Tx.prune_deliveries, retention.events),
        ("history", Tx.prune_history, retention.history),
        ("incidents", Tx.prune_incidents, retention.resolved_incidents),
        ("alerts", Tx.prune_alerts, retention.resolved_incidents),
    ]
    removed = {kind: await _drain(store, delete, now - age) for kind, delete, age in plan}
    log.info("event=retention_pruned %s", " ".join(f"{k}={n}" for k, n in removed.items()))
    return removed


async def _drain(store: Store, delete: Callable[[Tx, float, int], int], before: float) -> int:
    total = 0
    while True:
        count = await store.write(lambda tx: delete(tx, before, BATCH), background=True)
        total += count
        if count < BATCH:
            return total
