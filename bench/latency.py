"""Event received -> notification accepted by a local SMTP server, with group_wait 0:
p50 and p99 through the real hub (durable), against Apprise as shipped sending the
same email straight to the same server, in the same run. Apprise as shipped builds a
verifying TLS context for every email, plain SMTP included (about 50 ms of CPU);
hub builds one only for a connection that uses TLS (``hub.smtp_tls``), so hub can
come in under this baseline.

    python -m bench.latency [--events 200] [--rate 5]

Events are sent one at a time at a steady rate, each a new alert (a new incident);
the SMTP server (aiosmtpd, in this process) stamps each message as it accepts it.
Goal: p99 <= 50 ms. The hub run also prints what hub's own
``hub_notification_event_latency_seconds`` says of it, so the metric operators watch
is checked against the figures measured outside.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import apprise
from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families

from bench.common import free_port, start_hub, stop


class Stamps:
    """aiosmtpd handler: when each numbered message was accepted."""

    def __init__(self) -> None:
        self.accepted: dict[int, float] = {}
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope) -> str:
        text = envelope.content.decode(errors="replace")
        marker = text.split("bench-seq-", 1)[1].split()[0] if "bench-seq-" in text else ""
        digits = "".join(ch for ch in marker if ch.isdigit())
        with self.arrived:
            if digits:
                self.accepted[int(digits)] = time.perf_counter()
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.accepted) < count and time.monotonic() < deadline:
                self.arrived.wait(0.1)


def mail_url(port: int) -> str:
    return f"mailto://127.0.0.1:{port}?from=hub@example.com&to=ops@example.com&mode=insecure"


def through_hub(events: int, rate: float, smtp_port: int, stamps: Stamps) -> list[float]:
    port = free_port()
    sent: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        process = start_hub(Path(tmp), port, receiver_url=mail_url(smtp_port))
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for seq in range(events):
                body = json.dumps(
                    {
                        "status": "firing",
                        "summary": f"bench-seq-{seq} latency",
                        "labels": {"alertname": "Latency", "instance": str(seq)},
                    }
                )
                sent[seq] = time.perf_counter()
                connection.request(
                    "POST", "/webhooks/bench", body, {"Authorization": "Bearer bench-token"}
                )
                connection.getresponse().read()
                time.sleep(max(0.0, 1 / rate - (time.perf_counter() - sent[seq])))
            stamps.wait_for(events, timeout=60)
            print_own_figures(port, events)
        finally:
            stop(process)
    return [(stamps.accepted[s] - sent[s]) * 1000 for s in sent if s in stamps.accepted]


def print_own_figures(port: int, events: int) -> None:
    """What hub's own hub_notification_event_latency_seconds says of the same run (it
    starts at the receipt and ends once hub has recorded the SMTP server's answer),
    to check the metric against the figures measured outside."""
    name = "hub_notification_event_latency_seconds"
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        samples = {
            (sample.name, sample.labels.get("le")): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name.startswith(name)
        }
        count = samples.get((f"{name}_count", None), 0)
        if count >= events or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if count:
        mean = samples[(f"{name}_sum", None)] / count * 1000
        within = samples[(f"{name}_bucket", "0.05")] / count
        print(
            f"hub's own metric: {count:.0f} notifications,"
            f" mean {mean:.1f} ms, {within:.0%} within 50 ms"
        )


def direct(events: int, rate: float, smtp_port: int, stamps: Stamps) -> list[float]:
    latencies = []
    for seq in range(events):
        started = time.perf_counter()
        service = apprise.Apprise.instantiate(mail_url(smtp_port))
        service.notify(title=f"bench-seq-{seq} latency", body=f"bench-seq-{seq} latency")
        stamps.wait_for(seq + 1, timeout=10)
        latencies.append((stamps.accepted[seq] - started) * 1000)
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
    return latencies


def percentiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


def run(method, events: int, rate: float) -> list[float]:
    stamps = Stamps()
    port = free_port()
    controller = Controller(stamps, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        return method(events, rate, port, stamps)
    finally:
        controller.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5)
    args = parser.parse_args()
    floor = run(direct, args.events, args.rate)
    hub = run(through_hub, args.events, args.rate)
    print(f"{'path':<30}{'delivered':>10}{'p50 ms':>9}{'p99 ms':>9}{'p99 ratio':>11}{'mean ms':>9}")
    base_p99 = percentiles(floor)[1]
    for name, values in (("Apprise straight to SMTP", floor), ("hub: event -> SMTP", hub)):
        p50, p99 = percentiles(values)
        print(
            f"{name:<30}{len(values):>10}{p50:>9.1f}{p99:>9.1f}{p99 / base_p99:>11.2f}"
            f"{statistics.mean(values):>9.1f}"
        )
    print("goal: hub p99 <= 50 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
