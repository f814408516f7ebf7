"""A Prometheus-style re-send storm: 10,000 firing alerts re-sent in POSTs of 256
(as Prometheus does every ``resend_delay``), measured as server CPU time per
re-sent alert, for the hub (durable) and Alertmanager (in memory) in the same run.

    python -m bench.resend [--alerts 10000] [--rounds 5]

The first round creates the alerts and is not counted; the later rounds are pure
repeats, which must be cheap: no history row, no notification, one small update.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import cpu_seconds, free_port, start_alertmanager, start_hub, stop, wait_drained

BATCH = 256
ENDS_IN = timedelta(minutes=4)


def bodies(alerts: int, alertname: str = "Storm", **labels: str) -> list[bytes]:
    """POST bodies of 256 alerts each, ending four minutes from now as Prometheus' do
    (4 x its one-minute resend delay), so every re-send moves the end; alerts_v2.lua
    builds the same alerts."""
    ends_at = (datetime.now(UTC) + ENDS_IN).isoformat()
    items = [
        {
            "labels": {
                "alertname": alertname,
                "instance": f"host-{n}:9100",
                "job": "node",
                **labels,
            },
            "annotations": {"summary": f"host-{n} is unhappy"},
            "startsAt": "2026-11-28T12:00:00Z",
            "endsAt": ends_at,
            "generatorURL": "http://prometheus.example/graph?g0.expr=up",
        }
        for n in range(alerts)
    ]
    return [json.dumps(items[i : i + BATCH]).encode() for i in range(0, alerts, BATCH)]


def send_round(port: int, path: str, payloads: list[bytes]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for payload in payloads:
            connection.request("POST", path, payload, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            if answer.status >= 300:
                raise RuntimeError(f"{path} answered {answer.status}")
    finally:
        connection.close()


def measure(server: str, alerts: int, rounds: int) -> float | None:
    """Server CPU microseconds per re-sent alert."""
    port = free_port()
    payloads = bodies(alerts)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        process = start_hub(workdir, port) if server == "hub" else start_alertmanager(workdir, port)
        if process is None:
            return None
        path = "/webhooks/prom/api/v2/alerts" if server == "hub" else "/api/v2/alerts"
        try:
            send_round(port, path, payloads)
            if server == "hub":
                wait_drained(port)
            before = cpu_seconds(process.pid)
            for _ in range(rounds):
                send_round(port, path, bodies(alerts))
            used = cpu_seconds(process.pid) - before
        finally:
            stop(process)
    return used / (alerts * rounds) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    baseline = measure("alertmanager", args.alerts, args.rounds)
    hub = measure("hub", args.alerts, args.rounds)
    print(f"{'server':<14}{'CPU us per re-sent alert':>26}{'ratio to AM':>13}")
    for name, value in (("alertmanager", baseline), ("hub", hub)):
        if value is None:
            print(f"{name:<14}{'not installed':>26}")
            continue
        ratio = value / baseline if baseline else float("nan")
        print(f"{name:<14}{value:>26.1f}{ratio:>13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
