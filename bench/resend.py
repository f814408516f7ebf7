"""A Prometheus-style re-send storm: 10,000 firing alerts re-sent in POSTs of 256
(as Prometheus does every ``resend_delay``), measured as server CPU time per
re-sent alert, for the hub (durable) and Alertmanager (in memory) in the same run.

    python -m bench.resend [--alerts 10000] [--rounds 2] [--passes 5]

The first round creates the alerts and is not counted; the later rounds are pure
repeats, which must be cheap: no history row, no notification, one small update.
Both servers run side by side and passes alternate between them, so a noisy moment
of the machine does not fall on one server only; figures are medians of the passes.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import statistics
import subprocess
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


PATHS = {"hub": "/webhooks/prom/api/v2/alerts", "alertmanager": "/api/v2/alerts"}


def start_filled(
    server: str, workdir: Path, payloads: list[bytes], stack: contextlib.ExitStack
) -> tuple[subprocess.Popen, int] | None:
    """``server`` (stopped when ``stack`` closes) with ``payloads`` sent once, creating the
    alerts that are then re-sent: its process and port, or None when not installed."""
    port = free_port()
    process = start_hub(workdir, port) if server == "hub" else start_alertmanager(workdir, port)
    if process is None:
        return None
    stack.callback(stop, process)
    send_round(port, PATHS[server], payloads)
    if server == "hub":
        wait_drained(port)
    return process, port


def measure(process: subprocess.Popen, port: int, server: str, alerts: int, rounds: int) -> float:
    """Server CPU microseconds per re-sent alert over ``rounds`` re-sends of every alert."""
    before = cpu_seconds(process.pid)
    for _ in range(rounds):
        send_round(port, PATHS[server], bodies(alerts))
    return (cpu_seconds(process.pid) - before) / (alerts * rounds) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="re-sends of every alert a pass")
    parser.add_argument("--passes", type=int, default=5, help="passes, alternating servers")
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"alertmanager": [], "hub": []}
    with contextlib.ExitStack() as stack:
        servers = {}
        for server in runs:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            servers[server] = start_filled(server, workdir, bodies(args.alerts), stack)
        if servers["alertmanager"] is None:
            print("Alertmanager is not installed: no baseline, no ratio")
            return 1
        for number in range(args.passes):
            order = list(runs) if number % 2 == 0 else list(reversed(runs))
            for server in order:
                process, port = servers[server]
                runs[server].append(measure(process, port, server, args.alerts, args.rounds))
    ratios = [hub / am for hub, am in zip(runs["hub"], runs["alertmanager"], strict=True)]
    print(f"{'server':<14}{'CPU us per re-sent alert':>26}{'ratio to AM':>13}   passes (us)")
    for name, values in runs.items():
        ratio = statistics.median(ratios) if name == "hub" else 1.0
        shown = " ".join(f"{value:.1f}" for value in values)
        print(f"{name:<14}{statistics.median(values):>26.1f}{ratio:>13.2f}   {shown}")
    print(
        f"medians of {args.passes} alternating passes; ratio: median of each pass's pair"
        f" ({' '.join(f'{r:.2f}' for r in ratios)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
