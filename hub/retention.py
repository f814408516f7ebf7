"""Retention: old deliveries and events, alert history, long-resolved incidents,
long-resolved alerts of no incident and long-expired silences are deleted on a
schedule, in small batches, each its own write, so ingest never waits behind one long
delete."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from hub.config import Retention
from hub.store import Store, Tx

log = logging.getLogger("hub.retention")

BATCH = 500

Delete = Callable[[Tx, float, int], dict[str, int]]
"""A ``Tx.prune_*``: deletes one batch, returns the rows it deleted by kind."""


async def prune(store: Store, retention: Retention, now: float) -> dict[str, int]:
    """Delete everything older than the configured ages; returns the rows removed by
    kind, each kind counted wherever its rows went: a pruned incident's resolved
    alerts count as alerts, and their history as history, as the log line says."""
    plan: list[tuple[str, Delete, float]] = [
        ("deliveries", Tx.prune_deliveries, retention.events),
        ("history", Tx.prune_history, retention.history),
        ("incidents", Tx.prune_incidents, retention.resolved_incidents),
        ("alerts", Tx.prune_alerts, retention.resolved_incidents),
        ("silences", Tx.prune_silences, retention.expired_silences),
    ]
    removed = Counter(dict.fromkeys([kind for kind, _, _ in plan], 0))
    for kind, delete, age in plan:
        removed.update(await _drain(store, kind, delete, now - age))
    log.info("event=retention_pruned %s", " ".join(f"{k}={n}" for k, n in removed.items()))
    return dict(removed)


async def _drain(store: Store, kind: str, delete: Delete, before: float) -> Counter[str]:
    """Delete batch after batch until one deletes fewer than ``BATCH`` of ``kind``."""
    total: Counter[str] = Counter()
    while True:
        removed = await store.write(lambda tx: delete(tx, before, BATCH), background=True)
        total.update(removed)
        if removed[kind] < BATCH:
            return total
