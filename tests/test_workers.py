"""Background workers against a store that failed for a while: each failed round is
logged and counted in hub_worker_round_failures_total, and the worker goes on once the
store works again, however the failure reached it."""

from __future__ import annotations

import sqlite3

from conftest import BASE_CONFIG, MovedClock, mail_url, wait_for

HEARTBEAT = """
[[heartbeats]]
name = "nightly-backup"
period = "1h"
"""


def sample(http, line_start: str) -> float:
    """The value of the one series whose line starts so, 0 while it is not exposed."""
    lines = http.get("/metrics").text.splitlines()
    return next((float(line.split()[-1]) for line in lines if line.startswith(line_start)), 0)


def test_a_worker_whose_store_failed_for_a_while_counts_it_and_works_again(hub_factory, smtp):
    """The watchdog's look for its next deadline raised outside the guarded round, which
    ended the worker for good: no heartbeat was watched again until a restart, and only
    one worker_round_failed line and /readyz told of it, nothing Prometheus reads."""
    _, smtp_port = smtp
    clock = MovedClock()
    hub = hub_factory(BASE_CONFIG + HEARTBEAT, mail_url=mail_url(smtp_port), clock=clock)
    store = sqlite3.connect(hub.config_path.parent / "hub.db", isolation_level=None)
    with hub.client() as http:
        store.execute("ALTER TABLE heartbeats RENAME TO heartbeats_away")
        failures = 'hub_worker_round_failures_total{worker="watchdog"} '
        wait_for(lambda: sample(http, failures) >= 2)
        store.execute("ALTER TABLE heartbeats_away RENAME TO heartbeats")
        clock.advance(2 * 3600)
        overdue = 'hub_heartbeat_overdue{heartbeat="nightly-backup"} '
        wait_for(lambda: sample(http, overdue) == 1)
        assert http.get("/readyz").status_code == 200
        assert sample(http, 'hub_worker_round_failures_total{worker="outbox"} ') == 0
    store.close()
