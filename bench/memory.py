"""Resident memory with 200,000 active alerts: the hub (alerts in SQLite) against
Alertmanager (alerts in memory) holding the same alerts, in the same run.

    python -m bench.memory [--alerts 200000]

Alerts go in through the Alertmanager API v2 in POSTs of 1,000, grouped by
alertname (one big group, as a widespread outage would make). Goal: hub RSS <= one
third of Alertmanager's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.common import free_port, rss_mb, start_alertmanager, start_hub, stop
from bench.resend import bodies as alert_bodies
from bench.resend import send_round

BATCH_NOTE = "batches of 256 alerts, as Prometheus posts them"


def measure(server: str, alerts: int) -> tuple[float, float] | None:
    """(RSS MB after start, RSS MB holding every alert)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if server == "hub":
            process = start_hub(workdir, port, group_by='["alertname"]', group_wait="30s")
            path = "/webhooks/prom/api/v2/alerts"
        else:
            process = start_alertmanager(workdir, port)
            path = "/api/v2/alerts"
        if process is None:
            return None
        try:
            idle = rss_mb(process.pid)
            send_round(port, path, alert_bodies(alerts))
            time.sleep(2)
            return idle, rss_mb(process.pid)
        finally:
            stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200_000)
    args = parser.parse_args()
    baseline = measure("alertmanager", args.alerts)
    hub = measure("hub", args.alerts)
    print(f"{args.alerts} active alerts ({BATCH_NOTE})")
    print(f"{'server':<14}{'idle MB':>9}{'loaded MB':>11}{'ratio to AM':>13}")
    for name, row in (("alertmanager", baseline), ("hub", hub)):
        if row is None:
            print(f"{name:<14} not installed")
            continue
        ratio = row[1] / baseline[1] if baseline else float("nan")
        print(f"{name:<14}{row[0]:>9.0f}{row[1]:>11.0f}{ratio:>13.2f}")
    print("goal: hub <= 0.33x Alertmanager")
    return 0


if __name__ == "__main__":
    sys.exit(main())
