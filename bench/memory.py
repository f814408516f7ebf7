"""Resident memory with 200,000 active alerts: the hub (alerts in SQLite) against
Alertmanager (alerts in memory) holding the same alerts, in the same run.

    python -m bench.memory [--alerts 200000]

Alerts go in through the Alertmanager API v2 in POSTs of 256, grouped by
alertname (one big group, as a widespread outage would make). Each server is measured
once its group_wait (30 s) has passed since the first alert, and hub once it has sent
its message about them: that look reads every alert of the incident, and measuring
before it, as this bench once did, left the figure to depend on how fast the alerts
went in. Goal: hub RSS <= one third of Alertmanager's.
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
GROUP_WAIT = 30.0  # seconds: hub's below, and Alertmanager's default
TOLD_WAIT = 300.0  # seconds hub may take to send its message about the alerts


def measure(server: str, alerts: int) -> tuple[float, float] | None:
    """(RSS MB after start, RSS MB holding every alert)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if server == "hub":
            process = start_hub(
                workdir, port, group_by='["alertname"]', group_wait=f"{GROUP_WAIT:.0f}s"
            )
            path = "/webhooks/prom/api/v2/alerts"
        else:
            process = start_alertmanager(workdir, port)
            path = "/api/v2/alerts"
        if process is None:
            return None
        try:
            idle = rss_mb(process.pid)
            started = time.monotonic()
            send_round(port, path, alert_bodies(alerts))
            time.sleep(max(2.0, started + GROUP_WAIT + 2.0 - time.monotonic()))
            if server == "hub":
                wait_told(workdir / "notifications.log")
                time.sleep(2)
            return idle, rss_mb(process.pid)
        finally:
            stop(process)


def wait_told(log: Path) -> None:
    """Until hub's message about the alerts is in its log file."""
    deadline = time.monotonic() + TOLD_WAIT
    while not (log.exists() and log.stat().st_size):
        if time.monotonic() > deadline:
            raise RuntimeError(f"hub sent no message within {TOLD_WAIT:.0f} s")
        time.sleep(0.5)


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
